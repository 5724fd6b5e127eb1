/* Passes and reports: a pass started for a migration's accounts, its
 * per-account rows, the totals shown by status/passes/wait, and the live
 * totals folded from workers' events. */
#include "store-pass.h"

#include "store-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_folder_errors(struct store *st, int64_t migration_id, int64_t account_id,
                        store_folder_error_cb *cb, void *context, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, account_id);
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

/* Accounts with their folder totals and live totals, WHERE cond. */
#define STATUS_SQL(cond)                                                                           \
	"SELECT a.id, a.src_login, a.dst_login, a.state, coalesce(a.last_error, ''),"              \
	" a.pass, a.pass_done, count(f.id), coalesce(sum(f.copied_messages), 0),"                  \
	" coalesce(sum(f.copied_bytes), 0), coalesce(sum(f.failed_messages), 0),"                  \
	" coalesce(to_char(CASE WHEN a.state <> 'failed' OR a.attempts < a.error_budget"           \
	"  THEN a.retry_at END AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"        \
	" coalesce(l.messages, -1), coalesce(l.bytes, -1),"                                        \
	" count(f.id) FILTER (WHERE f.error IS NOT NULL),"                                         \
	" coalesce(sum(f.matched_messages), 0), coalesce(sum(f.filtered_messages), 0),"            \
	" to_char(a.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"             \
	" coalesce(l.worker, ''), coalesce(l.folder, '')"                                          \
	" FROM accounts a LEFT JOIN folders f ON f.account_id = a.id"                              \
	" LEFT JOIN live_totals l ON l.account_id = a.id AND l.pass = a.pass"                      \
	" WHERE " cond " GROUP BY a.id, l.messages, l.bytes, l.worker, l.folder ORDER BY a.id"

int store_migration_status(struct store *st, int64_t migration_id, int64_t account_id,
                           store_status_cb *cb, void *context, char *err, size_t errlen)
{
	const struct store_status_filter f = {.account_id = account_id};

	return store_migration_status_page(st, migration_id, &f, cb, context, err, errlen);
}

int store_migration_status_page(struct store *st, int64_t migration_id,
                                const struct store_status_filter *f, store_status_cb *cb,
                                void *context, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	bool page = f->state != NULL || f->q != NULL || f->after > 0 || f->limit > 0;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, f->account_id);
	if (page) {
		store_param_str(&q, f->state);
		store_param_str(&q, f->q);
		store_param_i64(&q, f->after);
		store_param_i64(&q, f->limit > 0 ? f->limit : INT32_MAX);
	}
	/* One account: by its key, not a scan of the migration. */
	if (store_exec(st,
	               page ? STATUS_SQL("a.migration_id = $1 AND ($2::bigint = 0 OR a.id = $2)"
	                                 " AND ($3::text IS NULL OR a.state = $3)"
	                                 " AND ($4::text IS NULL OR"
	                                 "  strpos(lower(a.src_login), lower($4)) > 0)"
	                                 " AND a.id > $5::bigint") " LIMIT $6::bigint"
	               : f->account_id != 0
	                   ? STATUS_SQL("a.migration_id = $1 AND a.id = $2::bigint")
	                   : STATUS_SQL("a.migration_id = $1 AND $2::bigint = 0"),
	               q.count, params, &res, err, errlen) < 0)
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
		    .filtered = strtoll(PQgetvalue(res, i, 16), NULL, 10),
		    .updated_at = PQgetvalue(res, i, 17),
		    .live_worker = PQgetvalue(res, i, 18),
		    .live_folder = PQgetvalue(res, i, 19),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}

int store_pass_start_tx(struct store *st, int64_t migration_id, int pass, const char *kind,
                        const int64_t *account_ids, size_t naccounts, size_t *queued_r, char *err,
                        size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	int ret = -1;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, pass);
	store_param_str(&q, kind);
	store_param_ids(&q, account_ids, naccounts);
	if (store_params_check(&q, err, errlen) < 0)
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
		goto out;
	*queued_r = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (*queued_r == 0) {
		ret = 0;
		goto out;
	}
	if (store_exec(st,
	               "UPDATE passes SET accounts = (SELECT count(*) FROM pass_accounts pa"
	               " JOIN accounts a ON a.id = pa.account_id WHERE a.migration_id = $1"
	               " AND pa.number = $2) WHERE migration_id = $1 AND number = $2",
	               2, params, NULL, err, errlen) < 0 ||
	    store_exec_simple(st, "NOTIFY mailshift_scheduler", err, errlen) < 0)
		goto out;
	ret = 0;
out:
	store_params_free(&q);
	return ret;
}

int store_pass_start(struct store *st, int64_t migration_id, int pass, const char *kind,
                     const int64_t *account_ids, size_t naccounts, size_t *queued_r, char *err,
                     size_t errlen)
{
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_pass_start_tx(st, migration_id, pass, kind, account_ids, naccounts, queued_r, err,
	                        errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	/* Nothing to run: no pass is recorded (a later start, once the
	 * accounts are verified, is still pass 1). */
	if (*queued_r == 0) {
		store_rollback(st);
		return 0;
	}
	if (store_exec_simple(st, "COMMIT", err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

int store_migration_exists(struct store *st, int64_t migration_id, int pass, char *err,
                           size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	bool migration, pass_exists;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, pass);
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
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	size_t used = 0;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
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
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	size_t used = 0;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
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
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	if (store_exec(st,
	               "SELECT greatest((SELECT max(number) FROM passes WHERE migration_id = $1),"
	               " (SELECT max(pass) FROM accounts WHERE migration_id = $1), 0)",
	               1, params, &res, err, errlen) < 0)
		return -1;
	*pass_r = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int store_passes(struct store *st, int64_t migration_id, store_pass_cb *cb, void *context,
                 char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
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
	               "  WHERE a.migration_id = p.migration_id AND f.number = p.number), 0),"
	               " CASE WHEN count(pa.account_id) > 0"
	               "  AND count(pa.account_id) = count(pa.finished_at)"
	               "  THEN to_char(max(pa.finished_at) AT TIME ZONE 'UTC',"
	               "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') ELSE '' END,"
	               " (SELECT coalesce(json_object_agg(s.state, s.n), '{}')::text FROM"
	               "  (SELECT pa2.state, count(*) AS n FROM pass_accounts pa2"
	               "  JOIN accounts a2 ON a2.id = pa2.account_id"
	               "  WHERE a2.migration_id = p.migration_id AND pa2.number = p.number"
	               "  GROUP BY pa2.state) s)"
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
		    .finished_at = PQgetvalue(res, i, 11),
		    .states = PQgetvalue(res, i, 12),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}

int store_pass_accounts(struct store *st, int64_t migration_id, int pass, store_pass_account_cb *cb,
                        void *context, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, pass);
	if (store_exec(
	        st,
	        "SELECT a.id, a.src_login, pa.state, pa.runs,"
	        " coalesce(to_char(pa.started_at AT TIME ZONE 'UTC',"
	        "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
	        " coalesce(extract(epoch FROM pa.finished_at - pa.started_at), -1),"
	        " count(f.folder_id), coalesce(sum(f.messages), 0),"
	        " coalesce(sum(f.bytes), 0), coalesce(sum(f.failed), 0),"
	        " count(f.folder_id) FILTER (WHERE f.error IS NOT NULL),"
	        " coalesce(sum(f.matched), 0),"
	        " to_char(pa.queued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	        " coalesce(to_char(pa.finished_at AT TIME ZONE 'UTC',"
	        "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
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
		    .queued_at = PQgetvalue(res, i, 12),
		    .finished_at = PQgetvalue(res, i, 13),
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
		struct store_params q;

		store_params_init(&q);
		store_param_i64(&q, rows[i].account_id);
		store_param_i64(&q, rows[i].pass);
		store_param_u64(&q, rows[i].messages);
		store_param_u64(&q, rows[i].bytes);
		store_param_u64(&q, rows[i].errors);
		store_param_str(&q, rows[i].worker);
		store_param_str(&q, rows[i].folder);
		/* An account removed meanwhile has no row to update: skipped. */
		if (store_exec(st,
		               "INSERT INTO live_totals (account_id, pass, messages, bytes, errors,"
		               " worker, folder) SELECT $1, $2, $3, $4, $5, $6, $7"
		               " WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1)"
		               " ON CONFLICT (account_id) DO UPDATE SET pass = EXCLUDED.pass,"
		               " messages = EXCLUDED.messages, bytes = EXCLUDED.bytes,"
		               " errors = EXCLUDED.errors, worker = EXCLUDED.worker,"
		               " folder = EXCLUDED.folder, updated_at = now()",
		               q.count, q.values, NULL, err, errlen) < 0) {
			store_rollback(st);
			return -1;
		}
		if (rows[i].new_messages == 0 && rows[i].new_bytes == 0)
			continue;
		store_params_init(&q);
		store_param_i64(&q, rows[i].account_id);
		store_param_u64(&q, rows[i].new_messages);
		store_param_u64(&q, rows[i].new_bytes);
		if (store_exec(st,
		               "INSERT INTO throughput (migration_id, minute, messages, bytes)"
		               " SELECT migration_id, date_trunc('minute', now()), $2, $3"
		               " FROM accounts WHERE id = $1"
		               " ON CONFLICT (migration_id, minute) DO UPDATE SET"
		               " messages = throughput.messages + EXCLUDED.messages,"
		               " bytes = throughput.bytes + EXCLUDED.bytes",
		               q.count, q.values, NULL, err, errlen) < 0) {
			store_rollback(st);
			return -1;
		}
	}
	return store_exec_simple(st, "COMMIT", err, errlen);
}

int store_pass_failed(struct store *st, int64_t migration_id, int pass, const int64_t *only,
                      size_t nonly, int64_t **ids_r, bool **refused_r, size_t *count_r, char *err,
                      size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	int n, ret = -1;

	*ids_r = NULL;
	*refused_r = NULL;
	*count_r = 0;
	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, pass);
	store_param_ids(&q, only, nonly);
	if (store_params_check(&q, err, errlen) < 0 ||
	    store_exec(st,
	               "SELECT a.id, a.state IN ('auth_failed', 'verify_failed') FROM accounts a"
	               " JOIN pass_accounts pa ON pa.account_id = a.id AND pa.number = $2"
	               " WHERE a.migration_id = $1 AND a.pass = $2 AND a.pass_done < $2"
	               " AND a.state IN ('failed', 'auth_failed', 'verify_failed')"
	               " AND ($3::bigint[] IS NULL OR a.id = ANY($3::bigint[])) ORDER BY a.id",
	               q.count, q.values, &res, err, errlen) < 0)
		goto out;
	n = PQntuples(res);
	*ids_r = calloc((size_t)n + 1, sizeof(**ids_r));
	*refused_r = calloc((size_t)n + 1, sizeof(**refused_r));
	if (*ids_r == NULL || *refused_r == NULL) {
		snprintf(err, errlen, "out of memory");
		free(*ids_r);
		free(*refused_r);
		*ids_r = NULL;
		*refused_r = NULL;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		(*ids_r)[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		(*refused_r)[i] = PQgetvalue(res, i, 1)[0] == 't';
	}
	*count_r = (size_t)n;
	ret = 0;
out:
	PQclear(res);
	store_params_free(&q);
	return ret;
}
