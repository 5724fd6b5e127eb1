/* Leases and slots: who runs an account (the lease and its epoch, which
 * fences every checkpoint write), how many connections a server takes across
 * the fleet (slots), how fast (rate clocks), and which workers are alive
 * (beats).  docs/DESIGN.md, "3. Fencing" and "5. Scheduler". */
#include "store-lease.h"

#include "log.h"
#include "store-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_lease_take(struct store *st, int64_t account_id, int pass, const char *owner, int ttl_s,
                     int64_t *epoch_r, struct store_account *acct_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int64_t epoch;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_i64(&q, pass);
	store_param_str(&q, owner);
	store_param_i64(&q, ttl_s);
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
		const char *log_params[3] = {params[0], PQgetvalue(res, 0, 1), owner};
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
	if (store_account_load(st, account_id, acct_r, err, errlen) < 0) {
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

int store_lease_renew(struct store *st, int64_t account_id, int64_t epoch, int ttl_s,
                      const char **stop_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int rows;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_i64(&q, epoch);
	store_param_i64(&q, ttl_s);
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

static int lease_release(struct store *st, int64_t account_id, int64_t epoch, const char *state,
                         const char *reason, int wait_s, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	int ret;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_i64(&q, epoch);
	store_param_str(&q, state);
	store_param_str(&q, reason != NULL ? reason : "");
	store_param_i64(&q, wait_s);
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

int store_slot_take(struct store *st, int64_t server_id, const char *owner, int ttl_s, int *slot_r,
                    char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int n;

	store_params_init(&q);
	store_param_i64(&q, server_id);
	store_param_str(&q, owner);
	store_param_i64(&q, ttl_s);
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
	struct store_params q;
	const char *const *params = q.values;

	store_params_init(&q);
	store_param_i64(&q, server_id);
	store_param_i64(&q, slot);
	store_param_str(&q, owner);
	return store_exec(st,
	                  "UPDATE server_slots SET owner = NULL, expires = NULL"
	                  " WHERE server_id = $1 AND slot = $2 AND owner = $3",
	                  3, params, NULL, err, errlen);
}

int store_slots_renew(struct store *st, const char *owner, int ttl_s, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;

	store_params_init(&q);
	store_param_str(&q, owner);
	store_param_i64(&q, ttl_s);
	return store_exec(st,
	                  "UPDATE server_slots SET expires = now() + make_interval(secs => $2::int)"
	                  " WHERE owner = $1",
	                  2, params, NULL, err, errlen);
}

int store_worker_beat(struct store *st, const char *worker, int capacity, int running,
                      bool room_freed, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;

	store_params_init(&q);
	store_param_str(&q, worker);
	store_param_i64(&q, capacity);
	store_param_i64(&q, running);
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

int store_rate_reserve(struct store *st, int64_t server_id, bool limited, size_t messages,
                       uint64_t bytes, double *wait_s_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, server_id);
	store_param_u64(&q, messages);
	store_param_u64(&q, bytes);
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
	struct store_params q;
	const char *const *params = q.values;

	store_params_init(&q);
	store_param_i64(&q, server_id);
	store_param_i64(&q, secs);
	return store_exec(st,
	                  "UPDATE servers SET rate_next = greatest(rate_next,"
	                  " now() + make_interval(secs => $2::int)) WHERE id = $1",
	                  2, params, NULL, err, errlen);
}
