/* The API's read models (store-view.h): one statement per view, its JSON
 * built by PostgreSQL.  Every statement takes the same nine parameters,
 * named once in ARGS, so the table below is all a new view needs. */
#include "store-view.h"

#include "store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS                                                                                       \
	"WITH args AS (SELECT $1::bigint AS mid, $2::bigint AS aid, $3::int AS pass,"              \
	" $4::bigint AS sid, coalesce($5::bigint, 0) AS after, coalesce($6::int, 1000) AS lim,"    \
	" $7::text AS state, $8::text AS q, coalesce($9::int, 60) AS minutes) "

/* Accounts by state, as an object {"state": count}. */
#define STATES_OF(cond)                                                                            \
	"(SELECT coalesce(json_object_agg(s.state, s.n), '{}') FROM (SELECT state, count(*) AS n"  \
	" FROM accounts WHERE " cond " GROUP BY state) s)"

static const char *const views[] = {
    [STORE_VIEW_MIGRATIONS] = ARGS
    "SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (SELECT m.id, m.name,"
    " m.created_at, (SELECT count(*) FROM accounts a WHERE a.migration_id = m.id)"
    " AS accounts, " STATES_OF(
        "migration_id = m.id") " AS states,"
                               " t.messages_done, t.bytes_done, t.messages_total,"
                               /* Source sizes are not counted: the total in bytes is the
                                * messages known on the source at the average size copied. */
                               " CASE WHEN t.copied > 0 THEN (t.bytes_done * t.messages_total / "
                               "t.copied)::bigint"
                               " END AS bytes_total,"
                               " (SELECT coalesce(max(number), 0) FROM passes p WHERE "
                               "p.migration_id = m.id)"
                               " AS current_pass,"
                               " (SELECT count(*) FROM message_errors e JOIN accounts a ON a.id = "
                               "e.account_id"
                               "  WHERE a.migration_id = m.id) AS errors"
                               " FROM args, migrations m LEFT JOIN LATERAL (SELECT"
                               "  coalesce(sum(f.copied_messages + f.matched_messages), 0) AS "
                               "messages_done,"
                               "  coalesce(sum(f.copied_messages), 0) AS copied,"
                               "  coalesce(sum(f.copied_bytes), 0) AS bytes_done,"
                               "  coalesce(sum(f.src_messages), 0) AS messages_total"
                               "  FROM folders f JOIN accounts a ON a.id = f.account_id"
                               "  WHERE a.migration_id = m.id) t ON true"
                               " WHERE (args.mid IS NULL OR m.id = args.mid) AND m.id > args.after"
                               " ORDER BY m.id LIMIT $6::int) x",
    [STORE_VIEW_SERVERS] =
        ARGS "SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (SELECT s.id, s.role,"
             " s.name, s.host, s.port, s.tls, s.ca_file, s.auth, s.max_connections,"
             " s.rate_messages, s.rate_bytes, s.account_daily_bytes,"
             " (SELECT coalesce(json_agg(json_build_object('days', (SELECT json_agg(d.name"
             "  ORDER BY d.i) FROM unnest(ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat',"
             "  'sun']) WITH ORDINALITY d(name, i) WHERE (b.weekdays >> (d.i::int - 1)) & 1"
             "  = 1), 'from', to_char(make_interval(secs => b.from_s), 'HH24:MI:SS'),"
             "  'to', to_char(make_interval(secs => b.to_s), 'HH24:MI:SS'),"
             "  'time_zone', b.time_zone) ORDER BY b.id), '[]')"
             "  FROM blackouts b WHERE b.server_id = s.id) AS blackouts"
             " FROM args, servers s WHERE s.migration_id = args.mid"
             " AND (args.sid IS NULL OR s.id = args.sid)) x",
    [STORE_VIEW_ACCOUNT_FOLDERS] =
        ARGS "SELECT coalesce(json_agg(x ORDER BY x.source_name), '[]') FROM (SELECT"
             " f.src_name AS source_name, f.dst_name AS destination_name,"
             " f.src_messages AS source_messages,"
             " f.copied_messages + f.matched_messages AS destination_messages,"
             " f.copied_messages AS copied, f.matched_messages AS matched,"
             " f.failed_messages AS failed, f.copied_bytes AS bytes, f.error, f.synced_at"
             " FROM args, folders f WHERE f.account_id = args.aid) x",
    [STORE_VIEW_ACCOUNT_PASSES] =
        ARGS "SELECT coalesce(json_agg(x ORDER BY x.number), '[]') FROM (SELECT pa.number,"
             " p.kind, pa.state, pa.runs, pa.queued_at, pa.started_at, pa.finished_at,"
             " coalesce(c.messages, 0) AS messages, coalesce(c.bytes, 0) AS bytes,"
             " coalesce(c.failed, 0) AS failed"
             " FROM args, pass_accounts pa JOIN accounts a ON a.id = pa.account_id"
             " JOIN passes p ON p.migration_id = a.migration_id AND p.number = pa.number"
             " LEFT JOIN LATERAL (SELECT sum(pf.messages) AS messages, sum(pf.bytes) AS bytes,"
             "  sum(pf.failed) AS failed FROM pass_folders pf JOIN folders f"
             "  ON f.id = pf.folder_id WHERE f.account_id = a.id AND pf.number = pa.number) c"
             " ON true WHERE pa.account_id = args.aid) x",
    [STORE_VIEW_ACCOUNT_HISTORY] =
        ARGS "SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (SELECT l.id, l.at,"
             " nullif(l.from_state, '') AS from_state, l.to_state, l.reason, l.actor"
             " FROM args, account_log l WHERE l.account_id = args.aid) x",
    [STORE_VIEW_ERRORS] =
        ARGS "SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (SELECT e.id,"
             " a.id AS account_id, a.src_login AS account, f.src_name AS folder,"
             " e.src_uid AS uid, e.error, e.at"
             " FROM args, message_errors e JOIN accounts a ON a.id = e.account_id"
             " JOIN folders f ON f.id = e.folder_id WHERE a.migration_id = args.mid"
             " AND (args.aid IS NULL OR a.id = args.aid) AND e.id > args.after"
             " ORDER BY e.id LIMIT $6::int) x",
    [STORE_VIEW_REPORT] =
        ARGS "SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (SELECT a.id,"
             " a.src_login AS source_login, a.dst_login AS destination_login, a.state,"
             " a.pass, a.pass_done,"
             " (SELECT min(started_at) FROM pass_accounts WHERE account_id = a.id)"
             " AS started_at,"
             " (SELECT max(finished_at) FROM pass_accounts WHERE account_id = a.id)"
             " AS finished_at,"
             " (SELECT count(*) FROM message_errors e WHERE e.account_id = a.id) AS errors,"
             " a.last_error,"
             " (SELECT coalesce(json_agg(json_build_object('source_name', f.src_name,"
             "  'destination_name', f.dst_name, 'source_messages', f.src_messages,"
             "  'destination_messages', f.copied_messages + f.matched_messages,"
             "  'copied', f.copied_messages, 'matched', f.matched_messages,"
             "  'failed', f.failed_messages, 'bytes', f.copied_bytes, 'error', f.error)"
             "  ORDER BY f.src_name), '[]') FROM folders f WHERE f.account_id = a.id)"
             " AS folders"
             " FROM args, accounts a WHERE a.migration_id = args.mid) x",
    [STORE_VIEW_THROUGHPUT] =
        ARGS "SELECT coalesce(json_agg(json_build_object('at', g.m, 'messages',"
             " coalesce(t.messages, 0), 'bytes', coalesce(t.bytes, 0)) ORDER BY g.m), '[]')"
             " FROM args CROSS JOIN generate_series(date_trunc('minute', now())"
             " - make_interval(mins => args.minutes - 1), date_trunc('minute', now()),"
             " interval '1 minute') g(m)"
             " LEFT JOIN throughput t ON t.migration_id = args.mid AND t.minute = g.m",
    [STORE_VIEW_METRICS] = ARGS
    "SELECT json_build_object('migrations', (SELECT coalesce(json_agg(x ORDER BY"
    " x.id), '[]') FROM (SELECT m.id, m.name, " STATES_OF(
        "migration_id = m.id") " AS states, coalesce(t.messages, 0) AS messages, coalesce(t.bytes, "
                               "0) AS bytes,"
                               " coalesce(t.folders_failed, 0) AS folders_failed,"
                               " (SELECT count(*) FROM message_errors e JOIN accounts a ON a.id = "
                               "e.account_id"
                               "  WHERE a.migration_id = m.id) AS message_errors"
                               " FROM migrations m LEFT JOIN LATERAL (SELECT "
                               "sum(f.copied_messages) AS messages,"
                               "  sum(f.copied_bytes) AS bytes,"
                               "  count(*) FILTER (WHERE f.error IS NOT NULL) AS folders_failed"
                               "  FROM folders f JOIN accounts a ON a.id = f.account_id"
                               "  WHERE a.migration_id = m.id) t ON true) x),"
                               /* Live: a beat within the window the scheduler trusts. */
                               " 'workers', (SELECT coalesce(json_agg(json_build_object('id', w.id,"
                               "  'capacity', w.capacity, 'running', w.running) ORDER BY w.id), "
                               "'[]')"
                               "  FROM workers w WHERE w.seen_at > now() - interval '15 seconds'))"
                               " FROM args",
};

int store_view(struct store *st, enum store_view view, const struct store_view_args *args,
               char **json_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	int ret = -1;

	*json_r = NULL;
	if ((size_t)view >= sizeof(views) / sizeof(views[0]) || views[view] == NULL) {
		snprintf(err, errlen, "no such view %d", (int)view);
		return -1;
	}
	store_params_init(&q);
	/* 0 and NULL are "not given": SQL NULL, which the views read so. */
	if (args->migration_id > 0)
		store_param_i64(&q, args->migration_id);
	else
		store_param_str(&q, NULL);
	if (args->account_id > 0)
		store_param_i64(&q, args->account_id);
	else
		store_param_str(&q, NULL);
	if (args->pass > 0)
		store_param_i64(&q, args->pass);
	else
		store_param_str(&q, NULL);
	if (args->server_id > 0)
		store_param_i64(&q, args->server_id);
	else
		store_param_str(&q, NULL);
	store_param_i64(&q, args->after > 0 ? args->after : 0);
	store_param_i64(&q, args->limit > 0 ? args->limit : 1000);
	store_param_str(&q, args->state);
	store_param_str(&q, args->q);
	store_param_i64(&q, args->minutes > 0 ? args->minutes : 60);
	if (store_params_check(&q, err, errlen) < 0 ||
	    store_exec(st, views[view], q.count, q.values, &res, err, errlen) < 0)
		goto out;
	*json_r = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "null");
	if (*json_r == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	PQclear(res);
	store_params_free(&q);
	return ret;
}
