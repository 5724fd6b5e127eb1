/* Scheduling: what is owed to the queue and in what order.  The metered
 * publishing statement (connection budgets, blackout windows, priorities,
 * the live workers' room), the scheduler's housekeeping (reaper, retries,
 * wake-ups), jobs handed back, the active scheduler's lock and its wake-ups.
 * Driven by coordinator/scheduler.c; docs/DESIGN.md, "5. Scheduler".
 * PostgreSQL decides; Kafka only carries the decisions. */
#include "store-schedule.h"

#include "store-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

/* Advisory lock key of the active scheduler ("mshsch"). */
#define SCHEDULER_LOCK_KEY 0x6d7368736368LL

int store_scheduler_lock(struct store *st, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int taken;

	store_params_init(&q);
	store_param_i64(&q, SCHEDULER_LOCK_KEY);
	if (store_exec(st, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, err,
	               errlen) < 0)
		return -1;
	taken = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return taken ? STORE_LOCK_TAKEN : STORE_LOCK_ELSEWHERE;
}
/* Advisory lock key serialising publishers ("mshpub"), so two of them never
 * both spend the same free budget. */
#define PUBLISH_LOCK_KEY 0x6d7368707562LL

int store_publish_due(struct store *st, int64_t migration_id, size_t limit, int republish_s,
                      struct store_job **jobs_r, size_t *count_r, char *err, size_t errlen)
{
	struct store_params q, lock;
	const char *const *params = q.values;
	const char *const *lock_params = lock.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_u64(&q, limit);
	store_param_i64(&q, republish_s);
	store_params_init(&lock);
	store_param_i64(&lock, PUBLISH_LOCK_KEY);
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

int store_jobs_owed(struct store *st, const int64_t *account_ids, size_t count, char *err,
                    size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	int ret = -1;

	store_params_init(&q);
	store_param_ids(&q, account_ids, count);
	if (store_params_check(&q, err, errlen) < 0)
		goto out;
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
	store_params_free(&q);
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
