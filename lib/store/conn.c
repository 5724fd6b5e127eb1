/* The connection: open and close with bounded waits, statements with their
 * errors, and the fence every worker transaction starts with (docs/DESIGN.md,
 * "3. Fencing").  Every write a worker makes runs in a transaction that
 * first locks the account row FOR SHARE with the expected lease epoch: a lease
 * take (an UPDATE of that row) waits for the transaction, and once it has
 * bumped the epoch no later fenced write can match.  So a worker that was
 * paused past its lease can never overwrite the new owner's checkpoints. */
#include "store-conn.h"

#include "log.h"
#include "store-private.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Set on every session.  One idle inside a transaction for 10 s is ended by
 * PostgreSQL: every transaction here runs its statements back to back, so only
 * a frozen or partitioned process gets there, and its row locks (a fenced
 * checkpoint's FOR SHARE on the account) must not hold up the scheduler and
 * the other workers for longer.  TCP keepalives from the server's side end a
 * session whose process is cut off within about a minute, and with it the
 * scheduler's advisory lock, so a standby coordinator takes over (the default
 * waits for the kernel's two hours). */
#define SESSION_SETTINGS                                                                           \
	"SET idle_in_transaction_session_timeout = '10s';"                                         \
	" SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10;"                         \
	" SET tcp_keepalives_count = 3"

/* Bounds on every wait for PostgreSQL, so a server that accepts and never
 * answers, or stops answering in the middle of a session, cannot hold a
 * coordinator command or a worker forever (without them libpq waits for the
 * kernel: hours).  Connecting: libpq's connect_timeout.  A statement: the
 * server's statement_timeout, and a client-side deadline a little later
 * (store_pq_exec) for a server that is frozen or cut off: the connection is
 * then shut down, so every later call on it fails at once and the caller's
 * usual reconnect path runs.  Client keepalives and tcp_user_timeout let the
 * kernel notice a dead peer in between.  MAILSHIFT_DB_TIMEOUT and
 * MAILSHIFT_DB_STATEMENT_TIMEOUT (seconds) override the defaults; a
 * connect_timeout or keepalive setting in the conninfo string wins. */
#define DB_CONNECT_TIMEOUT_S 10
#define DB_STATEMENT_TIMEOUT_S 60
/* The client-side deadline runs this much past the statement_timeout, so the
 * server's own, clearer error comes first when the server is alive. */
#define DB_CLIENT_GRACE_S 10

static int env_seconds(const char *name, int def, int max)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > max) {
		log_warn("%s=%s: not a number of seconds 1..%d; using %d", name, v, max, def);
		return def;
	}
	return (int)n;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "host:port" of the connection (never the password), for error texts. */
static void store_where(PGconn *conn, char *buf, size_t len)
{
	const char *host = conn != NULL ? PQhost(conn) : NULL;
	const char *port = conn != NULL ? PQport(conn) : NULL;

	snprintf(buf, len, "%s:%s", host != NULL && *host != '\0' ? host : "(default socket)",
	         port != NULL && *port != '\0' ? port : "5432");
}

/* Waits for the results of the query just sent, until the client-side
 * deadline.  Returns what PQexec would: the error if any statement failed,
 * else the last result; NULL (with st->error set) when the deadline passed or
 * the connection broke. */
static PGresult *store_pq_wait(struct store *st)
{
	int64_t deadline = monotonic_ms() + (int64_t)st->query_timeout_s * 1000;
	PGresult *keep = NULL, *res;
	char where[300];

	for (;;) {
		while (PQisBusy(st->conn)) {
			struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN};
			int64_t left = deadline - monotonic_ms();
			int n;

			if (pfd.fd < 0)
				goto broken;
			if (left <= 0) {
				store_where(st->conn, where, sizeof(where));
				snprintf(
				    st->error, sizeof(st->error),
				    "PostgreSQL at %s did not answer within %d s (client-side"
				    " bound: statement timeout %d s + %d s); connection closed",
				    where, st->query_timeout_s,
				    st->query_timeout_s - DB_CLIENT_GRACE_S, DB_CLIENT_GRACE_S);
				/* A cancel request would need a new connection to the
				 * same frozen server (and PQcancel has no timeout):
				 * shut the socket down instead; the server's
				 * statement_timeout ends the statement if it lives. */
				shutdown(pfd.fd, SHUT_RDWR);
				st->dead = true;
				PQclear(keep);
				return NULL;
			}
			n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
			if (n < 0 && errno != EINTR)
				goto broken;
			if (n > 0 && !PQconsumeInput(st->conn))
				goto broken;
		}
		res = PQgetResult(st->conn);
		if (res == NULL)
			break;
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(res);
			continue;
		}
		PQclear(keep);
		keep = res;
	}
	if (keep == NULL)
		goto broken;
	return keep;
broken:
	PQclear(keep);
	store_where(st->conn, where, sizeof(where));
	snprintf(st->error, sizeof(st->error), "PostgreSQL at %s: %s", where,
	         PQerrorMessage(st->conn));
	st->dead = true;
	return NULL;
}

PGresult *store_pq_exec(struct store *st, const char *sql, int nparams, const char *const *values,
                        const int *lengths, const int *formats)
{
	char where[300];
	int sent;

	if (st->dead || PQstatus(st->conn) != CONNECTION_OK) {
		store_where(st->conn, where, sizeof(where));
		snprintf(st->error, sizeof(st->error),
		         "PostgreSQL at %s: connection lost earlier (%s)", where,
		         PQerrorMessage(st->conn));
		st->dead = true;
		return NULL;
	}
	/* Results are collected by PQgetResult either way; the simple protocol
	 * (several statements in one string) when there are no parameters. */
	sent = nparams == 0 && values == NULL
	           ? PQsendQuery(st->conn, sql)
	           : PQsendQueryParams(st->conn, sql, nparams, NULL, values, lengths, formats, 0);
	if (!sent) {
		store_where(st->conn, where, sizeof(where));
		snprintf(st->error, sizeof(st->error), "PostgreSQL at %s: %s", where,
		         PQerrorMessage(st->conn));
		st->dead = true;
		return NULL;
	}
	return store_pq_wait(st);
}

int store_fail(struct store *st, char *err, size_t errlen, const char *what, const PGresult *res)
{
	char msg[sizeof(st->error)];
	size_t n;

	/* No result: store_pq_exec has put the reason (timeout, lost
	 * connection) in st->error already. */
	snprintf(msg, sizeof(msg), "%s",
	         res != NULL            ? PQresultErrorMessage(res)
	         : st->error[0] != '\0' ? st->error
	                                : PQerrorMessage(st->conn));
	snprintf(st->error, sizeof(st->error), "%s: %s", what, msg);
	/* One line: PostgreSQL's DETAIL comes on a line of its own. */
	for (char *p = st->error; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	n = strlen(st->error);
	while (n > 0 && (st->error[n - 1] == '\n' || st->error[n - 1] == ' '))
		st->error[--n] = '\0';
	snprintf(err, errlen, "%s", st->error);
	return -1;
}

/* Runs a statement with text parameters; *res_r is set only on success. */
int store_exec(struct store *st, const char *sql, int nparams, const char *const *values,
               PGresult **res_r, char *err, size_t errlen)
{
	PGresult *res;
	ExecStatusType status;

	st->error[0] = '\0';
	res = store_pq_exec(st, sql, nparams, values != NULL ? values : (const char *const[]){NULL},
	                    NULL, NULL);
	status = PQresultStatus(res);

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		store_fail(st, err, errlen, "postgresql", res);
		PQclear(res);
		return -1;
	}
	if (res_r != NULL)
		*res_r = res;
	else
		PQclear(res);
	return 0;
}

/* Simple query protocol: allows several statements (schema migrations). */
int store_exec_simple(struct store *st, const char *sql, char *err, size_t errlen)
{
	PGresult *res;
	ExecStatusType status;

	st->error[0] = '\0';
	res = store_pq_exec(st, sql, 0, NULL, NULL, NULL);
	status = PQresultStatus(res);

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		store_fail(st, err, errlen, "postgresql", res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

void store_rollback(struct store *st)
{
	PQclear(store_pq_exec(st, "ROLLBACK", 0, NULL, NULL, NULL));
}

/* Server notices ("relation already exists, skipping") are not errors. */
static void notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int store_open(const char *conninfo, struct store **store_r, char *err, size_t errlen)
{
	return store_open_bounded(conninfo, 0, store_r, err, errlen);
}

int store_open_bounded(const char *conninfo, int connect_timeout_s, struct store **store_r,
                       char *err, size_t errlen)
{
	int connect_s = connect_timeout_s > 0
	                    ? connect_timeout_s
	                    : env_seconds("MAILSHIFT_DB_TIMEOUT", DB_CONNECT_TIMEOUT_S, 3600);
	int statement_s =
	    env_seconds("MAILSHIFT_DB_STATEMENT_TIMEOUT", DB_STATEMENT_TIMEOUT_S, 86400);
	char connect_v[16], user_timeout_v[16], settings[512], where[300];
	/* Ours first: a setting repeated in the conninfo (expanded from
	 * dbname) comes later and wins. */
	const char *keys[] = {
	    "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
	const char *values[] = {connect_v, "1", "30", "10", "3", user_timeout_v, conninfo, NULL};
	struct store *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	st->query_timeout_s = statement_s + DB_CLIENT_GRACE_S;
	snprintf(connect_v, sizeof(connect_v), "%d", connect_s);
	/* Unacknowledged data for longer than this ends the connection. */
	snprintf(user_timeout_v, sizeof(user_timeout_v), "%d",
	         (statement_s + DB_CLIENT_GRACE_S) * 1000);
	st->conn = PQconnectdbParams(keys, values, 1);
	if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK) {
		const char *msg = st->conn != NULL ? PQerrorMessage(st->conn) : "out of memory";

		store_where(st->conn, where, sizeof(where));
		snprintf(err, errlen,
		         "cannot connect to PostgreSQL at %s (connect timeout %d s,"
		         " MAILSHIFT_DB_TIMEOUT): %s",
		         where, connect_s, msg);
		for (char *p = err; *p != '\0'; p++)
			if (*p == '\n')
				*p = ' ';
		for (size_t n = strlen(err); n > 0 && err[n - 1] == ' ';)
			err[--n] = '\0';
		PQfinish(st->conn);
		free(st);
		return -1;
	}
	PQsetNoticeProcessor(st->conn, notice_ignore, NULL);
	snprintf(settings, sizeof(settings), "%s; SET statement_timeout = '%ds'", SESSION_SETTINGS,
	         statement_s);
	if (store_exec_simple(st, settings, err, errlen) < 0) {
		PQfinish(st->conn);
		free(st);
		return -1;
	}
	*store_r = st;
	return 0;
}

bool store_usable(const struct store *st)
{
	return st != NULL && !st->dead && PQstatus(st->conn) == CONNECTION_OK;
}

int store_session_set(struct store *st, const char *name, const char *value, char *err,
                      size_t errlen)
{
	const char *values[2] = {name, value};

	return store_exec(st, "SELECT set_config($1, $2, false)", 2, values, NULL, err, errlen);
}

int store_actor_set(struct store *st, const char *actor, char *err, size_t errlen)
{
	return store_session_set(st, "mailshift.actor", actor, err, errlen);
}

void store_close(struct store **store)
{
	if (*store == NULL)
		return;
	PQfinish((*store)->conn);
	free(*store);
	*store = NULL;
}

/* The first column of res as ids (caller frees *ids_r); takes res. */
int store_ids_from_result(PGresult *res, int64_t **ids_r, size_t *count_r, char *err, size_t errlen)
{
	int n = PQntuples(res);
	int64_t *ids = calloc(n > 0 ? n : 1, sizeof(*ids));

	if (ids == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	*ids_r = ids;
	*count_r = (size_t)n;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes PostgreSQL's encode(x, 'hex') output into a malloc'ed buffer. */
int store_hex_decode(const char *hex, unsigned char **out_r, size_t *len_r)
{
	size_t n = strlen(hex) / 2;
	unsigned char *out = malloc(n > 0 ? n : 1);

	if (out == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
	*out_r = out;
	*len_r = n;
	return 0;
}

/* Starts a transaction fenced by the lease: STORE_LEASE_LOST if the epoch moved. */
int store_fence_begin(struct store *st, int64_t account_id, int64_t epoch, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int rows;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_i64(&q, epoch);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(st,
	               "SELECT 1 FROM accounts WHERE id = $1 AND lease_epoch = $2"
	               " AND lease_owner IS NOT NULL FOR SHARE",
	               2, params, &res, err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	rows = PQntuples(res);
	PQclear(res);
	if (rows == 0) {
		store_rollback(st);
		snprintf(err, errlen, "lease lost: another worker owns this account now");
		return STORE_LEASE_LOST;
	}
	return 0;
}

int store_fence_commit(struct store *st, char *err, size_t errlen)
{
	if (store_exec_simple(st, "COMMIT", err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

/* Runs one fenced statement: fence, statement, commit. */
int store_fenced_exec(struct store *st, int64_t account_id, int64_t epoch, const char *sql,
                      int nparams, const char *const *params, PGresult **res_r, char *err,
                      size_t errlen)
{
	int ret = store_fence_begin(st, account_id, epoch, err, errlen);

	if (ret < 0)
		return ret;
	if (store_exec(st, sql, nparams, params, res_r, err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	if (store_fence_commit(st, err, errlen) < 0) {
		if (res_r != NULL) {
			PQclear(*res_r);
			*res_r = NULL;
		}
		return -1;
	}
	return 0;
}

/* Rows of (account id, migration id, pass) as jobs (caller frees *jobs_r);
 * takes res. */
int store_jobs_from_result(PGresult *res, struct store_job **jobs_r, size_t *count_r, char *err,
                           size_t errlen)
{
	int n = PQntuples(res);
	struct store_job *jobs = calloc(n > 0 ? n : 1, sizeof(*jobs));

	if (jobs == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		jobs[i].account_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		jobs[i].migration_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		jobs[i].pass = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
		if (PQnfields(res) > 3)
			jobs[i].attempt = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
	}
	PQclear(res);
	*jobs_r = jobs;
	*count_r = (size_t)n;
	return 0;
}

/* Copy of a text value, NULL for SQL NULL (caller frees). */
char *store_dup_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}

int store_params_check(const struct store_params *p, char *err, size_t errlen)
{
	if (!store_params_failed(p))
		return 0;
	snprintf(err, errlen, "out of memory building query parameters");
	return -1;
}
