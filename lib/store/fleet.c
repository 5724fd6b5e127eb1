/* The store's fleet side: passes as objects, the scheduler's metered
 * publishing (connection budgets, blackout windows, priorities), fleet-wide
 * rate limits, live totals from workers' events, and the operator's account
 * management.  PostgreSQL decides; Kafka only carries the decisions. */
#include "store-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

/* Advisory lock key serialising publishers ("mshpub"), so two of them never
 * both spend the same free budget. */
#define PUBLISH_LOCK_KEY 0x6d7368707562LL

/* A PostgreSQL array literal of ids, NULL for none (caller frees). */
static char *id_array(const int64_t *ids, size_t count)
{
	size_t cap = 3 + count * 21, len = 0;
	char *arr;

	if (ids == NULL)
		return NULL;
	arr = malloc(cap);
	if (arr == NULL)
		return NULL;
	arr[len++] = '{';
	for (size_t i = 0; i < count; i++)
		len +=
		    (size_t)snprintf(arr + len, cap - len, "%s%" PRId64, i > 0 ? "," : "", ids[i]);
	arr[len++] = '}';
	arr[len] = '\0';
	return arr;
}

int store_pass_start(struct store *st, int64_t migration_id, int pass, const char *kind,
                     const int64_t *account_ids, size_t naccounts, size_t *queued_r, char *err,
                     size_t errlen)
{
	char mid[32], p[16];
	char *ids = id_array(account_ids, naccounts);
	const char *params[4] = {mid, p, kind, ids};
	PGresult *res = NULL;
	int ret = -1;

	if (account_ids != NULL && ids == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(p, sizeof(p), "%d", pass);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		goto out;
	/* Queued: verified accounts, and those copied or tried before.  A
	 * running account keeps running its pass and is queued again for this
	 * one when it releases; a paused one keeps its operator's pause and
	 * runs this pass when resumed. */
	if (store_exec(
	        st,
	        "WITH p AS (INSERT INTO passes (migration_id, number, kind)"
	        "  VALUES ($1, $2, $3) ON CONFLICT (migration_id, number) DO NOTHING),"
	        " target AS (SELECT id, state FROM accounts WHERE migration_id = $1"
	        "  AND ($4::bigint[] IS NULL OR id = ANY($4::bigint[])) AND pass_done < $2"
	        "  AND state NOT IN ('new', 'cancelled', 'auth_failed', 'verify_failed')"
	        "  ORDER BY id FOR UPDATE),"
	        /* A waiting account (a daily cap) keeps waiting for its time. */
	        " q AS (UPDATE accounts a SET pass = $2, updated_at = now(),"
	        "  state = CASE WHEN t.state IN ('running', 'paused', 'waiting') THEN t.state"
	        "   ELSE 'queued' END,"
	        "  published_at = NULL, attempts = 0,"
	        "  retry_at = CASE WHEN t.state = 'waiting' THEN a.retry_at END"
	        "  FROM target t WHERE a.id = t.id RETURNING a.id, t.state AS old, a.state),"
	        " pa AS (INSERT INTO pass_accounts (account_id, number)"
	        "  SELECT id, $2 FROM q ON CONFLICT (account_id, number) DO UPDATE SET"
	        "  state = 'queued', queued_at = now(), finished_at = NULL),"
	        " logged AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
	        "  SELECT id, old, state, 'pass ' || $2 || ' (' || $3 || ') requested' FROM q)"
	        " SELECT count(*) FROM q",
	        4, params, &res, err, errlen) < 0)
		goto fail;
	*queued_r = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (*queued_r == 0) {
		/* Nothing to run: no pass is recorded (a later start, once the
		 * accounts are verified, is still pass 1). */
		store_rollback(st);
		ret = 0;
		goto out;
	}
	if (store_exec(st,
	               "UPDATE passes SET accounts = (SELECT count(*) FROM pass_accounts pa"
	               " JOIN accounts a ON a.id = pa.account_id WHERE a.migration_id = $1"
	               " AND pa.number = $2) WHERE migration_id = $1 AND number = $2",
	               2, params, NULL, err, errlen) < 0 ||
	    store_exec_simple(st, "NOTIFY mailshift_scheduler", err, errlen) < 0 ||
	    store_exec_simple(st, "COMMIT", err, errlen) < 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	store_rollback(st);
out:
	free(ids);
	return ret;
}

int store_migration_exists(struct store *st, int64_t migration_id, int pass, char *err,
                           size_t errlen)
{
	char mid[32], p[16];
	const char *params[2] = {mid, p};
	PGresult *res = NULL;
	bool migration, pass_exists;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(p, sizeof(p), "%d", pass);
	if (store_exec(st,
	               "SELECT EXISTS (SELECT 1 FROM migrations WHERE id = $1),"
	               " EXISTS (SELECT 1 FROM passes WHERE migration_id = $1 AND number = $2)",
	               2, params, &res, err, errlen) < 0)
		return -1;
	migration = PQgetvalue(res, 0, 0)[0] == 't';
	pass_exists = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!migration) {
		snprintf(err, errlen, "migration %" PRId64 " does not exist", migration_id);
		return -1;
	}
	if (pass > 0 && !pass_exists) {
		snprintf(err, errlen, "pass %d of migration %" PRId64 " does not exist", pass,
		         migration_id);
		return -1;
	}
	return 0;
}

int store_migration_states(struct store *st, int64_t migration_id, char *buf, size_t len,
                           int64_t *new_r, int64_t *verified_r, char *err, size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;
	size_t used = 0;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec(st,
	               "SELECT state, count(*) FROM accounts WHERE migration_id = $1"
	               " GROUP BY state ORDER BY state",
	               1, params, &res, err, errlen) < 0)
		return -1;
	buf[0] = '\0';
	*new_r = 0;
	*verified_r = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *state = PQgetvalue(res, i, 0);
		int64_t n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		int w;

		if (strcmp(state, "new") == 0)
			*new_r = n;
		else if (strcmp(state, "verified") == 0)
			*verified_r = n;
		w = snprintf(buf + used, len - used, "%s%" PRId64 " %s", i > 0 ? ", " : "", n,
		             state);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	PQclear(res);
	return 0;
}

int store_migration_cleartext(struct store *st, int64_t migration_id, char *buf, size_t len,
                              char *err, size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;
	size_t used = 0;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec(st,
	               "SELECT role, name FROM servers WHERE migration_id = $1 AND tls = 'none'"
	               " ORDER BY role DESC, id",
	               1, params, &res, err, errlen) < 0)
		return -1;
	buf[0] = '\0';
	for (int i = 0; i < PQntuples(res); i++) {
		const char *role = PQgetvalue(res, i, 0);
		int w;

		if (strcmp(role, "destination") == 0)
			w = snprintf(buf + used, len - used,
			             "warning: the destination uses tls none: passwords travel in"
			             " clear\n");
		else
			w = snprintf(
			    buf + used, len - used,
			    "warning: source '%s' uses tls none: passwords travel in clear\n",
			    PQgetvalue(res, i, 1));
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	PQclear(res);
	return 0;
}

int store_pass_last(struct store *st, int64_t migration_id, int *pass_r, char *err, size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec(st,
	               "SELECT greatest((SELECT max(number) FROM passes WHERE migration_id = $1),"
	               " (SELECT max(pass) FROM accounts WHERE migration_id = $1), 0)",
	               1, params, &res, err, errlen) < 0)
		return -1;
	*pass_r = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int store_publish_due(struct store *st, int64_t migration_id, size_t limit, int republish_s,
                      struct store_job **jobs_r, size_t *count_r, char *err, size_t errlen)
{
	char mid[32], lim[32], rep[16], key[32];
	const char *params[3] = {mid, lim, rep};
	const char *lock_params[1] = {key};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(lim, sizeof(lim), "%zu", limit);
	snprintf(rep, sizeof(rep), "%d", republish_s);
	snprintf(key, sizeof(key), "%lld", (long long)PUBLISH_LOCK_KEY);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	/* In flight on a server: accounts running, and jobs published but not
	 * taken yet.  Each needs at least one of the server's connections, so
	 * no more are published than its budget has room for; within that
	 * room, the lowest priority number first. */
	if (store_exec(st, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock_params, NULL, err,
	               errlen) < 0 ||
	    store_exec(
	        st,
	        "WITH inflight AS (SELECT sid, count(*) AS n FROM ("
	        "  SELECT unnest(ARRAY[src_server_id, dst_server_id]) AS sid FROM accounts"
	        "  WHERE state = 'running'"
	        "  UNION ALL SELECT unnest(ARRAY[src_server_id, dst_server_id]) FROM accounts"
	        "  WHERE state = 'queued' AND published_at >= now()"
	        "  - make_interval(secs => $3::int)) x GROUP BY sid),"
	        /* Room left in each server's budget, outside blackout windows. */
	        " room AS (SELECT s.id, s.max_connections - coalesce(f.n, 0) AS room"
	        "  FROM servers s LEFT JOIN inflight f ON f.sid = s.id"
	        "  WHERE ($1::bigint = 0 OR s.migration_id = $1::bigint)"
	        "  AND NOT server_blackout(s.id)),"
	        /* Per source server, as many candidates as it has room for (an
	         * index scan in priority order, whatever the queue's length)... */
	        " cand AS (SELECT c.* FROM room r CROSS JOIN LATERAL (SELECT a.id,"
	        "  a.priority, a.dst_server_id FROM accounts a WHERE a.src_server_id = r.id"
	        "  AND a.state = 'queued' AND (a.published_at IS NULL OR a.published_at"
	        "  < now() - make_interval(secs => $3::int)) ORDER BY a.priority, a.id"
	        "  LIMIT r.room FOR UPDATE SKIP LOCKED) c WHERE r.room > 0),"
	        /* ... of which the destinations take what they have room for. */
	        " ranked AS (SELECT cand.*, row_number() OVER (PARTITION BY cand.dst_server_id"
	        "  ORDER BY cand.priority, cand.id) AS rd FROM cand),"
	        /* Room in the live workers, less the jobs already on the way
	         * (no worker seen lately: no limit, they may be starting). */
	        " workers_room AS (SELECT CASE WHEN count(*) = 0 THEN NULL"
	        "  ELSE greatest(sum(greatest(capacity - running, 0)) - (SELECT count(*)"
	        "  FROM accounts WHERE state = 'queued' AND published_at >= now()"
	        "  - make_interval(secs => $3::int)), 0) END AS n FROM workers"
	        "  WHERE seen_at > now() - interval '15 seconds'),"
	        " pick AS (SELECT ranked.id FROM ranked JOIN room d ON d.id = ranked.dst_server_id"
	        "  WHERE ranked.rd <= d.room ORDER BY ranked.priority, ranked.id"
	        "  LIMIT least($2, (SELECT n FROM workers_room))),"
	        " upd AS (UPDATE accounts a SET published_at = now(), publishes = publishes + 1"
	        "  FROM pick WHERE a.id = pick.id"
	        "  RETURNING a.id, a.migration_id, a.pass, a.priority, a.publishes)"
	        " SELECT id, migration_id, pass, publishes FROM upd ORDER BY priority, id",
	        3, params, &res, err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	if (store_exec_simple(st, "COMMIT", err, errlen) < 0) {
		PQclear(res);
		store_rollback(st);
		return -1;
	}
	return store_jobs_from_result(res, jobs_r, count_r, err, errlen);
}

int store_schedule_step(struct store *st, size_t *requeued_r, char *err, size_t errlen)
{
	PGresult *res = NULL;

	if (store_exec(
	        st,
	        /* A row locked by a worker's checkpoint is left for the next
	         * step: one frozen worker must not stall the scheduler. */
	        "WITH expired AS (SELECT id FROM accounts WHERE state = 'running'"
	        "  AND lease_expires < now() FOR UPDATE SKIP LOCKED),"
	        " reaped AS (UPDATE accounts a SET state = 'queued', lease_owner = NULL,"
	        "  lease_expires = NULL, published_at = NULL, updated_at = now()"
	        "  FROM expired e WHERE a.id = e.id RETURNING a.id, a.lease_pass),"
	        " reaped_pass AS (UPDATE pass_accounts pa SET state = 'queued' FROM reaped r"
	        "  WHERE pa.account_id = r.id AND pa.number = r.lease_pass),"
	        " logged AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
	        "  SELECT id, 'running', 'queued', 'lease expired: worker gone or frozen'"
	        "  FROM reaped),"
	        " due AS (SELECT id FROM accounts WHERE state = 'failed'"
	        "  AND attempts < error_budget AND retry_at <= now() FOR UPDATE SKIP LOCKED),"
	        " retried AS (UPDATE accounts a SET state = 'queued', published_at = NULL,"
	        "  updated_at = now() FROM due d WHERE a.id = d.id RETURNING a.id, a.attempts),"
	        " retry_logged AS (INSERT INTO account_log (account_id, from_state, to_state,"
	        "  reason) SELECT id, 'failed', 'queued', 'retry ' || attempts FROM retried),"
	        /* Waiting for a daily cap to reset or a server to stop throttling. */
	        " awake AS (SELECT id FROM accounts WHERE state = 'waiting'"
	        "  AND retry_at <= now() FOR UPDATE SKIP LOCKED),"
	        " woken AS (UPDATE accounts a SET state = 'queued', published_at = NULL,"
	        "  retry_at = NULL, updated_at = now() FROM awake w WHERE a.id = w.id"
	        "  RETURNING a.id),"
	        " woken_logged AS (INSERT INTO account_log (account_id, from_state, to_state,"
	        "  reason) SELECT id, 'waiting', 'queued', 'wait over' FROM woken)"
	        " SELECT (SELECT count(*) FROM reaped) + (SELECT count(*) FROM retried)"
	        "  + (SELECT count(*) FROM woken)",
	        0, NULL, &res, err, errlen) < 0)
		return -1;
	*requeued_r = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int store_worker_beat(struct store *st, const char *worker, int capacity, int running,
                      bool room_freed, char *err, size_t errlen)
{
	char cap[16], run[16];
	const char *params[3] = {worker, cap, run};

	snprintf(cap, sizeof(cap), "%d", capacity);
	snprintf(run, sizeof(run), "%d", running);
	if (store_exec(st,
	               "INSERT INTO workers (id, capacity, running) VALUES ($1, $2, $3)"
	               " ON CONFLICT (id) DO UPDATE SET capacity = EXCLUDED.capacity,"
	               " running = EXCLUDED.running, seen_at = now()",
	               3, params, NULL, err, errlen) < 0)
		return -1;
	return room_freed ? store_exec_simple(st, "NOTIFY mailshift_scheduler", err, errlen) : 0;
}

int store_worker_gone(struct store *st, const char *worker, char *err, size_t errlen)
{
	const char *params[1] = {worker};

	return store_exec(st, "DELETE FROM workers WHERE id = $1", 1, params, NULL, err, errlen);
}

int store_worker_seen(struct store *st, const char *worker, double *seen_r, char *err,
                      size_t errlen)
{
	const char *params[1] = {worker};
	PGresult *res = NULL;

	*seen_r = 0;
	if (store_exec(st,
	               "SELECT extract(epoch FROM seen_at) FROM workers WHERE id = $1"
	               " AND seen_at > now() - interval '15 seconds'",
	               1, params, &res, err, errlen) < 0)
		return -1;
	if (PQntuples(res) > 0)
		*seen_r = strtod(PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	return 0;
}

int store_jobs_owed(struct store *st, const int64_t *account_ids, size_t count, char *err,
                    size_t errlen)
{
	char *ids = id_array(account_ids, count);
	const char *params[1] = {ids};
	int ret = -1;

	if (ids == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		goto out;
	if (store_exec(st,
	               "UPDATE accounts SET published_at = NULL"
	               " WHERE id = ANY($1::bigint[]) AND state = 'queued'",
	               1, params, NULL, err, errlen) < 0 ||
	    store_exec_simple(st, "NOTIFY mailshift_scheduler", err, errlen) < 0 ||
	    store_exec_simple(st, "COMMIT", err, errlen) < 0) {
		store_rollback(st);
		goto out;
	}
	ret = 0;
out:
	free(ids);
	return ret;
}

int store_listen(struct store *st, char *err, size_t errlen)
{
	return store_exec_simple(st, "LISTEN mailshift_scheduler", err, errlen);
}

int store_wait_notify(struct store *st, int timeout_ms, char *err, size_t errlen)
{
	int sock = PQsocket(st->conn), got = 0;
	PGnotify *n;
	fd_set fds;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

	if (sock < 0)
		return store_fail(st, err, errlen, "postgresql", NULL);
	FD_ZERO(&fds);
	FD_SET(sock, &fds);
	if (select(sock + 1, &fds, NULL, NULL, &tv) < 0)
		return 0; /* a signal: the caller looks at its stop flag */
	if (!PQconsumeInput(st->conn))
		return store_fail(st, err, errlen, "postgresql", NULL);
	while ((n = PQnotifies(st->conn)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

int store_rate_reserve(struct store *st, int64_t server_id, bool limited, size_t messages,
                       uint64_t bytes, double *wait_s_r, char *err, size_t errlen)
{
	char sid[32], nm[32], nb[32];
	const char *params[3] = {sid, nm, nb};
	PGresult *res = NULL;

	snprintf(sid, sizeof(sid), "%" PRId64, server_id);
	snprintf(nm, sizeof(nm), "%zu", messages);
	snprintf(nb, sizeof(nb), "%" PRIu64, bytes);
	/* Servers without limits only read their clock (a throttled server
	 * moves it too), without a lock. */
	if (!limited) {
		if (store_exec(
		        st,
		        "SELECT greatest(0, extract(epoch FROM rate_next - now())) FROM servers"
		        " WHERE id = $1",
		        1, params, &res, err, errlen) < 0)
			return -1;
		*wait_s_r = PQntuples(res) > 0 ? strtod(PQgetvalue(res, 0, 0), NULL) : 0;
		PQclear(res);
		return 0;
	}
	/* A virtual clock per server: the batch starts when the budget spent
	 * before it is used up, and moves the clock by its own cost. */
	if (store_exec(st,
	               "WITH s AS (SELECT id, greatest(rate_next, now()) AS start,"
	               "  greatest(CASE WHEN rate_messages > 0 THEN $2::float8 / rate_messages"
	               "   ELSE 0 END, CASE WHEN rate_bytes > 0 THEN $3::float8 / rate_bytes"
	               "   ELSE 0 END) AS cost, rate_messages > 0 OR rate_bytes > 0 AS limited"
	               "  FROM servers WHERE id = $1 FOR NO KEY UPDATE),"
	               " upd AS (UPDATE servers v SET rate_next = s.start"
	               "  + make_interval(secs => s.cost) FROM s WHERE v.id = s.id AND s.limited)"
	               " SELECT extract(epoch FROM s.start - now()) FROM s",
	               3, params, &res, err, errlen) < 0)
		return -1;
	*wait_s_r = PQntuples(res) > 0 ? strtod(PQgetvalue(res, 0, 0), NULL) : 0;
	PQclear(res);
	return 0;
}

int store_rate_penalty(struct store *st, int64_t server_id, int secs, char *err, size_t errlen)
{
	char sid[32], s[16];
	const char *params[2] = {sid, s};

	snprintf(sid, sizeof(sid), "%" PRId64, server_id);
	snprintf(s, sizeof(s), "%d", secs);
	return store_exec(st,
	                  "UPDATE servers SET rate_next = greatest(rate_next,"
	                  " now() + make_interval(secs => $2::int)) WHERE id = $1",
	                  2, params, NULL, err, errlen);
}

int store_passes(struct store *st, int64_t migration_id, store_pass_cb *cb, void *context,
                 char *err, size_t errlen)
{
	char mid[32];
	const char *params[1] = {mid};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	if (store_exec(st,
	               "SELECT p.number, p.kind, to_char(p.started_at AT TIME ZONE 'UTC',"
	               "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), count(pa.account_id),"
	               " count(pa.account_id) FILTER (WHERE pa.state = 'synced'),"
	               " coalesce((SELECT sum(f.messages) FROM pass_folders f JOIN folders fo"
	               "  ON fo.id = f.folder_id JOIN accounts a ON a.id = fo.account_id"
	               "  WHERE a.migration_id = p.migration_id AND f.number = p.number), 0),"
	               " coalesce((SELECT sum(f.bytes) FROM pass_folders f JOIN folders fo"
	               "  ON fo.id = f.folder_id JOIN accounts a ON a.id = fo.account_id"
	               "  WHERE a.migration_id = p.migration_id AND f.number = p.number), 0),"
	               " coalesce((SELECT sum(f.failed) FROM pass_folders f JOIN folders fo"
	               "  ON fo.id = f.folder_id JOIN accounts a ON a.id = fo.account_id"
	               "  WHERE a.migration_id = p.migration_id AND f.number = p.number), 0),"
	               " CASE WHEN count(pa.account_id) > 0 AND bool_and(pa.state = 'synced')"
	               "  THEN extract(epoch FROM max(pa.finished_at) - p.started_at) END,"
	               " (SELECT count(*) FROM pass_folders f JOIN folders fo"
	               "  ON fo.id = f.folder_id JOIN accounts a ON a.id = fo.account_id"
	               "  WHERE a.migration_id = p.migration_id AND f.number = p.number"
	               "  AND f.error IS NOT NULL),"
	               " coalesce((SELECT sum(f.matched) FROM pass_folders f JOIN folders fo"
	               "  ON fo.id = f.folder_id JOIN accounts a ON a.id = fo.account_id"
	               "  WHERE a.migration_id = p.migration_id AND f.number = p.number), 0)"
	               " FROM passes p LEFT JOIN pass_accounts pa ON pa.number = p.number"
	               "  AND pa.account_id IN (SELECT id FROM accounts WHERE migration_id = $1)"
	               " WHERE p.migration_id = $1 GROUP BY p.migration_id, p.number"
	               " ORDER BY p.number",
	               1, params, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_pass_row row = {
		    .number = (int)strtol(PQgetvalue(res, i, 0), NULL, 10),
		    .kind = PQgetvalue(res, i, 1),
		    .started_at = PQgetvalue(res, i, 2),
		    .accounts = strtoll(PQgetvalue(res, i, 3), NULL, 10),
		    .synced = strtoll(PQgetvalue(res, i, 4), NULL, 10),
		    .messages = strtoll(PQgetvalue(res, i, 5), NULL, 10),
		    .bytes = strtoll(PQgetvalue(res, i, 6), NULL, 10),
		    .failed = strtoll(PQgetvalue(res, i, 7), NULL, 10),
		    .seconds = PQgetisnull(res, i, 8) ? -1 : strtod(PQgetvalue(res, i, 8), NULL),
		    .failed_folders = strtoll(PQgetvalue(res, i, 9), NULL, 10),
		    .matched = strtoll(PQgetvalue(res, i, 10), NULL, 10),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}

int store_pass_accounts(struct store *st, int64_t migration_id, int pass, store_pass_account_cb *cb,
                        void *context, char *err, size_t errlen)
{
	char mid[32], p[16];
	const char *params[2] = {mid, p};
	PGresult *res = NULL;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	snprintf(p, sizeof(p), "%d", pass);
	if (store_exec(st,
	               "SELECT a.id, a.src_login, pa.state, pa.runs,"
	               " coalesce(to_char(pa.started_at AT TIME ZONE 'UTC',"
	               "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
	               " coalesce(extract(epoch FROM pa.finished_at - pa.started_at), -1),"
	               " count(f.folder_id), coalesce(sum(f.messages), 0),"
	               " coalesce(sum(f.bytes), 0), coalesce(sum(f.failed), 0),"
	               " count(f.folder_id) FILTER (WHERE f.error IS NOT NULL),"
	               " coalesce(sum(f.matched), 0)"
	               " FROM pass_accounts pa JOIN accounts a ON a.id = pa.account_id"
	               " LEFT JOIN folders fo ON fo.account_id = a.id"
	               " LEFT JOIN pass_folders f ON f.folder_id = fo.id AND f.number = pa.number"
	               " WHERE a.migration_id = $1 AND pa.number = $2"
	               " GROUP BY a.id, pa.account_id, pa.number ORDER BY a.id",
	               2, params, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_pass_account_row row = {
		    .account_id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .src_login = PQgetvalue(res, i, 1),
		    .state = PQgetvalue(res, i, 2),
		    .runs = (int)strtol(PQgetvalue(res, i, 3), NULL, 10),
		    .started_at = PQgetvalue(res, i, 4),
		    .seconds = strtod(PQgetvalue(res, i, 5), NULL),
		    .folders = strtoll(PQgetvalue(res, i, 6), NULL, 10),
		    .messages = strtoll(PQgetvalue(res, i, 7), NULL, 10),
		    .bytes = strtoll(PQgetvalue(res, i, 8), NULL, 10),
		    .failed = strtoll(PQgetvalue(res, i, 9), NULL, 10),
		    .failed_folders = strtoll(PQgetvalue(res, i, 10), NULL, 10),
		    .matched = strtoll(PQgetvalue(res, i, 11), NULL, 10),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}

int store_live_update(struct store *st, const struct store_live *rows, size_t count, char *err,
                      size_t errlen)
{
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		char aid[32], p[16], m[32], b[32], e[32];
		const char *params[7] = {aid, p, m, b, e, rows[i].worker, rows[i].folder};

		snprintf(aid, sizeof(aid), "%" PRId64, rows[i].account_id);
		snprintf(p, sizeof(p), "%d", rows[i].pass);
		snprintf(m, sizeof(m), "%" PRIu64, rows[i].messages);
		snprintf(b, sizeof(b), "%" PRIu64, rows[i].bytes);
		snprintf(e, sizeof(e), "%" PRIu64, rows[i].errors);
		/* An account removed meanwhile has no row to update: skipped. */
		if (store_exec(st,
		               "INSERT INTO live_totals (account_id, pass, messages, bytes, errors,"
		               " worker, folder) SELECT $1, $2, $3, $4, $5, $6, $7"
		               " WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1)"
		               " ON CONFLICT (account_id) DO UPDATE SET pass = EXCLUDED.pass,"
		               " messages = EXCLUDED.messages, bytes = EXCLUDED.bytes,"
		               " errors = EXCLUDED.errors, worker = EXCLUDED.worker,"
		               " folder = EXCLUDED.folder, updated_at = now()",
		               7, params, NULL, err, errlen) < 0) {
			store_rollback(st);
			return -1;
		}
	}
	return store_exec_simple(st, "COMMIT", err, errlen);
}

int store_account_find(struct store *st, int64_t migration_id, const char *which,
                       int64_t *account_id_r, char *err, size_t errlen)
{
	char mid[32];
	const char *params[2] = {mid, which};
	PGresult *res = NULL;
	int n;

	snprintf(mid, sizeof(mid), "%" PRId64, migration_id);
	/* A source login (case-insensitive, as servers treat it) or an id. */
	if (store_exec(st,
	               "SELECT id FROM (SELECT 1 AS k, id FROM accounts WHERE migration_id = $1"
	               "  AND lower(src_login) = lower($2)"
	               " UNION ALL SELECT 2, id FROM accounts WHERE migration_id = $1"
	               "  AND id = CASE WHEN $2 ~ '^[0-9]{1,18}$' THEN $2::bigint END) x"
	               " ORDER BY k LIMIT 1",
	               2, params, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	if (n == 1)
		*account_id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (n == 0) {
		snprintf(err, errlen, "migration %" PRId64 " has no account \"%.200s\"",
		         migration_id, which);
		return -1;
	}
	return 0;
}

int store_account_secret(struct store *st, int64_t account_id, const char *side,
                         const unsigned char *secret, size_t len, char *err, size_t errlen)
{
	char aid[32];
	const char *values[3] = {aid, (const char *)secret, side};
	int lengths[3] = {0, (int)len, 0}, formats[3] = {0, 1, 0};
	PGresult *res;
	int ok;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	/* A refused account needs its credentials checked again before it is
	 * scheduled; other states carry on (the next lease reads the secret). */
	st->error[0] = '\0';
	res = store_pq_exec(
	    st,
	    "WITH old AS (SELECT id, state FROM accounts WHERE id = $1 FOR UPDATE),"
	    " upd AS (UPDATE accounts a SET"
	    "  src_secret = CASE WHEN $3 = 'source' THEN $2 ELSE src_secret END,"
	    "  dst_secret = CASE WHEN $3 = 'destination' THEN $2 ELSE dst_secret END,"
	    "  state = CASE WHEN old.state IN ('auth_failed', 'verify_failed')"
	    "   THEN 'new' ELSE old.state END, updated_at = now()"
	    "  FROM old WHERE a.id = old.id RETURNING a.id, a.state, old.state AS was)"
	    " INSERT INTO account_log (account_id, from_state, to_state, reason)"
	    " SELECT id, was, state, 'operator: ' || $3 || ' password updated' FROM upd",
	    3, values, lengths, formats);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		store_fail(st, err, errlen, "postgresql", res);
	PQclear(res);
	return ok ? 0 : -1;
}

int store_account_remove(struct store *st, int64_t account_id, char *err, size_t errlen)
{
	char aid[32];
	const char *params[1] = {aid};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	/* Its checkpoints, UID map and history go with it; a worker still
	 * running it finds its lease gone at the next write and stops. */
	return store_exec(st, "DELETE FROM accounts WHERE id = $1", 1, params, NULL, err, errlen);
}

int store_account_lease_holder(struct store *st, int64_t account_id, char *owner, size_t ownerlen,
                               char *err, size_t errlen)
{
	char aid[32];
	const char *params[1] = {aid};
	PGresult *res = NULL;

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	if (store_exec(st,
	               "SELECT coalesce(lease_owner, '') FROM accounts WHERE id = $1"
	               " AND lease_owner IS NOT NULL AND lease_expires > now()",
	               1, params, &res, err, errlen) < 0)
		return -1;
	snprintf(owner, ownerlen, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}
