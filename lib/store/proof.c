/* The inspections' statements: folder mapping and UID map read for a proof,
 * keywords dropped (worker, fenced), proofs kept, destination reset, the
 * measured rate of an estimate. */
#include "store-proof.h"

#include "store-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3339 UTC text of a timestamptz column. */
#define RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

int store_proof_folders(struct store *st, int64_t account_id, struct store_proof_folder **rows_r,
                        size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	struct store_proof_folder *rows;
	int n;

	*rows_r = NULL;
	*count_r = 0;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	if (store_exec(st,
	               "SELECT id, src_name, dst_name, error FROM folders WHERE account_id = $1"
	               " ORDER BY src_name",
	               1, q.values, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	rows = calloc((size_t)n + 1, sizeof(*rows));
	if (rows == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		rows[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		rows[i].src_name = store_dup_value(res, i, 1);
		rows[i].dst_name = store_dup_value(res, i, 2);
		rows[i].error = store_dup_value(res, i, 3);
	}
	PQclear(res);
	*rows_r = rows;
	*count_r = (size_t)n;
	return 0;
}

void store_proof_folders_free(struct store_proof_folder **rows, size_t count)
{
	if (*rows == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*rows)[i].src_name);
		free((*rows)[i].dst_name);
		free((*rows)[i].error);
	}
	free(*rows);
	*rows = NULL;
}

int store_uidmap_all(struct store *st, int64_t folder_id, struct store_uidpair **pairs_r,
                     size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	struct store_uidpair *pairs;
	int n;

	*pairs_r = NULL;
	*count_r = 0;
	store_params_init(&q);
	store_param_i64(&q, folder_id);
	/* Runs expanded in SQL: one row per message. */
	if (store_exec(st,
	               "SELECT src_start + i, dst_start + i FROM uid_map,"
	               " generate_series(0, len - 1) AS i WHERE folder_id = $1"
	               " ORDER BY 1",
	               1, q.values, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	pairs = calloc((size_t)n + 1, sizeof(*pairs));
	if (pairs == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		pairs[i].src = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
		pairs[i].dst = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
	}
	PQclear(res);
	*pairs_r = pairs;
	*count_r = (size_t)n;
	return 0;
}

int store_folder_notes(struct store *st, int64_t folder_id, bool keywords,
                       struct store_uid_note **notes_r, size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	struct store_uid_note *notes;
	int n;

	*notes_r = NULL;
	*count_r = 0;
	store_params_init(&q);
	store_param_i64(&q, folder_id);
	if (store_exec(st,
	               keywords ? "SELECT src_uid, dst_uid, keywords, error FROM keywords_dropped"
	                          " WHERE folder_id = $1 ORDER BY src_uid"
	                        : "SELECT src_uid, 0, NULL, error FROM message_errors"
	                          " WHERE folder_id = $1 ORDER BY src_uid",
	               1, q.values, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	notes = calloc((size_t)n + 1, sizeof(*notes));
	if (notes == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		notes[i].src_uid = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
		notes[i].dst_uid = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
		notes[i].keywords = store_dup_value(res, i, 2);
		notes[i].error = store_dup_value(res, i, 3);
	}
	PQclear(res);
	*notes_r = notes;
	*count_r = (size_t)n;
	return 0;
}

void store_uid_notes_free(struct store_uid_note **notes, size_t count)
{
	if (*notes == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*notes)[i].keywords);
		free((*notes)[i].error);
	}
	free(*notes);
	*notes = NULL;
}

int store_keywords_dropped_put(struct store *st, int64_t account_id, int64_t epoch,
                               int64_t folder_id, const struct store_uid_note *notes, size_t n,
                               char *err, size_t errlen)
{
	int ret;

	if (n == 0)
		return 0;
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		struct store_params q;
		store_params_init(&q);
		store_param_i64(&q, folder_id);
		store_param_u32(&q, notes[i].src_uid);
		store_param_u32(&q, notes[i].dst_uid);
		store_param_str(&q, notes[i].keywords);
		store_param_str(&q, notes[i].error);
		if (store_exec(
		        st,
		        "INSERT INTO keywords_dropped (folder_id, src_uid, dst_uid, keywords,"
		        " error) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (folder_id, src_uid)"
		        " DO UPDATE SET dst_uid = $3, keywords = $4, error = $5, at = now()",
		        5, q.values, NULL, err, errlen) < 0) {
			store_rollback(st);
			return -1;
		}
	}
	return store_fence_commit(st, err, errlen);
}

int store_proof_put(struct store *st, int64_t account_id, const char *trigger, bool exact,
                    int64_t missing, int64_t extra, int64_t changed, const char *report_json,
                    char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, trigger);
	store_param_bool(&q, exact);
	store_param_i64(&q, missing);
	store_param_i64(&q, extra);
	store_param_i64(&q, changed);
	store_param_str(&q, report_json);
	return store_exec(st,
	                  "INSERT INTO proofs (account_id, at, trigger, exact, missing, extra,"
	                  " changed, report) VALUES ($1, now(), $2, $3, $4, $5, $6, $7::jsonb)"
	                  " ON CONFLICT (account_id) DO UPDATE SET at = now(), trigger = $2,"
	                  " exact = $3, missing = $4, extra = $5, changed = $6, report = $7::jsonb",
	                  7, q.values, NULL, err, errlen);
}

int store_proof_get(struct store *st, int64_t account_id, char **json_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;

	*json_r = NULL;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	if (store_exec(st, "SELECT report::text FROM proofs WHERE account_id = $1", 1, q.values,
	               &res, err, errlen) < 0)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 1;
	}
	*json_r = store_dup_value(res, 0, 0);
	PQclear(res);
	if (*json_r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int store_proofs_summary(struct store *st, int64_t migration_id, char **json_r, char *err,
                         size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;

	*json_r = NULL;
	store_params_init(&q);
	store_param_i64(&q, migration_id);
	if (store_exec(st,
	               "SELECT coalesce(json_agg(json_build_object('account', a.src_login,"
	               " 'account_id', a.id, 'at', " RFC3339(
	                   "p.at") ", 'trigger', p.trigger,"
	                           " 'exact', p.exact, 'missing', p.missing, 'extra', p.extra,"
	                           " 'changed', p.changed) ORDER BY a.id), '[]')::text"
	                           " FROM proofs p JOIN accounts a ON a.id = p.account_id"
	                           " WHERE a.migration_id = $1",
	               1, q.values, &res, err, errlen) < 0)
		return -1;
	*json_r = store_dup_value(res, 0, 0);
	PQclear(res);
	if (*json_r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int store_final_proofs_claim(struct store *st, int64_t **ids_r, size_t *count_r, char *err,
                             size_t errlen)
{
	PGresult *res = NULL;

	/* One claim per (account, final pass): a second coordinator, or the
	 * next step, never proves it again.  One at a time, so a coordinator
	 * that dies while proving leaves at most that one unproven. */
	if (store_exec(st,
	               "UPDATE pass_accounts SET proof_claimed_at = now()"
	               " WHERE (account_id, number) IN (SELECT pa.account_id, pa.number"
	               "  FROM pass_accounts pa JOIN accounts a ON a.id = pa.account_id"
	               "  JOIN passes p ON p.migration_id = a.migration_id AND p.number = pa.number"
	               "  WHERE p.kind = 'final' AND pa.state = 'synced'"
	               "  AND pa.finished_at IS NOT NULL AND pa.proof_claimed_at IS NULL"
	               "  AND a.pass_done >= pa.number"
	               "  ORDER BY pa.finished_at LIMIT 1 FOR UPDATE OF pa SKIP LOCKED)"
	               " RETURNING account_id",
	               0, NULL, &res, err, errlen) < 0)
		return -1;
	return store_ids_from_result(res, ids_r, count_r, err, errlen);
}

int store_destination_reset(struct store *st, int64_t account_id, const char *actor, int ttl_s,
                            char *err, size_t errlen)
{
	struct store_params q, log;
	PGresult *res = NULL;
	char state[32];

	store_params_init(&q);
	store_param_i64(&q, account_id);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(st,
	               "SELECT state, coalesce(lease_owner, ''), lease_expires > now()"
	               " FROM accounts WHERE id = $1 FOR UPDATE",
	               1, q.values, &res, err, errlen) < 0)
		goto fail;
	if (PQntuples(res) != 1) {
		snprintf(err, errlen, "account %" PRId64 " not found", account_id);
		goto fail;
	}
	snprintf(state, sizeof(state), "%s", PQgetvalue(res, 0, 0));
	if (strcmp(state, "running") == 0 || PQgetvalue(res, 0, 2)[0] == 't') {
		snprintf(err, errlen,
		         "the account is %s (lease held by %s): pause it and wait until it has"
		         " stopped",
		         state,
		         PQgetvalue(res, 0, 1)[0] != '\0' ? PQgetvalue(res, 0, 1) : "nobody");
		PQclear(res);
		store_rollback(st);
		return STORE_BUSY_RUNNING;
	}
	PQclear(res);
	res = NULL;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, actor);
	store_param_i64(&q, ttl_s);
	store_params_init(&log);
	store_param_i64(&log, account_id);
	store_param_str(&log, state);
	store_param_str(&log, actor);
	if (store_exec(st,
	               "UPDATE accounts SET lease_owner = $2, lease_epoch = lease_epoch + 1,"
	               " lease_expires = now() + make_interval(secs => $3::int),"
	               " updated_at = now() WHERE id = $1",
	               3, q.values, NULL, err, errlen) < 0 ||
	    store_exec(st, "DELETE FROM folders WHERE account_id = $1", 1, q.values, NULL, err,
	               errlen) < 0 ||
	    store_exec(st, "DELETE FROM proofs WHERE account_id = $1", 1, q.values, NULL, err,
	               errlen) < 0 ||
	    store_exec(st,
	               "INSERT INTO account_log (account_id, from_state, to_state, reason)"
	               " VALUES ($1, $2, $2, 'emptying the destination (' || $3 || '):"
	               " checkpoints, UID map and folder rows forgotten')",
	               3, log.values, NULL, err, errlen) < 0)
		goto fail;
	return store_exec_simple(st, "COMMIT", err, errlen);
fail:
	PQclear(res);
	store_rollback(st);
	return -1;
}

int store_destination_reset_end(struct store *st, int64_t account_id, const char *actor,
                                const char *reason, char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, actor);
	store_param_str(&q, reason);
	return store_exec(st,
	                  "WITH freed AS (UPDATE accounts SET lease_owner = NULL,"
	                  " lease_expires = NULL, updated_at = now()"
	                  " WHERE id = $1 AND lease_owner = $2 RETURNING state)"
	                  " INSERT INTO account_log (account_id, from_state, to_state, reason)"
	                  " SELECT $1, state, state, $3 FROM accounts WHERE id = $1",
	                  3, q.values, NULL, err, errlen);
}

int store_rate_measured(struct store *st, int64_t migration_id, double *bytes_per_s_r,
                        double *messages_per_s_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	double secs;

	*bytes_per_s_r = *messages_per_s_r = 0;
	store_params_init(&q);
	store_param_i64(&q, migration_id);
	/* Wall time from the first folder started to the last finished, per
	 * pass: what the fleet moved while it worked, all budgets applied. */
	if (store_exec(st,
	               "SELECT coalesce(sum(b), 0), coalesce(sum(m), 0), coalesce(sum(s), 0) FROM"
	               " (SELECT pf.number, sum(pf.bytes) AS b, sum(pf.messages) AS m,"
	               "  extract(epoch FROM max(pf.finished_at) - min(pf.started_at)) AS s"
	               "  FROM pass_folders pf JOIN folders f ON f.id = pf.folder_id"
	               "  JOIN accounts a ON a.id = f.account_id"
	               "  WHERE a.migration_id = $1 AND pf.finished_at IS NOT NULL"
	               "  GROUP BY pf.number) per_pass",
	               1, q.values, &res, err, errlen) < 0)
		return -1;
	secs = strtod(PQgetvalue(res, 0, 2), NULL);
	/* Under 10 ms nothing was measured worth the name. */
	if (secs >= 0.01) {
		*bytes_per_s_r = strtod(PQgetvalue(res, 0, 0), NULL) / secs;
		*messages_per_s_r = strtod(PQgetvalue(res, 0, 1), NULL) / secs;
	}
	PQclear(res);
	return 0;
}

int store_keywords_dropped_each(struct store *st, int64_t migration_id, int64_t account_id,
                                store_keywords_dropped_cb *cb, void *context, char *err,
                                size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, account_id);
	if (store_exec(st,
	               "SELECT f.account_id, f.src_name, k.src_uid, k.keywords, k.error"
	               " FROM keywords_dropped k JOIN folders f ON f.id = k.folder_id"
	               " JOIN accounts a ON a.id = f.account_id"
	               " WHERE a.migration_id = $1 AND ($2::bigint = 0 OR a.id = $2::bigint)"
	               " ORDER BY f.account_id, f.src_name, k.src_uid",
	               2, q.values, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		cb(strtoll(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1),
		   (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10), PQgetvalue(res, i, 3),
		   PQgetvalue(res, i, 4), context);
	PQclear(res);
	return 0;
}
