/* PostgreSQL store.  Every write a worker makes runs in a transaction that
 * first locks the account row FOR SHARE with the expected lease epoch: a lease
 * take (an UPDATE of that row) waits for the transaction, and once it has
 * bumped the epoch no later fenced write can match.  So a worker that was
 * paused past its lease can never overwrite the new owner's checkpoints. */
#include "store.h"

#include "log.h"
#include "schema.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Advisory lock key taken while applying schema migrations ("mshift"). */
#define SCHEMA_LOCK_KEY 0x6d7368696674LL
/* Advisory lock key of the active scheduler ("mshsch"). */
#define SCHEDULER_LOCK_KEY 0x6d7368736368LL

struct store {
	PGconn *conn;
	char error[512];
};

static int fail(struct store *st, const char **error_r, const char *what, const PGresult *res)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(st->conn);
	size_t n;

	snprintf(st->error, sizeof(st->error), "%s: %s", what, msg);
	n = strlen(st->error);
	while (n > 0 && (st->error[n - 1] == '\n' || st->error[n - 1] == ' '))
		st->error[--n] = '\0';
	*error_r = st->error;
	return -1;
}

/* Runs a statement with text parameters; *res_r is set only on success. */
static int exec_params(struct store *st, const char *sql, int nparams, const char *const *values,
		       PGresult **res_r, const char **error_r)
{
	PGresult *res = PQexecParams(st->conn, sql, nparams, NULL, values, NULL, NULL, 0);
	ExecStatusType status = PQresultStatus(res);

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		fail(st, error_r, "postgresql", res);
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
static int exec_simple(struct store *st, const char *sql, const char **error_r)
{
	PGresult *res = PQexec(st->conn, sql);
	ExecStatusType status = PQresultStatus(res);

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		fail(st, error_r, "postgresql", res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static void rollback(struct store *st)
{
	PQclear(PQexec(st->conn, "ROLLBACK"));
}

/* Server notices ("relation already exists, skipping") are not errors. */
static void notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int store_open(const char *conninfo, struct store **store_r, const char **error_r)
{
	static char error[512];
	struct store *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	st->conn = PQconnectdb(conninfo);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		snprintf(error, sizeof(error), "cannot connect to PostgreSQL: %s",
			 PQerrorMessage(st->conn));
		error[strcspn(error, "\n")] = '\0';
		*error_r = error;
		PQfinish(st->conn);
		free(st);
		return -1;
	}
	PQsetNoticeProcessor(st->conn, notice_ignore, NULL);
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

int store_schema_apply(struct store *st, const char **error_r)
{
	char version[32], lock[32];
	const char *params[1] = {version};
	const char *lock_params[1] = {lock};
	PGresult *res = NULL;
	int ret = -1, applied;

	snprintf(lock, sizeof(lock), "%lld", (long long)SCHEMA_LOCK_KEY);
	if (exec_params(st, "SELECT pg_advisory_lock($1::bigint)", 1, lock_params, NULL, error_r) < 0)
		return -1;
	if (exec_simple(st,
			"CREATE TABLE IF NOT EXISTS schema_migrations ("
			" version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
			error_r) < 0)
		goto out;
	for (size_t i = 0; i < schema_count(); i++) {
		snprintf(version, sizeof(version), "%zu", i + 1);
		if (exec_params(st, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params,
				&res, error_r) < 0)
			goto out;
		applied = PQntuples(res) > 0;
		PQclear(res);
		res = NULL;
		if (applied)
			continue;
		if (exec_simple(st, "BEGIN", error_r) < 0)
			goto out;
		if (exec_simple(st, schema_sql(i), error_r) < 0 ||
		    exec_params(st, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params,
				NULL, error_r) < 0 ||
		    exec_simple(st, "COMMIT", error_r) < 0) {
			rollback(st);
			goto out;
		}
		log_info("schema migration %zu applied", i + 1);
	}
	ret = 0;
out:
	PQclear(PQexecParams(st->conn, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL,
			     lock_params, NULL, NULL, 0));
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
	memset(srv, 0, sizeof(*srv));
}

static int server_insert(struct store *st, const char *migration_id, const char *role,
			 const struct store_server *srv, const char **error_r)
{
	char port[16], maxconn[16];
	const char *params[10] = {migration_id, role,	  srv->host,	   port,
				  srv->tls,	srv->ca_file, srv->auth, srv->master_user,
				  maxconn,	srv->prefix};
	const char *all[11];

	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(maxconn, sizeof(maxconn), "%d", srv->max_connections);
	memcpy(all, params, sizeof(params));
	all[10] = srv->exclude != NULL ? srv->exclude : "";
	if (all[9] == NULL)
		all[9] = "";
	/* The server's connection budget: max_connections slots. */
	return exec_params(st,
			   "WITH srv AS (INSERT INTO servers (migration_id, role, host, port, tls,"
			   " ca_file, auth, master_user, max_connections, prefix, exclude)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
			   " RETURNING id, max_connections)"
			   " INSERT INTO server_slots (server_id, slot)"
			   " SELECT id, generate_series(1, max_connections) FROM srv",
			   11, all, NULL, error_r);
}

static int account_insert(struct store *st, const char *migration_id,
			  const struct store_new_account *a, const char **error_r)
{
	char prio[16];
	const char *values[6] = {migration_id,			 a->src_login,
				 (const char *)a->src_secret, a->dst_login,
				 (const char *)a->dst_secret, prio};
	int lengths[6] = {0, 0, (int)a->src_secret_len, 0, (int)a->dst_secret_len, 0};
	int formats[6] = {0, 0, 1, 0, 1, 0};
	PGresult *res;

	snprintf(prio, sizeof(prio), "%d", a->priority);
	res = PQexecParams(st->conn,
			   "INSERT INTO accounts (migration_id, src_login, src_secret, dst_login,"
			   " dst_secret, priority) VALUES ($1, $2, $3, $4, $5, $6)",
			   6, NULL, values, lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char what[512];
		snprintf(what, sizeof(what), "line %d: account %s", a->line, a->src_login);
		fail(st, error_r, what, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

int store_migration_import(struct store *st, const char *name, const struct store_server *src,
			   const struct store_server *dst, const struct store_new_account *accounts,
			   size_t count, int64_t *id_r, const char **error_r)
{
	const char *params[1] = {name};
	PGresult *res = NULL;
	const char *id;

	if (exec_simple(st, "BEGIN", error_r) < 0)
		return -1;
	if (exec_params(st, "INSERT INTO migrations (name) VALUES ($1) RETURNING id", 1, params,
			&res, error_r) < 0)
		goto fail;
	id = PQgetvalue(res, 0, 0);
	if (server_insert(st, id, "source", src, error_r) < 0 ||
	    server_insert(st, id, "destination", dst, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < count; i++)
		if (account_insert(st, id, &accounts[i], error_r) < 0)
			goto fail;
	*id_r = strtoll(id, NULL, 10);
	PQclear(res);
	return exec_simple(st, "COMMIT", error_r);
fail:
	PQclear(res);
	rollback(st);
	return -1;
}

/* The first column of res as ids (caller frees *ids_r); takes res. */
static int ids_from_result(PGresult *res, int64_t **ids_r, size_t *count_r, const char **error_r)
{
	int n = PQntuples(res);
	int64_t *ids = calloc(n > 0 ? n : 1, sizeof(*ids));

	if (ids == NULL) {
		PQclear(res);
		*error_r = "out of memory";
		return -1;
	}
	for (int i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	*ids_r = ids;
	*count_r = (size_t)n;
	return 0;
}

int store_pass_start(struct store *st, int64_t migration_id, int pass, int64_t **ids_r,
		     size_t *count_r, const char **error_r)
{
	char mid[32], p[16];
	const char *params[2] = {mid, p};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(p, sizeof(p), "%d", pass);
	if (exec_params(st,
			"WITH q AS (UPDATE accounts SET pass = $2, state = 'queued', updated_at = now(),"
			" published_at = NULL"
			" WHERE migration_id = $1"
			" AND state NOT IN ('new', 'cancelled', 'auth_failed', 'verify_failed')"
			" AND pass_done < $2 RETURNING id, priority, state)"
			" SELECT id FROM q ORDER BY priority, id",
			2, params, &res, error_r) < 0)
		return -1;
	return ids_from_result(res, ids_r, count_r, error_r);
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

static char *dup_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}

static void server_from_row(struct store_server *srv, const PGresult *res, int row)
{
	srv->id = strtoll(PQgetvalue(res, row, 10), NULL, 10);
	srv->host = dup_value(res, row, 1);
	srv->port = (int)strtol(PQgetvalue(res, row, 2), NULL, 10);
	srv->tls = dup_value(res, row, 3);
	srv->ca_file = dup_value(res, row, 4);
	srv->auth = dup_value(res, row, 5);
	srv->master_user = dup_value(res, row, 6);
	srv->max_connections = (int)strtol(PQgetvalue(res, row, 7), NULL, 10);
	srv->prefix = dup_value(res, row, 8);
	srv->exclude = dup_value(res, row, 9);
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

static int account_load(struct store *st, int64_t account_id, struct store_account *acct,
			const char **error_r)
{
	char aid[32];
	const char *params[1] = {aid};
	PGresult *res = NULL;
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	if (exec_params(st,
			"SELECT id, migration_id, src_login, encode(src_secret, 'hex'), dst_login,"
			" encode(dst_secret, 'hex'), state, pass FROM accounts WHERE id = $1",
			1, params, &res, error_r) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = "account vanished";
		return -1;
	}
	acct->id = account_id;
	acct->migration_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	acct->src_login = dup_value(res, 0, 2);
	if (hex_decode(PQgetvalue(res, 0, 3), &acct->src_secret, &acct->src_secret_len) < 0 ||
	    hex_decode(PQgetvalue(res, 0, 5), &acct->dst_secret, &acct->dst_secret_len) < 0) {
		PQclear(res);
		*error_r = "out of memory";
		return -1;
	}
	acct->dst_login = dup_value(res, 0, 4);
	acct->state = dup_value(res, 0, 6);
	acct->pass = (int)strtol(PQgetvalue(res, 0, 7), NULL, 10);
	PQclear(res);
	res = NULL;
	if (exec_params(st,
			"SELECT s.role, s.host, s.port, s.tls, s.ca_file, s.auth, s.master_user,"
			" s.max_connections, s.prefix, s.exclude, s.id FROM servers s JOIN accounts a"
			" ON a.migration_id = s.migration_id WHERE a.id = $1",
			1, params, &res, error_r) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 0), "source") == 0)
			server_from_row(&acct->src, res, i);
		else
			server_from_row(&acct->dst, res, i);
	}
	PQclear(res);
	if (acct->src.host == NULL || acct->dst.host == NULL) {
		*error_r = "migration has no source or destination server";
		return -1;
	}
	return 0;
}

int store_lease_take(struct store *st, int64_t account_id, int pass, const char *owner, int ttl_s,
		     int64_t *epoch_r, struct store_account *acct_r, const char **error_r)
{
	char aid[32], p[16], ttl[16];
	const char *params[4] = {aid, p, owner, ttl};
	PGresult *res = NULL;
	int64_t epoch;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(p, sizeof(p), "%d", pass);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if (exec_simple(st, "BEGIN", error_r) < 0)
		return -1;
	if (exec_params(st,
			"WITH old AS (SELECT state FROM accounts WHERE id = $1 FOR UPDATE)"
			" UPDATE accounts SET lease_owner = $3, lease_epoch = lease_epoch + 1,"
			" lease_expires = now() + make_interval(secs => $4::int), state = 'running',"
			" updated_at = now()"
			" WHERE id = $1 AND pass = $2::int AND pass_done < pass"
			" AND state NOT IN ('cancelled', 'paused', 'auth_failed')"
			" AND (lease_owner IS NULL OR lease_expires < now())"
			" RETURNING lease_epoch, (SELECT state FROM old)",
			4, params, &res, error_r) < 0)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		rollback(st);
		return 1;
	}
	epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	{
		const char *log_params[3] = {aid, PQgetvalue(res, 0, 1), owner};
		if (exec_params(st,
				"INSERT INTO account_log (account_id, from_state, to_state, reason)"
				" VALUES ($1, $2, 'running', 'lease taken by ' || $3)",
				3, log_params, NULL, error_r) < 0)
			goto fail;
	}
	PQclear(res);
	res = NULL;
	if (exec_simple(st, "COMMIT", error_r) < 0)
		goto fail;
	if (account_load(st, account_id, acct_r, error_r) < 0) {
		store_account_clear(acct_r);
		return -1;
	}
	*epoch_r = epoch;
	return 0;
fail:
	PQclear(res);
	rollback(st);
	return -1;
}

/* Starts a transaction fenced by the lease: STORE_LEASE_LOST if the epoch moved. */
static int fence_begin(struct store *st, int64_t account_id, int64_t epoch, const char **error_r)
{
	char aid[32], ep[32];
	const char *params[2] = {aid, ep};
	PGresult *res = NULL;
	int rows;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(ep, sizeof(ep), "%" PRId64, epoch);
	if (exec_simple(st, "BEGIN", error_r) < 0)
		return -1;
	if (exec_params(st,
			"SELECT 1 FROM accounts WHERE id = $1 AND lease_epoch = $2"
			" AND lease_owner IS NOT NULL FOR SHARE",
			2, params, &res, error_r) < 0) {
		rollback(st);
		return -1;
	}
	rows = PQntuples(res);
	PQclear(res);
	if (rows == 0) {
		rollback(st);
		*error_r = "lease lost: another worker owns this account now";
		return STORE_LEASE_LOST;
	}
	return 0;
}

static int fence_commit(struct store *st, const char **error_r)
{
	if (exec_simple(st, "COMMIT", error_r) < 0) {
		rollback(st);
		return -1;
	}
	return 0;
}

/* Runs one fenced statement: fence, statement, commit. */
static int fenced_exec(struct store *st, int64_t account_id, int64_t epoch, const char *sql,
		       int nparams, const char *const *params, PGresult **res_r,
		       const char **error_r)
{
	int ret = fence_begin(st, account_id, epoch, error_r);

	if (ret < 0)
		return ret;
	if (exec_params(st, sql, nparams, params, res_r, error_r) < 0) {
		rollback(st);
		return -1;
	}
	if (fence_commit(st, error_r) < 0) {
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
static int jobs_from_result(PGresult *res, struct store_job **jobs_r, size_t *count_r,
			    const char **error_r)
{
	int n = PQntuples(res);
	struct store_job *jobs = calloc(n > 0 ? n : 1, sizeof(*jobs));

	if (jobs == NULL) {
		PQclear(res);
		*error_r = "out of memory";
		return -1;
	}
	for (int i = 0; i < n; i++) {
		jobs[i].account_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		jobs[i].migration_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		jobs[i].pass = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
	}
	PQclear(res);
	*jobs_r = jobs;
	*count_r = (size_t)n;
	return 0;
}

int store_lease_renew(struct store *st, int64_t account_id, int64_t epoch, int ttl_s,
		      bool *stop_r, const char **error_r)
{
	char aid[32], ep[32], ttl[16];
	const char *params[3] = {aid, ep, ttl};
	PGresult *res = NULL;
	int rows;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(ep, sizeof(ep), "%" PRId64, epoch);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if (exec_params(st,
			"UPDATE accounts SET lease_expires = now() + make_interval(secs => $3::int)"
			" WHERE id = $1 AND lease_epoch = $2 AND lease_owner IS NOT NULL"
			" RETURNING state IN ('paused', 'cancelled')",
			3, params, &res, error_r) < 0)
		return -1;
	rows = PQntuples(res);
	*stop_r = rows > 0 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (rows == 0) {
		*error_r = "lease lost: another worker owns this account now";
		return STORE_LEASE_LOST;
	}
	return 0;
}

int store_accounts_control(struct store *st, int64_t migration_id, int64_t account_id,
			   const char *action, struct store_job **jobs_r, size_t *count_r,
			   const char **error_r)
{
	char mid[32], aid[32];
	const char *params[3] = {mid, aid, action};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	/* pause: anything not finished or refused; cancel: anything not cancelled;
	 * resume: paused accounts go back to queued (a pass left to finish) or
	 * synced (nothing left). */
	if (exec_params(st,
			"WITH target AS (SELECT id, state, pass, pass_done FROM accounts"
			"  WHERE migration_id = $1 AND ($2::bigint = 0 OR id = $2::bigint)"
			"  AND CASE $3 WHEN 'pause' THEN state IN ('new', 'verified', 'queued',"
			"   'running', 'failed', 'synced')"
			"   WHEN 'resume' THEN state = 'paused'"
			"   WHEN 'cancel' THEN state <> 'cancelled' ELSE false END FOR UPDATE),"
			" upd AS (UPDATE accounts a SET updated_at = now(), published_at = NULL,"
			"  state = CASE $3 WHEN 'pause' THEN 'paused' WHEN 'cancel' THEN 'cancelled'"
			"   ELSE CASE WHEN t.pass_done < t.pass THEN 'queued' ELSE 'synced' END END"
			"  FROM target t WHERE a.id = t.id RETURNING a.id, a.state, t.state AS old),"
			" logged AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
			"  SELECT id, old, state, 'operator: ' || $3 FROM upd)"
			" SELECT a.id, a.migration_id, a.pass FROM upd JOIN accounts a ON a.id = upd.id"
			" WHERE upd.state = 'queued' ORDER BY a.priority, a.id",
			3, params, &res, error_r) < 0)
		return -1;
	return jobs_from_result(res, jobs_r, count_r, error_r);
}

int store_lease_release(struct store *st, int64_t account_id, int64_t epoch, const char *state,
			const char *reason, const char **error_r)
{
	char aid[32], ep[32];
	const char *params[4] = {aid, ep, state, reason != NULL ? reason : ""};
	int ret;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(ep, sizeof(ep), "%" PRId64, epoch);
	ret = fence_begin(st, account_id, epoch, error_r);
	if (ret < 0)
		return ret;
	if (exec_params(st,
			"INSERT INTO account_log (account_id, from_state, to_state, reason)"
			" SELECT id, state, $3, $4 FROM accounts WHERE id = $1 AND lease_epoch = $2",
			4, params, NULL, error_r) < 0 ||
	    exec_params(st,
			"UPDATE accounts SET lease_owner = NULL, lease_expires = NULL,"
			/* An operator's pause or cancel outlives the worker's verdict. */
			" state = CASE WHEN state IN ('paused', 'cancelled') THEN state ELSE $3 END,"
			" pass_done = CASE WHEN $3 = 'synced' THEN pass ELSE pass_done END,"
			" published_at = CASE WHEN $3 = 'queued' THEN NULL ELSE published_at END,"
			/* Failed: retried after 10 s, 20 s, 40 s ... (at most 10 min). */
			" attempts = CASE WHEN $3 = 'failed' THEN attempts + 1"
			"  WHEN $3 = 'synced' THEN 0 ELSE attempts END,"
			" retry_at = CASE WHEN $3 = 'failed' THEN now() + make_interval(secs =>"
			"  least(600, 10 * power(2, attempts))) ELSE NULL END,"
			" last_error = CASE WHEN $3 IN ('failed', 'auth_failed') THEN $4"
			"  WHEN $3 = 'synced' THEN NULL ELSE last_error END,"
			" updated_at = now() WHERE id = $1 AND lease_epoch = $2",
			4, params, NULL, error_r) < 0) {
		rollback(st);
		return -1;
	}
	return fence_commit(st, error_r);
}

int store_account_error(struct store *st, int64_t account_id, int64_t epoch, const char *error,
			const char **error_r)
{
	char aid[32];
	const char *params[2] = {aid, error};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	return fenced_exec(st, account_id, epoch,
			   "UPDATE accounts SET last_error = $2, updated_at = now() WHERE id = $1",
			   2, params, NULL, error_r);
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
		     const char *dst_name, struct store_folder *folder_r, const char **error_r)
{
	char aid[32];
	const char *params[3] = {aid, src_name, dst_name};
	PGresult *res = NULL;
	struct store_folder f;
	int ret;

	memset(&f, 0, sizeof(f));
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	ret = fenced_exec(st, account_id, epoch,
			  "WITH ins AS (INSERT INTO folders (account_id, src_name, dst_name)"
			  " VALUES ($1, $2, $3) ON CONFLICT (account_id, src_name)"
			  " DO UPDATE SET dst_name = EXCLUDED.dst_name RETURNING *)"
			  " SELECT id, src_name, dst_name, src_uidvalidity, dst_uidvalidity, high_water,"
			  " highest_modseq, src_uidnext, src_messages, intent_dst_uidnext,"
			  " coalesce(intent_uids::text, '{}'), rematch FROM ins",
			  3, params, &res, error_r);
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
		*error_r = "folder row: cannot parse";
		return -1;
	}
	PQclear(res);
	*folder_r = f;
	return 0;
}

int store_folder_reset(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       uint32_t src_uidvalidity, uint32_t dst_uidvalidity, bool rematch,
		       const char **error_r)
{
	char fid[32], sv[16], dv[16];
	const char *params[4] = {fid, sv, dv, rematch ? "true" : "false"};
	int ret;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(sv, sizeof(sv), "%" PRIu32, src_uidvalidity);
	snprintf(dv, sizeof(dv), "%" PRIu32, dst_uidvalidity);
	ret = fence_begin(st, account_id, epoch, error_r);
	if (ret < 0)
		return ret;
	if ((rematch && exec_params(st, "DELETE FROM uid_map WHERE folder_id = $1", 1, params,
				    NULL, error_r) < 0) ||
	    exec_params(st,
			"UPDATE folders SET src_uidvalidity = $2, dst_uidvalidity = $3,"
			" high_water = 0, highest_modseq = 0, src_uidnext = 0, src_messages = 0,"
			" intent_dst_uidnext = 0, intent_uids = NULL, rematch = $4 WHERE id = $1",
			4, params, NULL, error_r) < 0) {
		rollback(st);
		return -1;
	}
	return fence_commit(st, error_r);
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
		len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu32, i > 0 ? "," : "",
					uids[i]);
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       uint32_t dst_uidnext, const uint32_t *uids, size_t count,
		       const char **error_r)
{
	char fid[32], next[16];
	char *arr = uid_array_format(uids, count);
	const char *params[3] = {fid, next, arr};
	int ret;

	if (arr == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(next, sizeof(next), "%" PRIu32, dst_uidnext);
	ret = fenced_exec(st, account_id, epoch,
			  "UPDATE folders SET intent_dst_uidnext = $2, intent_uids = $3::bigint[]"
			  " WHERE id = $1",
			  3, params, NULL, error_r);
	free(arr);
	return ret;
}

int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       const struct store_uidpair *pairs, size_t npairs,
		       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
		       size_t appended, uint64_t bytes, const char **error_r)
{
	uint32_t *src = NULL, *dst = NULL, *len = NULL;
	char *src_arr = NULL, *dst_arr = NULL, *len_arr = NULL;
	char fid[32], aid[32], hw[16], nb[32], nm[32], ne[32];
	size_t runs = 0;
	int ret = -1;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(hw, sizeof(hw), "%" PRIu32, high_water);
	snprintf(nb, sizeof(nb), "%" PRIu64, bytes);
	snprintf(nm, sizeof(nm), "%zu", appended);
	snprintf(ne, sizeof(ne), "%zu", nerrors);

	/* Compress the pairs into runs of consecutive UIDs on both sides. */
	src = calloc(npairs + 1, sizeof(*src));
	dst = calloc(npairs + 1, sizeof(*dst));
	len = calloc(npairs + 1, sizeof(*len));
	if (src == NULL || dst == NULL || len == NULL) {
		*error_r = "out of memory";
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
		*error_r = "out of memory";
		goto out;
	}
	ret = fence_begin(st, account_id, epoch, error_r);
	if (ret < 0)
		goto out;
	ret = -1;
	{
		const char *params[4] = {fid, src_arr, dst_arr, len_arr};
		if (runs > 0 &&
		    exec_params(st,
				"INSERT INTO uid_map (folder_id, src_start, dst_start, len)"
				" SELECT $1, s, d, l FROM unnest($2::bigint[], $3::bigint[],"
				" $4::int[]) AS r(s, d, l)"
				" ON CONFLICT (folder_id, src_start) DO UPDATE SET"
				" dst_start = EXCLUDED.dst_start, len = EXCLUDED.len",
				4, params, NULL, error_r) < 0)
			goto rollback;
	}
	for (size_t i = 0; i < nerrors; i++) {
		char uid[16];
		const char *params[4] = {aid, fid, uid, errors[i].error};
		snprintf(uid, sizeof(uid), "%" PRIu32, errors[i].src_uid);
		if (exec_params(st,
				"INSERT INTO message_errors (account_id, folder_id, src_uid, error)"
				" VALUES ($1, $2, $3, $4) ON CONFLICT (folder_id, src_uid)"
				" DO UPDATE SET error = EXCLUDED.error, at = now()",
				4, params, NULL, error_r) < 0)
			goto rollback;
	}
	{
		const char *params[5] = {fid, hw, nb, nm, ne};
		if (exec_params(st,
				"UPDATE folders SET high_water = greatest(high_water, $2::bigint),"
				" copied_bytes = copied_bytes + $3, copied_messages = copied_messages"
				" + $4, failed_messages = failed_messages + $5,"
				" intent_dst_uidnext = 0, intent_uids = NULL WHERE id = $1",
				5, params, NULL, error_r) < 0)
			goto rollback;
	}
	ret = fence_commit(st, error_r);
	goto out;
rollback:
	rollback(st);
out:
	free(src);
	free(dst);
	free(len);
	free(src_arr);
	free(dst_arr);
	free(len_arr);
	return ret;
}

int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
			uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
			const char **error_r)
{
	char fid[32], next[16], msgs[16], modseq[32];
	const char *params[4] = {fid, next, msgs, modseq};

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(next, sizeof(next), "%" PRIu32, src_uidnext);
	snprintf(msgs, sizeof(msgs), "%" PRIu32, src_messages);
	snprintf(modseq, sizeof(modseq), "%" PRIu64, highest_modseq);
	return fenced_exec(st, account_id, epoch,
			   "UPDATE folders SET src_uidnext = $2, src_messages = $3,"
			   " highest_modseq = $4, rematch = false, synced_at = now() WHERE id = $1",
			   4, params, NULL, error_r);
}

int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids,
			size_t count, uint32_t *dst_uids_r, const char **error_r)
{
	char fid[32];
	char *arr = uid_array_format(src_uids, count);
	const char *params[2] = {fid, arr};
	PGresult *res = NULL;
	size_t j = 0;

	if (arr == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	memset(dst_uids_r, 0, count * sizeof(*dst_uids_r));
	/* For each UID, the run with the greatest start <= UID (an index probe). */
	if (exec_params(st,
			"SELECT u, m.dst_start + (u - m.src_start) FROM unnest($2::bigint[]) AS u"
			" CROSS JOIN LATERAL (SELECT src_start, dst_start, len FROM uid_map"
			"  WHERE folder_id = $1 AND src_start <= u ORDER BY src_start DESC LIMIT 1) m"
			" WHERE u < m.src_start + m.len ORDER BY u",
			2, params, &res, error_r) < 0) {
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

int store_uidmap_clear(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       const char **error_r)
{
	char fid[32];
	const char *params[1] = {fid};

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	return fenced_exec(st, account_id, epoch, "DELETE FROM uid_map WHERE folder_id = $1", 1,
			   params, NULL, error_r);
}

int store_migration_status(struct store *st, int64_t migration_id, store_status_cb *cb,
			   void *context, const char **error_r)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (exec_params(st,
			"SELECT a.id, a.src_login, a.dst_login, a.state, coalesce(a.last_error, ''),"
			" a.pass, a.pass_done, count(f.id), coalesce(sum(f.copied_messages), 0),"
			" coalesce(sum(f.copied_bytes), 0), coalesce(sum(f.failed_messages), 0)"
			" FROM accounts a LEFT JOIN folders f ON f.account_id = a.id"
			" WHERE a.migration_id = $1 GROUP BY a.id ORDER BY a.id",
			1, params, &res, error_r) < 0)
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
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}

int store_schedule_step(struct store *st, size_t limit, int republish_s, size_t *reaped_r,
			struct store_job **jobs_r, size_t *count_r, const char **error_r)
{
	char lim[32], rep[16];
	const char *params[2] = {lim, rep};
	PGresult *res = NULL;

	snprintf(lim, sizeof(lim), "%zu", limit);
	snprintf(rep, sizeof(rep), "%d", republish_s);
	if (exec_params(st,
			"WITH reaped AS (UPDATE accounts SET state = 'queued', lease_owner = NULL,"
			"  lease_expires = NULL, published_at = NULL, updated_at = now()"
			"  WHERE state = 'running' AND lease_expires < now()"
			"  RETURNING id, lease_owner),"
			" logged AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
			"  SELECT id, 'running', 'queued', 'lease expired: worker gone or frozen'"
			"  FROM reaped)"
			" , retried AS (UPDATE accounts SET state = 'queued', published_at = NULL,"
			"  updated_at = now() WHERE state = 'failed' AND attempts < error_budget"
			"  AND retry_at <= now() RETURNING id, attempts),"
			" retry_logged AS (INSERT INTO account_log (account_id, from_state, to_state,"
			"  reason) SELECT id, 'failed', 'queued', 'retry ' || attempts FROM retried)"
			" SELECT (SELECT count(*) FROM reaped) + (SELECT count(*) FROM retried)",
			0, NULL, &res, error_r) < 0)
		return -1;
	*reaped_r = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (exec_params(st,
			"UPDATE accounts a SET published_at = now() FROM (SELECT id FROM accounts"
			"  WHERE state = 'queued' AND (published_at IS NULL OR published_at < now()"
			"  - make_interval(secs => $2::int)) ORDER BY priority, id LIMIT $1"
			"  FOR UPDATE SKIP LOCKED) due WHERE a.id = due.id"
			" RETURNING a.id, a.migration_id, a.pass, a.priority",
			2, params, &res, error_r) < 0)
		return -1;
	return jobs_from_result(res, jobs_r, count_r, error_r);
}

int store_jobs_published(struct store *st, const int64_t *account_ids, size_t count,
			 const char **error_r)
{
	size_t cap = 3 + count * 21, len = 0;
	char *arr = malloc(cap);
	const char *params[1];
	int ret;

	if (arr == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	arr[len++] = '{';
	for (size_t i = 0; i < count; i++)
		len += (size_t)snprintf(arr + len, cap - len, "%s%" PRId64, i > 0 ? "," : "",
					account_ids[i]);
	arr[len++] = '}';
	arr[len] = '\0';
	params[0] = arr;
	ret = exec_params(st, "UPDATE accounts SET published_at = now() WHERE id = ANY($1::bigint[])",
			  1, params, NULL, error_r);
	free(arr);
	return ret;
}

int store_scheduler_lock(struct store *st, const char **error_r)
{
	char key[32];
	const char *params[1] = {key};
	PGresult *res = NULL;
	int taken;

	snprintf(key, sizeof(key), "%lld", (long long)SCHEDULER_LOCK_KEY);
	if (exec_params(st, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, error_r) < 0)
		return -1;
	taken = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return taken;
}

int store_account_get(struct store *st, int64_t account_id, struct store_account *acct_r,
		      const char **error_r)
{
	memset(acct_r, 0, sizeof(*acct_r));
	if (account_load(st, account_id, acct_r, error_r) < 0) {
		store_account_clear(acct_r);
		return -1;
	}
	return 0;
}

int store_migration_accounts(struct store *st, int64_t migration_id, int64_t **ids_r,
			     size_t *count_r, const char **error_r)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (exec_params(st, "SELECT id FROM accounts WHERE migration_id = $1 ORDER BY id", 1,
			params, &res, error_r) < 0)
		return -1;
	return ids_from_result(res, ids_r, count_r, error_r);
}

int store_account_verified(struct store *st, int64_t account_id, const char *state,
			   const char *reason, const char **error_r)
{
	char aid[32];
	const char *params[3] = {aid, state, reason != NULL ? reason : ""};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	return exec_params(st,
			   "WITH old AS (SELECT id, state FROM accounts WHERE id = $1"
			   "  AND state IN ('new', 'verified', 'auth_failed', 'verify_failed')"
			   "  FOR UPDATE),"
			   " upd AS (UPDATE accounts a SET state = $2, updated_at = now(),"
			   "  last_error = CASE WHEN $2 = 'verified' THEN NULL ELSE $3 END"
			   "  FROM old WHERE a.id = old.id RETURNING a.id)"
			   " INSERT INTO account_log (account_id, from_state, to_state, reason)"
			   " SELECT id, state, $2, 'credential check: ' || $3 FROM old",
			   3, params, NULL, error_r);
}

int store_slot_take(struct store *st, int64_t server_id, const char *owner, int ttl_s,
		    int *slot_r, const char **error_r)
{
	char sid[32], ttl[16];
	const char *params[3] = {sid, owner, ttl};
	PGresult *res = NULL;
	int n;

	snprintf(sid, sizeof(sid), "%" PRId64, server_id);
	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	if (exec_params(st,
			"UPDATE server_slots s SET owner = $2,"
			" expires = now() + make_interval(secs => $3::int)"
			" FROM (SELECT server_id, slot FROM server_slots WHERE server_id = $1"
			"  AND (owner IS NULL OR expires < now()) ORDER BY slot LIMIT 1"
			"  FOR UPDATE SKIP LOCKED) free"
			" WHERE s.server_id = free.server_id AND s.slot = free.slot RETURNING s.slot",
			3, params, &res, error_r) < 0)
		return -1;
	n = PQntuples(res);
	if (n > 0)
		*slot_r = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n > 0 ? 0 : 1;
}

int store_slot_release(struct store *st, int64_t server_id, int slot, const char *owner,
		       const char **error_r)
{
	char sid[32], sl[16];
	const char *params[3] = {sid, sl, owner};

	snprintf(sid, sizeof(sid), "%" PRId64, server_id);
	snprintf(sl, sizeof(sl), "%d", slot);
	return exec_params(st,
			   "UPDATE server_slots SET owner = NULL, expires = NULL"
			   " WHERE server_id = $1 AND slot = $2 AND owner = $3",
			   3, params, NULL, error_r);
}

int store_slots_renew(struct store *st, const char *owner, int ttl_s, const char **error_r)
{
	char ttl[16];
	const char *params[2] = {owner, ttl};

	snprintf(ttl, sizeof(ttl), "%d", ttl_s);
	return exec_params(st,
			   "UPDATE server_slots SET expires = now() + make_interval(secs => $2::int)"
			   " WHERE owner = $1",
			   2, params, NULL, error_r);
}
