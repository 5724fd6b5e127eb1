/* Accounts one by one: read (for a run or a credential check), found by
 * login, verified, given a new secret, paused/resumed/cancelled, removed. */
#include "store-account.h"

#include "store-private.h"
#include "store-schedule.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_account_clear(struct store_account *acct)
{
	free(acct->src_login);
	free(acct->dst_login);
	free(acct->folder_rules);
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

int store_account_load(struct store *st, int64_t account_id, struct store_account *acct, char *err,
                       size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	if (store_exec(st,
	               "SELECT id, migration_id, src_login, encode(src_secret, 'hex'), dst_login,"
	               " encode(dst_secret, 'hex'), state, pass,"
	               " coalesce((SELECT bytes FROM account_days d WHERE d.account_id = a.id"
	               "  AND d.day = (now() AT TIME ZONE 'UTC')::date), 0), folder_rules"
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
	acct->src_login = store_dup_value(res, 0, 2);
	if (store_hex_decode(PQgetvalue(res, 0, 3), &acct->src_secret, &acct->src_secret_len) < 0 ||
	    store_hex_decode(PQgetvalue(res, 0, 5), &acct->dst_secret, &acct->dst_secret_len) < 0) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	acct->dst_login = store_dup_value(res, 0, 4);
	acct->state = store_dup_value(res, 0, 6);
	acct->pass = (int)strtol(PQgetvalue(res, 0, 7), NULL, 10);
	acct->day_bytes = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
	acct->folder_rules = store_dup_value(res, 0, 9);
	PQclear(res);
	res = NULL;
	if (store_exec(st,
	               "SELECT s.id = a.src_server_id, " STORE_SERVER_COLUMNS " FROM servers s"
	               " JOIN accounts a ON s.id IN (a.src_server_id, a.dst_server_id)"
	               " WHERE a.id = $1",
	               1, params, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetvalue(res, i, 0)[0] == 't')
			store_server_from_row(&acct->src, res, i, 1);
		else
			store_server_from_row(&acct->dst, res, i, 1);
	}
	PQclear(res);
	if (acct->src.host == NULL || acct->dst.host == NULL) {
		snprintf(err, errlen, "migration has no source or destination server");
		return -1;
	}
	return 0;
}

int store_accounts_control(struct store *st, int64_t migration_id, int64_t account_id,
                           const char *action, struct store_job **jobs_r, size_t *count_r,
                           size_t *changed_r, size_t *unchanged_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	struct store_job *jobs;
	PGresult *res = NULL;
	size_t n = 0, total;
	int rows;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, account_id);
	store_param_str(&q, action);
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
	         * (an account paused before its first pass is not synced).  One
	         * paused while running, queued or waiting has finished its pass
	         * since (pass_done caught up): synced, not a "running" no worker
	         * holds and no reaper would ever requeue. */
	        "    ELSE (SELECT CASE WHEN s IN ('running', 'queued', 'waiting') THEN 'synced'"
	        "     ELSE s END FROM coalesce((SELECT l.from_state FROM account_log l"
	        "     WHERE l.account_id = t.id AND l.to_state = 'paused'"
	        "     AND l.from_state <> 'paused' ORDER BY l.id DESC LIMIT 1), 'synced') s) END"
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

int store_account_get(struct store *st, int64_t account_id, struct store_account *acct_r, char *err,
                      size_t errlen)
{
	memset(acct_r, 0, sizeof(*acct_r));
	if (store_account_load(st, account_id, acct_r, err, errlen) < 0) {
		store_account_clear(acct_r);
		return -1;
	}
	return 0;
}

int store_migration_accounts(struct store *st, int64_t migration_id, int64_t **ids_r,
                             size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	if (store_exec(st, "SELECT id FROM accounts WHERE migration_id = $1 ORDER BY id", 1, params,
	               &res, err, errlen) < 0)
		return -1;
	return store_ids_from_result(res, ids_r, count_r, err, errlen);
}

int store_account_verified(struct store *st, int64_t account_id, const char *state,
                           const char *reason, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, state);
	store_param_str(&q, reason != NULL ? reason : "");
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

int store_account_find(struct store *st, int64_t migration_id, const char *which,
                       int64_t *account_id_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int n;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_str(&q, which);
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

/* One statement writing an account's secret for a side: $1 the account, $2
 * the secret's bytes (binary, as they are), $3 "source" or "destination". */
static int secret_write(struct store *st, const char *sql, int64_t account_id, const char *side,
                        const unsigned char *secret, size_t len, char *err, size_t errlen)
{
	struct store_params q;
	int lengths[3] = {0, (int)len, 0}, formats[3] = {0, 1, 0};
	PGresult *res;
	int ok;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, (const char *)secret);
	store_param_str(&q, side);
	st->error[0] = '\0';
	res = store_pq_exec(st, sql, 3, q.values, lengths, formats);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		store_fail(st, err, errlen, "postgresql", res);
	PQclear(res);
	return ok ? 0 : -1;
}

int store_account_secret(struct store *st, int64_t account_id, const char *side,
                         const unsigned char *secret, size_t len, char *err, size_t errlen)
{
	/* A refused account needs its credentials checked again before it is
	 * scheduled; other states carry on (the next lease reads the secret). */
	return secret_write(
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
	    account_id, side, secret, len, err, errlen);
}

int store_account_token_rotated(struct store *st, int64_t account_id, const char *side,
                                const unsigned char *secret, size_t len, char *err, size_t errlen)
{
	/* Not fenced by the lease: the endpoint has already replaced the old
	 * token, so the new one is the only one worth keeping, whoever got it. */
	return secret_write(st,
	                    "UPDATE accounts SET"
	                    " src_secret = CASE WHEN $3 = 'source' THEN $2 ELSE src_secret END,"
	                    " dst_secret = CASE WHEN $3 = 'destination' THEN $2 ELSE dst_secret END"
	                    " WHERE id = $1",
	                    account_id, side, secret, len, err, errlen);
}

int store_account_remove(struct store *st, int64_t account_id, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	/* Its checkpoints, UID map and history go with it; a worker still
	 * running it finds its lease gone at the next write and stops. */
	return store_exec(st, "DELETE FROM accounts WHERE id = $1", 1, params, NULL, err, errlen);
}

int store_account_lease_holder(struct store *st, int64_t account_id, char *owner, size_t ownerlen,
                               char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	if (store_exec(st,
	               "SELECT coalesce(lease_owner, '') FROM accounts WHERE id = $1"
	               " AND lease_owner IS NOT NULL AND lease_expires > now()",
	               1, params, &res, err, errlen) < 0)
		return -1;
	snprintf(owner, ownerlen, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}
