/* PostgreSQL store.  Every write a worker makes runs in a transaction that
 * first locks the account row FOR SHARE with the expected lease epoch: a lease
 * take (an UPDATE of that row) waits for the transaction, and once it has
 * bumped the epoch no later fenced write can match.  So a worker that was
 * paused past its lease can never overwrite the new owner's checkpoints. */
#include "store.h"

#include "log.h"
#include "schema.h"
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

/* Advisory lock key taken while applying schema migrations ("mshift"). */
#define SCHEMA_LOCK_KEY 0x6d7368696674LL
/* Advisory lock key of the active scheduler ("mshsch"). */
#define SCHEDULER_LOCK_KEY 0x6d7368736368LL
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
	int connect_s = env_seconds("MAILSHIFT_DB_TIMEOUT", DB_CONNECT_TIMEOUT_S, 3600);
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

void store_close(struct store **store)
{
	if (*store == NULL)
		return;
	PQfinish((*store)->conn);
	free(*store);
	*store = NULL;
}

int store_schema_apply(struct store *st, char *err, size_t errlen)
{
	char version[32], lock[32];
	const char *params[1] = {version};
	const char *lock_params[1] = {lock};
	PGresult *res = NULL;
	int ret = -1, applied;

	snprintf(lock, sizeof(lock), "%lld", (long long)SCHEMA_LOCK_KEY);
	if (store_exec(st, "SELECT pg_advisory_lock($1::bigint)", 1, lock_params, NULL, err,
	               errlen) < 0)
		return -1;
	if (store_exec_simple(
	        st,
	        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	        " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
	        err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < schema_count(); i++) {
		snprintf(version, sizeof(version), "%zu", i + 1);
		if (store_exec(st, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params,
		               &res, err, errlen) < 0)
			goto out;
		applied = PQntuples(res) > 0;
		PQclear(res);
		res = NULL;
		if (applied)
			continue;
		if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
			goto out;
		if (store_exec_simple(st, schema_sql(i), err, errlen) < 0 ||
		    store_exec(st, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params,
		               NULL, err, errlen) < 0 ||
		    store_exec_simple(st, "COMMIT", err, errlen) < 0) {
			store_rollback(st);
			goto out;
		}
		log_info("schema migration %zu applied", i + 1);
	}
	ret = 0;
out:
	PQclear(
	    store_pq_exec(st, "SELECT pg_advisory_unlock($1::bigint)", 1, lock_params, NULL, NULL));
	return ret;
}

void store_server_clear(struct store_server *srv)
{
	free(srv->host);
	free(srv->tls);
	free(srv->ca_file);
	free(srv->auth);
	free(srv->master_user);
	free(srv->prefix);
	free(srv->exclude);
	free(srv->name);
	for (size_t i = 0; i < srv->nblackouts; i++)
		free(srv->blackouts[i].time_zone);
	free(srv->blackouts);
	memset(srv, 0, sizeof(*srv));
}

#define SERVER_COLUMNS                                                                             \
	"s.id, s.host, s.port, s.tls, s.ca_file, s.auth, s.master_user, s.max_connections,"        \
	" s.prefix, s.exclude, s.name, s.rate_messages, s.rate_bytes, s.account_daily_bytes"

static char *dup_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}

/* Fills srv from the SERVER_COLUMNS starting at column c. */
static void server_from_row(struct store_server *srv, const PGresult *res, int row, int c)
{
	srv->id = strtoll(PQgetvalue(res, row, c), NULL, 10);
	srv->host = dup_value(res, row, c + 1);
	srv->port = (int)strtol(PQgetvalue(res, row, c + 2), NULL, 10);
	srv->tls = dup_value(res, row, c + 3);
	srv->ca_file = dup_value(res, row, c + 4);
	srv->auth = dup_value(res, row, c + 5);
	srv->master_user = dup_value(res, row, c + 6);
	srv->max_connections = (int)strtol(PQgetvalue(res, row, c + 7), NULL, 10);
	srv->prefix = dup_value(res, row, c + 8);
	srv->exclude = dup_value(res, row, c + 9);
	srv->name = dup_value(res, row, c + 10);
	srv->rate_messages = (int)strtol(PQgetvalue(res, row, c + 11), NULL, 10);
	srv->rate_bytes = strtoll(PQgetvalue(res, row, c + 12), NULL, 10);
	srv->account_daily_bytes = strtoll(PQgetvalue(res, row, c + 13), NULL, 10);
}

/* Inserts a server profile with its connection budget (max_connections slots)
 * and its blackout windows; *id_r is its id. */
static int server_insert(struct store *st, const char *migration_id, const char *role,
                         const struct store_server *srv, char *id_r, size_t id_len, char *err,
                         size_t errlen)
{
	char port[16], maxconn[16], rm[16], rb[32], cap[32];
	const char *params[15] = {migration_id,
	                          role,
	                          srv->host,
	                          port,
	                          srv->tls,
	                          srv->ca_file,
	                          srv->auth,
	                          srv->master_user,
	                          maxconn,
	                          srv->prefix != NULL ? srv->prefix : "",
	                          srv->exclude != NULL ? srv->exclude : "",
	                          srv->name != NULL ? srv->name : "default",
	                          rm,
	                          rb,
	                          cap};
	PGresult *res = NULL;

	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(maxconn, sizeof(maxconn), "%d", srv->max_connections);
	snprintf(rm, sizeof(rm), "%d", srv->rate_messages);
	snprintf(rb, sizeof(rb), "%" PRId64, srv->rate_bytes);
	snprintf(cap, sizeof(cap), "%" PRId64, srv->account_daily_bytes);
	if (store_exec(st,
	               "WITH srv AS (INSERT INTO servers (migration_id, role, host, port, tls,"
	               " ca_file, auth, master_user, max_connections, prefix, exclude, name,"
	               " rate_messages, rate_bytes, account_daily_bytes)"
	               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
	               " RETURNING id, max_connections),"
	               " slots AS (INSERT INTO server_slots (server_id, slot)"
	               " SELECT id, generate_series(1, max_connections) FROM srv)"
	               " SELECT id FROM srv",
	               15, params, &res, err, errlen) < 0)
		return -1;
	snprintf(id_r, id_len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	for (size_t i = 0; i < srv->nblackouts; i++) {
		const struct store_blackout *b = &srv->blackouts[i];
		char days[16], from[16], to[16], what[160];
		const char *bp[5] = {id_r, days, from, to, b->time_zone};

		snprintf(days, sizeof(days), "%d", b->weekdays);
		snprintf(from, sizeof(from), "%d", b->from_s);
		snprintf(to, sizeof(to), "%d", b->to_s);
		/* AT TIME ZONE refuses an unknown zone here, at import, rather than
		 * in every scheduler step later. */
		st->error[0] = '\0';
		res = store_pq_exec(
		    st,
		    "INSERT INTO blackouts (server_id, weekdays, from_s, to_s, time_zone)"
		    " SELECT $1, $2, $3, $4, $5 WHERE (now() AT TIME ZONE $5) IS NOT NULL",
		    5, bp, NULL, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(what, sizeof(what), "%s %s: blackout[%zu]", role,
			         srv->name != NULL ? srv->name : "", i);
			store_fail(st, err, errlen, what, res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/* Inserts accounts in pages of rows (unnest of arrays): one round trip per
 * page instead of per account. */
static int accounts_insert(struct store *st, const char *migration_id, const char *const *src_ids,
                           const char *dst_id, const struct store_new_account *accounts,
                           size_t count, char *err, size_t errlen)
{
	const size_t page = 1000;

	for (size_t first = 0; first < count; first += page) {
		size_t n = count - first < page ? count - first : page;
		const char *values[8];
		char *buf[6] = {NULL};
		size_t cap[6] = {0}, len[6] = {0};
		PGresult *res;
		int ok = 1;

		/* Text arrays: logins quoted, secrets as hex bytea, numbers. */
		for (size_t i = first; i < first + n && ok; i++) {
			const struct store_new_account *a = &accounts[i];
			const char *texts[2] = {a->src_login, a->dst_login};
			for (int k = 0; k < 6 && ok; k++) {
				size_t need =
				    64 +
				    (k < 2 ? 2 * strlen(texts[k]) + 4
				     : k < 4
				         ? 2 * (k == 2 ? a->src_secret_len : a->dst_secret_len) + 8
				         : 24);
				if (len[k] + need > cap[k]) {
					size_t nc = (cap[k] + need) * 2;
					char *tmp = realloc(buf[k], nc);
					if (tmp == NULL) {
						ok = 0;
						break;
					}
					buf[k] = tmp;
					cap[k] = nc;
				}
				char *o = buf[k] + len[k];
				*o++ = i == first ? '{' : ',';
				if (k < 2) {
					*o++ = '"';
					for (const char *c = texts[k]; *c != '\0'; c++) {
						if (*c == '"' || *c == '\\')
							*o++ = '\\';
						*o++ = *c;
					}
					*o++ = '"';
				} else if (k < 4) {
					const unsigned char *b =
					    k == 2 ? a->src_secret : a->dst_secret;
					size_t bl = k == 2 ? a->src_secret_len : a->dst_secret_len;
					static const char hex[] = "0123456789abcdef";
					*o++ = '"';
					*o++ = '\\';
					*o++ = '\\';
					*o++ = 'x';
					for (size_t j = 0; j < bl; j++) {
						*o++ = hex[b[j] >> 4];
						*o++ = hex[b[j] & 15];
					}
					*o++ = '"';
				} else if (k == 4) {
					o += sprintf(o, "%d", a->priority);
				} else {
					o += sprintf(o, "%s", src_ids[a->source]);
				}
				len[k] = (size_t)(o - buf[k]);
			}
		}
		for (int k = 0; k < 6 && ok; k++) {
			if (len[k] + 2 > cap[k]) {
				char *tmp = realloc(buf[k], len[k] + 2);
				if (tmp == NULL) {
					ok = 0;
					break;
				}
				buf[k] = tmp;
			}
			buf[k][len[k]] = '}';
			buf[k][len[k] + 1] = '\0';
		}
		if (!ok) {
			for (int k = 0; k < 6; k++)
				free(buf[k]);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		values[0] = migration_id;
		values[1] = dst_id;
		for (int k = 0; k < 6; k++)
			values[2 + k] = buf[k];
		st->error[0] = '\0';
		res =
		    store_pq_exec(st,
		                  "INSERT INTO accounts (migration_id, dst_server_id, src_login,"
		                  " dst_login, src_secret, dst_secret, priority, src_server_id)"
		                  " SELECT $1, $2, s, d, ss, ds, p, sv FROM unnest($3::text[],"
		                  " $4::text[], $5::bytea[], $6::bytea[], $7::int[], $8::bigint[])"
		                  " AS r(s, d, ss, ds, p, sv)",
		                  8, values, NULL, NULL);
		for (int k = 0; k < 6; k++)
			free(buf[k]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* Name the account: a duplicate names its login in the detail. */
			const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
			char what[512];
			int line = 0;
			for (size_t i = first; detail != NULL && i < first + n; i++) {
				char needle[300];
				/* "Key (migration_id, lower(src_login))=(7, alice)": the
				 * login as stored, in lower case for the case-blind key. */
				snprintf(needle, sizeof(needle), ", %s)", accounts[i].src_login);
				if (strcasestr(detail, needle) != NULL) {
					line = accounts[i].line;
					break;
				}
			}
			if (line > 0)
				snprintf(what, sizeof(what), "line %d", line);
			else
				snprintf(what, sizeof(what), "accounts %zu..%zu", first + 1,
				         first + n);
			store_fail(st, err, errlen, what, res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

int store_migration_import(struct store *st, const char *name, const struct store_server *srcs,
                           size_t nsrcs, const struct store_server *dst,
                           const struct store_new_account *accounts, size_t count, int64_t *id_r,
                           char *err, size_t errlen)
{
	const char *params[1] = {name};
	char(*src_ids)[32] = calloc(nsrcs + 1, sizeof(*src_ids));
	const char **src_id_ptrs = calloc(nsrcs + 1, sizeof(*src_id_ptrs));
	char dst_id[32];
	PGresult *res = NULL;
	const char *id;

	if (src_ids == NULL || src_id_ptrs == NULL) {
		free(src_ids);
		free(src_id_ptrs);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		goto fail;
	if (store_exec(st, "INSERT INTO migrations (name) VALUES ($1) RETURNING id", 1, params,
	               &res, err, errlen) < 0)
		goto fail;
	id = PQgetvalue(res, 0, 0);
	for (size_t i = 0; i < nsrcs; i++) {
		if (server_insert(st, id, "source", &srcs[i], src_ids[i], sizeof(src_ids[i]), err,
		                  errlen) < 0)
			goto fail;
		src_id_ptrs[i] = src_ids[i];
	}
	if (server_insert(st, id, "destination", dst, dst_id, sizeof(dst_id), err, errlen) < 0 ||
	    accounts_insert(st, id, src_id_ptrs, dst_id, accounts, count, err, errlen) < 0)
		goto fail;
	*id_r = strtoll(id, NULL, 10);
	PQclear(res);
	free(src_ids);
	free(src_id_ptrs);
	return store_exec_simple(st, "COMMIT", err, errlen);
fail:
	PQclear(res);
	free(src_ids);
	free(src_id_ptrs);
	store_rollback(st);
	return -1;
}

int store_accounts_add(struct store *st, int64_t migration_id,
                       const struct store_new_account *accounts, size_t count, char *err,
                       size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;
	const char **src_ids = NULL;
	char dst_id[32];
	int ret = -1;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(st,
	               "SELECT id, role FROM servers WHERE migration_id = $1"
	               " ORDER BY role = 'destination', id FOR KEY SHARE",
	               1, params, &res, err, errlen) < 0)
		goto out;
	if (PQntuples(res) < 2) {
		snprintf(err, errlen, "no such migration");
		goto out;
	}
	src_ids = calloc((size_t)PQntuples(res), sizeof(*src_ids));
	if (src_ids == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < PQntuples(res) - 1; i++)
		src_ids[i] = PQgetvalue(res, i, 0);
	snprintf(dst_id, sizeof(dst_id), "%s", PQgetvalue(res, PQntuples(res) - 1, 0));
	for (size_t i = 0; i < count; i++) {
		if (accounts[i].source >= (size_t)PQntuples(res) - 1) {
			snprintf(err, errlen, "unknown source profile");
			goto out;
		}
	}
	if (accounts_insert(st, mid, src_ids, dst_id, accounts, count, err, errlen) < 0)
		goto out;
	ret = store_exec_simple(st, "COMMIT", err, errlen);
out:
	if (ret < 0)
		store_rollback(st);
	free(src_ids);
	PQclear(res);
	return ret;
}

int store_migration_sources(struct store *st, int64_t migration_id, struct store_server **srcs_r,
                            size_t *count_r, char *err, size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;
	struct store_server *srcs;
	int n;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec(st,
	               "SELECT " SERVER_COLUMNS " FROM servers s WHERE migration_id = $1"
	               " AND role = 'source' ORDER BY id",
	               1, params, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	srcs = calloc((size_t)n + 1, sizeof(*srcs));
	if (srcs == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++)
		server_from_row(&srcs[i], res, i, 0);
	PQclear(res);
	*srcs_r = srcs;
	*count_r = (size_t)n;
	return 0;
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

void store_account_clear(struct store_account *acct)
{
	free(acct->src_login);
	free(acct->dst_login);
	if (acct->src_secret != NULL)
		memset(acct->src_secret, 0, acct->src_secret_len);
	if (acct->dst_secret != NULL)
		memset(acct->dst_secret, 0, acct->dst_secret_len);
	free(acct->src_secret);
	free(acct->dst_secret);
	free(acct->state);
	store_server_clear(&acct->src);
	store_server_clear(&acct->dst);
	memset(acct, 0, sizeof(*acct));
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
static int hex_decode(const char *hex, unsigned char **out_r, size_t *len_r)
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

static int account_load(struct store *st, int64_t account_id, struct store_account *acct, char *err,
                        size_t errlen)
{
	char aid[32];
	const char *params[1] = {aid};
	PGresult *res = NULL;
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	if (store_exec(st,
	               "SELECT id, migration_id, src_login, encode(src_secret, 'hex'), dst_login,"
	               " encode(dst_secret, 'hex'), state, pass,"
	               " coalesce((SELECT bytes FROM account_days d WHERE d.account_id = a.id"
	               "  AND d.day = (now() AT TIME ZONE 'UTC')::date), 0)"
	               " FROM accounts a WHERE id = $1",
	               1, params, &res, err, errlen) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		snprintf(err, errlen, "account vanished");
		return -1;
	}
	acct->id = account_id;
	acct->migration_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	acct->src_login = dup_value(res, 0, 2);
	if (hex_decode(PQgetvalue(res, 0, 3), &acct->src_secret, &acct->src_secret_len) < 0 ||
	    hex_decode(PQgetvalue(res, 0, 5), &acct->dst_secret, &acct->dst_secret_len) < 0) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	acct->dst_login = dup_value(res, 0, 4);
	acct->state = dup_value(res, 0, 6);
	acct->pass = (int)strtol(PQgetvalue(res, 0, 7), NULL, 10);
	acct->day_bytes = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
	PQclear(res);
	res = NULL;
	if (store_exec(st,
	               "SELECT s.id = a.src_server_id, " SERVER_COLUMNS " FROM servers s"
	               " JOIN accounts a ON s.id IN (a.src_server_id, a.dst_server_id)"
	               " WHERE a.id = $1",
	               1, params, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetvalue(res, i, 0)[0] == 't')
			server_from_row(&acct->src, res, i, 1);
		else
			server_from_row(&acct->dst, res, i, 1);
	}
	PQclear(res);
	if (acct->src.host == NULL || acct->dst.host == NULL) {
		snprintf(err, errlen, "migration has no source or destination server");
		return -1;
	}
	return 0;
}

int store_lease_take(struct store *st, int64_t account_id, int pass, const char *owner, int ttl_s,
                     int64_t *epoch_r, struct store_account *acct_r, char *err, size_t errlen)
{
	char aid[32], p[16], ttl[16];
	const char *params[4] = {aid, p, owner, ttl};
	PGresult *res = NULL;
	int64_t epoch;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(p, sizeof(p), "%d", pass);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(
	        st,
	        "WITH old AS (SELECT state FROM accounts WHERE id = $1 FOR UPDATE)"
	        " UPDATE accounts SET lease_owner = $3, lease_epoch = lease_epoch + 1,"
	        /* From the moment the row lock is had, not from the
	         * transaction's start: it may have waited for the lock. */
	        " lease_expires = clock_timestamp() + make_interval(secs => $4::int),"
	        " state = 'running',"
	        " lease_pass = pass, updated_at = now()"
	        " WHERE id = $1 AND pass = $2::int AND pass_done < pass"
	        /* Only what the scheduler released: a replayed or late job
	         * for a failed (retry not due), new, waiting, paused or
	         * cancelled account is dropped. */
	        " AND state IN ('queued', 'running')"
	        " AND (lease_owner IS NULL OR lease_expires < now())"
	        /* Nothing starts inside a blackout window of either server. */
	        " AND NOT server_blackout(src_server_id) AND NOT server_blackout(dst_server_id)"
	        " RETURNING lease_epoch, (SELECT state FROM old)",
	        4, params, &res, err, errlen) < 0)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		/* A job that arrived inside a blackout window is owed again once
		 * the window ends (else it would count as in flight until it is
		 * republished). */
		if (store_exec(st,
		               "UPDATE accounts SET published_at = NULL WHERE id = $1"
		               " AND state = 'queued' AND (server_blackout(src_server_id)"
		               " OR server_blackout(dst_server_id))",
		               1, params, NULL, err, errlen) < 0 ||
		    store_exec_simple(st, "COMMIT", err, errlen) < 0) {
			store_rollback(st);
			return -1;
		}
		return STORE_BUSY;
	}
	epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	{
		const char *log_params[3] = {aid, PQgetvalue(res, 0, 1), owner};
		if (store_exec(st,
		               "INSERT INTO account_log (account_id, from_state, to_state, reason)"
		               " VALUES ($1, $2, 'running', 'lease taken by ' || $3)",
		               3, log_params, NULL, err, errlen) < 0 ||
		    store_exec(
		        st,
		        "INSERT INTO pass_accounts (account_id, number, state, started_at, runs)"
		        " SELECT id, pass, 'running', now(), 1 FROM accounts WHERE id = $1"
		        " ON CONFLICT (account_id, number) DO UPDATE SET state = 'running',"
		        " started_at = coalesce(pass_accounts.started_at, now()),"
		        " runs = pass_accounts.runs + 1",
		        1, log_params, NULL, err, errlen) < 0)
			goto fail;
	}
	PQclear(res);
	res = NULL;
	if (store_exec_simple(st, "COMMIT", err, errlen) < 0)
		goto fail;
	if (account_load(st, account_id, acct_r, err, errlen) < 0) {
		store_account_clear(acct_r);
		return -1;
	}
	*epoch_r = epoch;
	return STORE_TAKEN;
fail:
	PQclear(res);
	store_rollback(st);
	return -1;
}

/* Starts a transaction fenced by the lease: STORE_LEASE_LOST if the epoch moved. */
int store_fence_begin(struct store *st, int64_t account_id, int64_t epoch, char *err, size_t errlen)
{
	char aid[32], ep[32];
	const char *params[2] = {aid, ep};
	PGresult *res = NULL;
	int rows;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(ep, sizeof(ep), "%" PRId64, epoch);
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

int store_lease_renew(struct store *st, int64_t account_id, int64_t epoch, int ttl_s,
                      const char **stop_r, char *err, size_t errlen)
{
	char aid[32], ep[32], ttl[16];
	const char *params[3] = {aid, ep, ttl};
	PGresult *res = NULL;
	int rows;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(ep, sizeof(ep), "%" PRId64, epoch);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if (store_exec(st,
	               "UPDATE accounts SET lease_expires = clock_timestamp()"
	               " + make_interval(secs => $3::int)"
	               " WHERE id = $1 AND lease_epoch = $2 AND lease_owner IS NOT NULL"
	               " RETURNING CASE WHEN state IN ('paused', 'cancelled')"
	               "  THEN 'paused or cancelled by the operator'"
	               "  WHEN server_blackout(src_server_id) OR server_blackout(dst_server_id)"
	               "  THEN 'a blackout window began' END",
	               3, params, &res, err, errlen) < 0)
		return -1;
	rows = PQntuples(res);
	*stop_r = NULL;
	if (rows > 0 && !PQgetisnull(res, 0, 0)) {
		snprintf(st->error, sizeof(st->error), "%s", PQgetvalue(res, 0, 0));
		*stop_r = st->error;
	}
	PQclear(res);
	if (rows == 0) {
		snprintf(err, errlen, "lease lost: another worker owns this account now");
		return STORE_LEASE_LOST;
	}
	return 0;
}

int store_accounts_control(struct store *st, int64_t migration_id, int64_t account_id,
                           const char *action, struct store_job **jobs_r, size_t *count_r,
                           size_t *changed_r, size_t *unchanged_r, char *err, size_t errlen)
{
	char mid[32], aid[32];
	const char *params[3] = {mid, aid, action};
	struct store_job *jobs;
	PGresult *res = NULL;
	size_t n = 0, total;
	int rows;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	/* pause: anything not finished or refused.  cancel: anything not
	 * finished: a synced or done account, a cancelled one and a failed one
	 * with no retry left keep their state (cancel stops work, it does not
	 * rewrite results).  resume: paused accounts go back to queued (a pass
	 * left to finish) or synced (nothing left), and failed accounts of their
	 * current pass are queued again with a fresh error budget. */
	if (store_exec(
	        st,
	        "WITH target AS (SELECT id, state, pass, pass_done FROM accounts"
	        "  WHERE migration_id = $1 AND ($2::bigint = 0 OR id = $2::bigint)"
	        "  AND CASE $3 WHEN 'pause' THEN state IN ('new', 'verified', 'queued',"
	        "   'running', 'failed', 'waiting', 'synced')"
	        "   WHEN 'resume' THEN state = 'paused'"
	        "    OR (state = 'failed' AND pass_done < pass)"
	        "   WHEN 'cancel' THEN state NOT IN ('cancelled', 'synced', 'done')"
	        "    AND NOT (state = 'failed' AND attempts >= error_budget)"
	        "   ELSE false END FOR UPDATE),"
	        " upd AS (UPDATE accounts a SET updated_at = now(), published_at = NULL,"
	        "  attempts = CASE WHEN $3 = 'resume' AND t.state = 'failed' THEN 0"
	        "   ELSE a.attempts END,"
	        "  retry_at = CASE WHEN $3 = 'resume' AND t.state = 'failed' THEN NULL"
	        "   ELSE a.retry_at END,"
	        "  state = CASE $3 WHEN 'pause' THEN 'paused' WHEN 'cancel' THEN 'cancelled'"
	        "   WHEN 'resume' THEN CASE WHEN t.pass_done < t.pass THEN 'queued'"
	        /* Nothing left to run: back to the state it was paused from
	         * (an account paused before its first pass is not synced). */
	        "    ELSE coalesce((SELECT l.from_state FROM account_log l"
	        "     WHERE l.account_id = t.id AND l.to_state = 'paused'"
	        "     AND l.from_state <> 'paused' ORDER BY l.id DESC LIMIT 1), 'synced') END"
	        "   END"
	        "  FROM target t WHERE a.id = t.id RETURNING a.id, a.state, t.state AS old),"
	        " logged AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
	        "  SELECT id, old, state, 'operator: ' || $3"
	        "   || CASE WHEN old = 'failed' THEN ' (fresh error budget)' ELSE '' END"
	        "  FROM upd),"
	        " counts AS (SELECT (SELECT count(*) FROM upd) AS changed,"
	        "  (SELECT count(*) FROM accounts WHERE migration_id = $1"
	        "   AND ($2::bigint = 0 OR id = $2::bigint)) AS total),"
	        " j AS (SELECT a.id, a.migration_id, a.pass, a.priority FROM upd"
	        "  JOIN accounts a ON a.id = upd.id WHERE upd.state = 'queued')"
	        " SELECT j.id, j.migration_id, j.pass, c.changed, c.total FROM counts c"
	        " LEFT JOIN j ON true ORDER BY j.priority, j.id",
	        3, params, &res, err, errlen) < 0)
		return -1;
	rows = PQntuples(res);
	jobs = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*jobs));
	if (jobs == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < rows; i++) {
		if (PQgetisnull(res, i, 0))
			continue;
		jobs[n].account_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		jobs[n].migration_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		jobs[n].pass = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
		n++;
	}
	*changed_r = rows > 0 ? (size_t)strtoull(PQgetvalue(res, 0, 3), NULL, 10) : 0;
	total = rows > 0 ? (size_t)strtoull(PQgetvalue(res, 0, 4), NULL, 10) : 0;
	*unchanged_r = total - *changed_r;
	PQclear(res);
	*jobs_r = jobs;
	*count_r = n;
	return 0;
}

static int lease_release(struct store *st, int64_t account_id, int64_t epoch, const char *state,
                         const char *reason, int wait_s, char *err, size_t errlen)
{
	char aid[32], ep[32], wait[16];
	const char *params[5] = {aid, ep, state, reason != NULL ? reason : "", wait};
	int ret;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(ep, sizeof(ep), "%" PRId64, epoch);
	snprintf(wait, sizeof(wait), "%d", wait_s);
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		return ret;
	if (store_exec(st,
	               "INSERT INTO account_log (account_id, from_state, to_state, reason)"
	               " SELECT id, state, $3, $4 FROM accounts WHERE id = $1 AND lease_epoch = $2",
	               4, params, NULL, err, errlen) < 0 ||
	    store_exec(st,
	               "UPDATE pass_accounts pa SET state = $3,"
	               " finished_at = CASE WHEN $3 = 'synced' THEN now() ELSE finished_at END"
	               " FROM accounts a WHERE a.id = $1 AND a.lease_epoch = $2"
	               " AND pa.account_id = a.id AND pa.number = a.lease_pass",
	               3, params, NULL, err, errlen) < 0 ||
	    store_exec(
	        st,
	        "UPDATE accounts SET lease_owner = NULL, lease_expires = NULL,"
	        /* An operator's pause or cancel outlives the worker's verdict; a
	         * pass requested while this one ran is owed next. */
	        " state = CASE WHEN state IN ('paused', 'cancelled') THEN state"
	        "  WHEN $3 = 'synced' AND pass > lease_pass THEN 'queued' ELSE $3 END,"
	        " pass_done = CASE WHEN $3 = 'synced' THEN greatest(pass_done, lease_pass)"
	        "  ELSE pass_done END,"
	        " published_at = CASE WHEN $3 IN ('queued', 'synced') THEN NULL"
	        "  ELSE published_at END,"
	        /* Failed: retried after 10 s, 20 s, 40 s ... (at most 10 min);
	         * waiting: after wait_s, or at the next UTC midnight for -1. */
	        " attempts = CASE WHEN $3 = 'failed' THEN attempts + 1"
	        "  WHEN $3 = 'synced' THEN 0 ELSE attempts END,"
	        " retry_at = CASE WHEN $3 = 'failed' THEN now() + make_interval(secs =>"
	        "  least(600, 10 * power(2, attempts)))"
	        "  WHEN $3 = 'waiting' AND $5::int < 0 THEN (date_trunc('day', now()"
	        "   AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC'"
	        "  WHEN $3 = 'waiting' THEN now() + make_interval(secs => greatest($5::int, 1))"
	        "  ELSE NULL END,"
	        " last_error = CASE WHEN $3 IN ('failed', 'auth_failed') THEN $4"
	        "  WHEN $3 = 'synced' THEN NULL ELSE last_error END,"
	        " updated_at = now() WHERE id = $1 AND lease_epoch = $2",
	        5, params, NULL, err, errlen) < 0 ||
	    store_exec_simple(st, "NOTIFY mailshift_scheduler", err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_fence_commit(st, err, errlen);
}

int store_lease_release(struct store *st, int64_t account_id, int64_t epoch, const char *state,
                        const char *reason, char *err, size_t errlen)
{
	return lease_release(st, account_id, epoch, state, reason, 0, err, errlen);
}

int store_lease_wait(struct store *st, int64_t account_id, int64_t epoch, int wait_s,
                     const char *reason, char *err, size_t errlen)
{
	return lease_release(st, account_id, epoch, "waiting", reason, wait_s, err, errlen);
}

int store_account_error(struct store *st, int64_t account_id, int64_t epoch, const char *error,
                        char *err, size_t errlen)
{
	char aid[32];
	const char *params[2] = {aid, error};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "UPDATE accounts SET last_error = $2, updated_at = now() WHERE id = $1", 2, params,
	    NULL, err, errlen);
}

void store_folder_clear(struct store_folder *f)
{
	free(f->src_name);
	free(f->dst_name);
	free(f->intent_uids);
	memset(f, 0, sizeof(*f));
}

/* Parses a PostgreSQL bigint[] text value "{1,2,3}". */
static int uid_array_parse(const char *text, uint32_t **uids_r, size_t *count_r)
{
	size_t cap = 1, n = 0;
	uint32_t *uids;
	const char *p;
	char *end;

	for (p = text; *p != '\0'; p++)
		if (*p == ',')
			cap++;
	uids = calloc(cap, sizeof(*uids));
	if (uids == NULL)
		return -1;
	p = text;
	if (*p == '{')
		p++;
	while (*p != '\0' && *p != '}') {
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || n == cap) {
			free(uids);
			return -1;
		}
		uids[n++] = (uint32_t)v;
		p = end;
		if (*p == ',')
			p++;
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}

int store_folder_get(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                     const char *dst_name, struct store_folder *folder_r, char *err, size_t errlen)
{
	char aid[32];
	const char *params[3] = {aid, src_name, dst_name};
	PGresult *res = NULL;
	struct store_folder f;
	int ret;

	memset(&f, 0, sizeof(f));
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	ret = store_fenced_exec(
	    st, account_id, epoch,
	    "WITH ins AS (INSERT INTO folders (account_id, src_name, dst_name)"
	    " VALUES ($1, $2, $3) ON CONFLICT (account_id, src_name)"
	    " DO UPDATE SET dst_name = EXCLUDED.dst_name RETURNING *)"
	    " SELECT id, src_name, dst_name, src_uidvalidity, dst_uidvalidity, high_water,"
	    " highest_modseq, src_uidnext, src_messages, intent_dst_uidnext,"
	    " coalesce(intent_uids::text, '{}'), rematch FROM ins",
	    3, params, &res, err, errlen);
	if (ret < 0)
		return ret;
	f.id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	f.src_name = strdup(PQgetvalue(res, 0, 1));
	f.dst_name = strdup(PQgetvalue(res, 0, 2));
	f.src_uidvalidity = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
	f.dst_uidvalidity = (uint32_t)strtoul(PQgetvalue(res, 0, 4), NULL, 10);
	f.high_water = (uint32_t)strtoul(PQgetvalue(res, 0, 5), NULL, 10);
	f.highest_modseq = strtoull(PQgetvalue(res, 0, 6), NULL, 10);
	f.src_uidnext = (uint32_t)strtoul(PQgetvalue(res, 0, 7), NULL, 10);
	f.src_messages = (uint32_t)strtoul(PQgetvalue(res, 0, 8), NULL, 10);
	f.intent_dst_uidnext = (uint32_t)strtoul(PQgetvalue(res, 0, 9), NULL, 10);
	f.rematch = PQgetvalue(res, 0, 11)[0] == 't';
	if (uid_array_parse(PQgetvalue(res, 0, 10), &f.intent_uids, &f.intent_count) < 0 ||
	    f.src_name == NULL || f.dst_name == NULL) {
		PQclear(res);
		store_folder_clear(&f);
		snprintf(err, errlen, "folder row: cannot parse");
		return -1;
	}
	PQclear(res);
	*folder_r = f;
	return 0;
}

int store_folder_reset(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t src_uidvalidity, uint32_t dst_uidvalidity, bool rematch, char *err,
                       size_t errlen)
{
	char fid[32], sv[16], dv[16];
	const char *params[4] = {fid, sv, dv, rematch ? "true" : "false"};
	int ret;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(sv, sizeof(sv), "%" PRIu32, src_uidvalidity);
	snprintf(dv, sizeof(dv), "%" PRIu32, dst_uidvalidity);
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		return ret;
	if ((rematch && store_exec(st, "DELETE FROM uid_map WHERE folder_id = $1", 1, params, NULL,
	                           err, errlen) < 0) ||
	    store_exec(st,
	               "UPDATE folders SET src_uidvalidity = $2, dst_uidvalidity = $3,"
	               " high_water = 0, highest_modseq = 0, src_uidnext = 0, src_messages = 0,"
	               " intent_dst_uidnext = 0, intent_uids = NULL, rematch = $4 WHERE id = $1",
	               4, params, NULL, err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_fence_commit(st, err, errlen);
}

/* Formats UIDs as a PostgreSQL array literal; caller frees. */
static char *uid_array_format(const uint32_t *uids, size_t count)
{
	size_t cap = 3 + count * 11, len = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (size_t i = 0; i < count; i++)
		len +=
		    (size_t)snprintf(out + len, cap - len, "%s%" PRIu32, i > 0 ? "," : "", uids[i]);
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t dst_uidnext, const uint32_t *uids, size_t count, char *err,
                       size_t errlen)
{
	char fid[32], next[16];
	char *arr = uid_array_format(uids, count);
	const char *params[3] = {fid, next, arr};
	int ret;

	if (arr == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(next, sizeof(next), "%" PRIu32, dst_uidnext);
	ret = store_fenced_exec(
	    st, account_id, epoch,
	    "UPDATE folders SET intent_dst_uidnext = $2, intent_uids = $3::bigint[]"
	    " WHERE id = $1",
	    3, params, NULL, err, errlen);
	free(arr);
	return ret;
}

int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       const struct store_uidpair *pairs, size_t npairs,
                       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
                       size_t appended, uint64_t bytes, size_t matched,
                       const struct store_intent *next, char *err, size_t errlen)
{
	uint32_t *src = NULL, *dst = NULL, *len = NULL;
	char *src_arr = NULL, *dst_arr = NULL, *len_arr = NULL, *next_arr = NULL;
	char fid[32], aid[32], hw[16], nb[32], nm[32], ne[32], nx[32], nn[16];
	size_t runs = 0;
	int ret = -1;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(hw, sizeof(hw), "%" PRIu32, high_water);
	snprintf(nb, sizeof(nb), "%" PRIu64, bytes);
	snprintf(nm, sizeof(nm), "%zu", appended);
	snprintf(ne, sizeof(ne), "%zu", nerrors);
	snprintf(nx, sizeof(nx), "%zu", matched);
	snprintf(nn, sizeof(nn), "%" PRIu32, next != NULL ? next->dst_uidnext : 0);
	if (next != NULL && next->count > 0 &&
	    (next_arr = uid_array_format(next->uids, next->count)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 1; i < npairs; i++)
		assert(pairs[i - 1].src <= pairs[i].src); /* the contract: sorted by src */

	/* Compress the pairs into runs of consecutive UIDs on both sides. */
	src = calloc(npairs + 1, sizeof(*src));
	dst = calloc(npairs + 1, sizeof(*dst));
	len = calloc(npairs + 1, sizeof(*len));
	if (src == NULL || dst == NULL || len == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < npairs; i++) {
		if (runs > 0 && pairs[i].src == src[runs - 1] + len[runs - 1] &&
		    pairs[i].dst == dst[runs - 1] + len[runs - 1]) {
			len[runs - 1]++;
			continue;
		}
		src[runs] = pairs[i].src;
		dst[runs] = pairs[i].dst;
		len[runs] = 1;
		runs++;
	}
	src_arr = uid_array_format(src, runs);
	dst_arr = uid_array_format(dst, runs);
	len_arr = uid_array_format(len, runs);
	if (src_arr == NULL || dst_arr == NULL || len_arr == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		goto out;
	ret = -1;
	{
		const char *params[4] = {fid, src_arr, dst_arr, len_arr};
		if (runs > 0 &&
		    store_exec(st,
		               "INSERT INTO uid_map (folder_id, src_start, dst_start, len)"
		               " SELECT $1, s, d, l FROM unnest($2::bigint[], $3::bigint[],"
		               " $4::int[]) AS r(s, d, l)"
		               " ON CONFLICT (folder_id, src_start) DO UPDATE SET"
		               " dst_start = EXCLUDED.dst_start, len = EXCLUDED.len",
		               4, params, NULL, err, errlen) < 0)
			goto rollback;
	}
	for (size_t i = 0; i < nerrors; i++) {
		char uid[16];
		const char *params[4] = {aid, fid, uid, errors[i].error};
		snprintf(uid, sizeof(uid), "%" PRIu32, errors[i].src_uid);
		if (store_exec(st,
		               "INSERT INTO message_errors (account_id, folder_id, src_uid, error)"
		               " VALUES ($1, $2, $3, $4) ON CONFLICT (folder_id, src_uid)"
		               " DO UPDATE SET error = EXCLUDED.error, at = now()",
		               4, params, NULL, err, errlen) < 0)
			goto rollback;
	}
	{
		/* The intent is cleared, or is the next batch's ($8 NULL: none). */
		const char *params[8] = {fid, hw, nb, nm, ne, nx, nn, next_arr};
		if (store_exec(
		        st,
		        "UPDATE folders SET high_water = greatest(high_water, $2::bigint),"
		        " copied_bytes = copied_bytes + $3, copied_messages = copied_messages"
		        " + $4, failed_messages = failed_messages + $5,"
		        " matched_messages = matched_messages + $6,"
		        " intent_dst_uidnext = CASE WHEN $8::bigint[] IS NULL THEN 0 ELSE $7 END,"
		        " intent_uids = $8::bigint[] WHERE id = $1",
		        8, params, NULL, err, errlen) < 0)
			goto rollback;
	}
	if (appended > 0 || nerrors > 0 || matched > 0) {
		const char *params[6] = {fid, aid, nb, nm, ne, nx};
		/* The pass's own counts, and the bytes of the account's UTC day. */
		if (store_exec(
		        st,
		        "INSERT INTO pass_folders (folder_id, number, messages, bytes, failed,"
		        " matched)"
		        " SELECT $1, lease_pass, $4, $3, $5, $6 FROM accounts WHERE id = $2"
		        " ON CONFLICT (folder_id, number) DO UPDATE SET"
		        " messages = pass_folders.messages + EXCLUDED.messages,"
		        " bytes = pass_folders.bytes + EXCLUDED.bytes,"
		        " failed = pass_folders.failed + EXCLUDED.failed,"
		        " matched = pass_folders.matched + EXCLUDED.matched",
		        6, params, NULL, err, errlen) < 0 ||
		    store_exec(st,
		               "INSERT INTO account_days (account_id, day, bytes)"
		               " VALUES ($1, (now() AT TIME ZONE 'UTC')::date, $2)"
		               " ON CONFLICT (account_id) DO UPDATE SET bytes = CASE WHEN"
		               " account_days.day = EXCLUDED.day THEN account_days.bytes ELSE 0 END"
		               " + EXCLUDED.bytes, day = EXCLUDED.day",
		               2, params + 1, NULL, err, errlen) < 0)
			goto rollback;
	}
	ret = store_fence_commit(st, err, errlen);
	goto out;
rollback:
	store_rollback(st);
out:
	free(src);
	free(dst);
	free(len);
	free(src_arr);
	free(dst_arr);
	free(len_arr);
	free(next_arr);
	return ret;
}

int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                        uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
                        char *err, size_t errlen)
{
	char fid[32], next[16], msgs[16], modseq[32];
	const char *params[4] = {fid, next, msgs, modseq};

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(next, sizeof(next), "%" PRIu32, src_uidnext);
	snprintf(msgs, sizeof(msgs), "%" PRIu32, src_messages);
	snprintf(modseq, sizeof(modseq), "%" PRIu64, highest_modseq);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "WITH f AS (UPDATE folders SET src_uidnext = $2, src_messages = $3,"
	    " highest_modseq = $4, rematch = false, synced_at = now(), error = NULL"
	    " WHERE id = $1 RETURNING id, account_id)"
	    " INSERT INTO pass_folders (folder_id, number, finished_at)"
	    " SELECT f.id, a.lease_pass, now() FROM f JOIN accounts a"
	    " ON a.id = f.account_id"
	    " ON CONFLICT (folder_id, number) DO UPDATE SET finished_at = now(),"
	    " error = NULL",
	    4, params, NULL, err, errlen);
}

int store_folder_error(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                       const char *dst_name, const char *error, char *err, size_t errlen)
{
	char aid[32];
	const char *params[4] = {aid, src_name, dst_name != NULL ? dst_name : "", error};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "WITH f AS (INSERT INTO folders (account_id, src_name, dst_name, error)"
	    " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, src_name)"
	    " DO UPDATE SET error = EXCLUDED.error RETURNING id, account_id)"
	    " INSERT INTO pass_folders (folder_id, number, error)"
	    " SELECT f.id, a.lease_pass, $4 FROM f JOIN accounts a"
	    " ON a.id = f.account_id"
	    " ON CONFLICT (folder_id, number) DO UPDATE SET error = EXCLUDED.error",
	    4, params, NULL, err, errlen);
}

int store_folder_errors(struct store *st, int64_t migration_id, int64_t account_id,
                        store_folder_error_cb *cb, void *context, char *err, size_t errlen)
{
	char mid[32], aid[32];
	const char *params[2] = {mid, aid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	if (store_exec(st,
	               "SELECT f.account_id, f.src_name, f.error FROM folders f"
	               " JOIN accounts a ON a.id = f.account_id"
	               " WHERE a.migration_id = $1 AND ($2::bigint = 0 OR a.id = $2::bigint)"
	               " AND f.error IS NOT NULL ORDER BY f.account_id, f.src_name",
	               2, params, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		cb(strtoll(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1),
		   PQgetvalue(res, i, 2), context);
	PQclear(res);
	return 0;
}

int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids, size_t count,
                        uint32_t *dst_uids_r, char *err, size_t errlen)
{
	char fid[32];
	char *arr = uid_array_format(src_uids, count);
	const char *params[2] = {fid, arr};
	PGresult *res = NULL;
	size_t j = 0;

	for (size_t i = 1; i < count; i++)
		assert(src_uids[i - 1] <= src_uids[i]); /* the contract: ascending */
	if (arr == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	memset(dst_uids_r, 0, count * sizeof(*dst_uids_r));
	/* For each UID, the run with the greatest start <= UID (an index probe). */
	if (store_exec(
	        st,
	        "SELECT u, m.dst_start + (u - m.src_start) FROM unnest($2::bigint[]) AS u"
	        " CROSS JOIN LATERAL (SELECT src_start, dst_start, len FROM uid_map"
	        "  WHERE folder_id = $1 AND src_start <= u ORDER BY src_start DESC LIMIT 1) m"
	        " WHERE u < m.src_start + m.len ORDER BY u",
	        2, params, &res, err, errlen) < 0) {
		free(arr);
		return -1;
	}
	free(arr);
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t u = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
		while (j < count && src_uids[j] < u)
			j++;
		if (j < count && src_uids[j] == u)
			dst_uids_r[j] = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
	}
	PQclear(res);
	return 0;
}

int store_uidmap_next(struct store *st, int64_t folder_id, uint32_t from, uint32_t *uid_r,
                      char *err, size_t errlen)
{
	char fid[32], f[16];
	const char *params[2] = {fid, f};
	PGresult *res = NULL;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(f, sizeof(f), "%" PRIu32, from);
	if (store_exec(st,
	               "SELECT coalesce(min(greatest(src_start, $2::bigint)), 0) FROM uid_map"
	               " WHERE folder_id = $1 AND src_start + len > $2::bigint",
	               2, params, &res, err, errlen) < 0)
		return -1;
	*uid_r = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int store_uidmap_clear(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       char *err, size_t errlen)
{
	char fid[32];
	const char *params[1] = {fid};

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	return store_fenced_exec(st, account_id, epoch, "DELETE FROM uid_map WHERE folder_id = $1",
	                         1, params, NULL, err, errlen);
}

/* Accounts with their folder totals and live totals, WHERE cond. */
#define STATUS_SQL(cond)                                                                           \
	"SELECT a.id, a.src_login, a.dst_login, a.state, coalesce(a.last_error, ''),"              \
	" a.pass, a.pass_done, count(f.id), coalesce(sum(f.copied_messages), 0),"                  \
	" coalesce(sum(f.copied_bytes), 0), coalesce(sum(f.failed_messages), 0),"                  \
	" coalesce(to_char(CASE WHEN a.state <> 'failed' OR a.attempts < a.error_budget"           \
	"  THEN a.retry_at END AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"        \
	" coalesce(l.messages, -1), coalesce(l.bytes, -1),"                                        \
	" count(f.id) FILTER (WHERE f.error IS NOT NULL),"                                         \
	" coalesce(sum(f.matched_messages), 0)"                                                    \
	" FROM accounts a LEFT JOIN folders f ON f.account_id = a.id"                              \
	" LEFT JOIN live_totals l ON l.account_id = a.id AND l.pass = a.pass"                      \
	" WHERE " cond " GROUP BY a.id, l.messages, l.bytes ORDER BY a.id"

int store_migration_status(struct store *st, int64_t migration_id, int64_t account_id,
                           store_status_cb *cb, void *context, char *err, size_t errlen)
{
	char mid[32], aid[32];
	const char *params[2] = {mid, aid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	/* One account: by its key, not a scan of the migration. */
	if (store_exec(st,
	               account_id != 0 ? STATUS_SQL("a.migration_id = $1 AND a.id = $2::bigint")
	                               : STATUS_SQL("a.migration_id = $1 AND $2::bigint = 0"),
	               2, params, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_account_status row = {
		    .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .src_login = PQgetvalue(res, i, 1),
		    .dst_login = PQgetvalue(res, i, 2),
		    .state = PQgetvalue(res, i, 3),
		    .last_error = PQgetvalue(res, i, 4),
		    .pass = (int)strtol(PQgetvalue(res, i, 5), NULL, 10),
		    .pass_done = (int)strtol(PQgetvalue(res, i, 6), NULL, 10),
		    .folders = strtoll(PQgetvalue(res, i, 7), NULL, 10),
		    .messages = strtoll(PQgetvalue(res, i, 8), NULL, 10),
		    .bytes = strtoll(PQgetvalue(res, i, 9), NULL, 10),
		    .failed_messages = strtoll(PQgetvalue(res, i, 10), NULL, 10),
		    .retry_at = PQgetvalue(res, i, 11),
		    .live_messages = strtoll(PQgetvalue(res, i, 12), NULL, 10),
		    .live_bytes = strtoll(PQgetvalue(res, i, 13), NULL, 10),
		    .failed_folders = strtoll(PQgetvalue(res, i, 14), NULL, 10),
		    .matched = strtoll(PQgetvalue(res, i, 15), NULL, 10),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}

int store_scheduler_lock(struct store *st, char *err, size_t errlen)
{
	char key[32];
	const char *params[1] = {key};
	PGresult *res = NULL;
	int taken;

	snprintf(key, sizeof(key), "%lld", (long long)SCHEDULER_LOCK_KEY);
	if (store_exec(st, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, err,
	               errlen) < 0)
		return -1;
	taken = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return taken ? STORE_LOCK_TAKEN : STORE_LOCK_ELSEWHERE;
}

int store_account_get(struct store *st, int64_t account_id, struct store_account *acct_r, char *err,
                      size_t errlen)
{
	memset(acct_r, 0, sizeof(*acct_r));
	if (account_load(st, account_id, acct_r, err, errlen) < 0) {
		store_account_clear(acct_r);
		return -1;
	}
	return 0;
}

int store_migration_accounts(struct store *st, int64_t migration_id, int64_t **ids_r,
                             size_t *count_r, char *err, size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec(st, "SELECT id FROM accounts WHERE migration_id = $1 ORDER BY id", 1, params,
	               &res, err, errlen) < 0)
		return -1;
	return store_ids_from_result(res, ids_r, count_r, err, errlen);
}

int store_account_verified(struct store *st, int64_t account_id, const char *state,
                           const char *reason, char *err, size_t errlen)
{
	char aid[32];
	const char *params[3] = {aid, state, reason != NULL ? reason : ""};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	return store_exec(st,
	                  "WITH old AS (SELECT id, state FROM accounts WHERE id = $1"
	                  "  AND state IN ('new', 'verified', 'auth_failed', 'verify_failed')"
	                  "  FOR UPDATE),"
	                  " upd AS (UPDATE accounts a SET state = $2, updated_at = now(),"
	                  "  last_error = CASE WHEN $2 = 'verified' THEN NULL ELSE $3 END"
	                  "  FROM old WHERE a.id = old.id RETURNING a.id)"
	                  " INSERT INTO account_log (account_id, from_state, to_state, reason)"
	                  " SELECT id, state, $2, 'credential check: ' || $3 FROM old",
	                  3, params, NULL, err, errlen);
}

int store_slot_take(struct store *st, int64_t server_id, const char *owner, int ttl_s, int *slot_r,
                    char *err, size_t errlen)
{
	char sid[32], ttl[16];
	const char *params[3] = {sid, owner, ttl};
	PGresult *res = NULL;
	int n;

	snprintf(sid, sizeof(sid), "%" PRId64, server_id);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if (store_exec(
	        st,
	        "UPDATE server_slots s SET owner = $2,"
	        " expires = now() + make_interval(secs => $3::int)"
	        " FROM (SELECT server_id, slot FROM server_slots WHERE server_id = $1"
	        "  AND (owner IS NULL OR expires < now()) ORDER BY slot LIMIT 1"
	        "  FOR UPDATE SKIP LOCKED) free"
	        " WHERE s.server_id = free.server_id AND s.slot = free.slot RETURNING s.slot",
	        3, params, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	if (n > 0)
		*slot_r = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n > 0 ? STORE_TAKEN : STORE_BUSY;
}

int store_slot_release(struct store *st, int64_t server_id, int slot, const char *owner, char *err,
                       size_t errlen)
{
	char sid[32], sl[16];
	const char *params[3] = {sid, sl, owner};

	snprintf(sid, sizeof(sid), "%" PRId64, server_id);
	snprintf(sl, sizeof(sl), "%d", slot);
	return store_exec(st,
	                  "UPDATE server_slots SET owner = NULL, expires = NULL"
	                  " WHERE server_id = $1 AND slot = $2 AND owner = $3",
	                  3, params, NULL, err, errlen);
}

int store_slots_renew(struct store *st, const char *owner, int ttl_s, char *err, size_t errlen)
{
	char ttl[16];
	const char *params[2] = {owner, ttl};

	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	return store_exec(st,
	                  "UPDATE server_slots SET expires = now() + make_interval(secs => $2::int)"
	                  " WHERE owner = $1",
	                  2, params, NULL, err, errlen);
}

int store_key_check_get(struct store *st, unsigned char **check_r, size_t *len_r, char **key_id_r,
                        char *err, size_t errlen)
{
	PGresult *res = NULL;
	int ret = STORE_KEY_CHECK_NONE;

	*check_r = NULL;
	*key_id_r = NULL;
	*len_r = 0;
	if (store_exec(st, "SELECT key_id, encode(check_value, 'hex') FROM key_check", 0, NULL,
	               &res, err, errlen) < 0)
		return -1;
	if (PQntuples(res) > 0) {
		*key_id_r = strdup(PQgetvalue(res, 0, 0));
		if (*key_id_r == NULL || hex_decode(PQgetvalue(res, 0, 1), check_r, len_r) < 0) {
			free(*key_id_r);
			*key_id_r = NULL;
			snprintf(err, errlen, "key check: out of memory or bad value");
			ret = -1;
		} else {
			ret = STORE_KEY_CHECK_FOUND;
		}
	}
	PQclear(res);
	return ret;
}

int store_key_check_put(struct store *st, const unsigned char *check, size_t len,
                        const char *key_id, char *err, size_t errlen)
{
	const char *values[2] = {key_id, (const char *)check};
	int lengths[2] = {0, (int)len}, formats[2] = {0, 1};
	PGresult *res;
	int ok;

	st->error[0] = '\0';
	res = store_pq_exec(st,
	                    "INSERT INTO key_check (key_id, check_value) VALUES ($1, $2)"
	                    " ON CONFLICT (only_row) DO NOTHING",
	                    2, values, lengths, formats);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		store_fail(st, err, errlen, "postgresql", res);
	PQclear(res);
	return ok ? 0 : -1;
}
