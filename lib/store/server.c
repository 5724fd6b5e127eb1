/* Server profiles of a migration changed in place (store-view.h): a
 * provider moves an endpoint, a budget or a window while the migration runs.
 * Workers read a server's settings when they take an account, so a change
 * applies from each account's next run. */
#include "store-plan.h"
#include "store-private.h"
#include "store-view.h"

#include <stdio.h>
#include <stdlib.h>

int store_server_update(struct store *st, int64_t migration_id, int64_t server_id,
                        const struct store_server_patch *patch, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	int ret = -1;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, server_id);
	store_param_str(&q, patch->host);
	if (patch->port > 0)
		store_param_i64(&q, patch->port);
	else
		store_param_str(&q, NULL);
	store_param_str(&q, patch->tls);
	store_param_bool(&q, patch->set_ca_file);
	store_param_str(&q, patch->ca_file);
	if (patch->max_connections > 0)
		store_param_i64(&q, patch->max_connections);
	else
		store_param_str(&q, NULL);
	if (patch->rate_messages >= 0)
		store_param_i64(&q, patch->rate_messages);
	else
		store_param_str(&q, NULL);
	if (patch->rate_bytes >= 0)
		store_param_i64(&q, patch->rate_bytes);
	else
		store_param_str(&q, NULL);
	if (patch->account_daily_bytes >= 0)
		store_param_i64(&q, patch->account_daily_bytes);
	else
		store_param_str(&q, NULL);
	if (store_params_check(&q, err, errlen) < 0 ||
	    store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(
	        st,
	        "UPDATE servers SET host = coalesce($3, host), port = coalesce($4::int, port),"
	        " tls = coalesce($5, tls),"
	        " ca_file = CASE WHEN $6::boolean THEN $7 ELSE ca_file END,"
	        " max_connections = coalesce($8::int, max_connections),"
	        " rate_messages = coalesce($9::int, rate_messages),"
	        " rate_bytes = coalesce($10::bigint, rate_bytes),"
	        " account_daily_bytes = coalesce($11::bigint, account_daily_bytes)"
	        " WHERE migration_id = $1 AND id = $2 RETURNING max_connections",
	        q.count, q.values, &res, err, errlen) < 0)
		goto fail;
	if (PQntuples(res) == 0) {
		store_rollback(st);
		ret = 1;
		goto out;
	}
	PQclear(res);
	res = NULL;
	/* One slot row per allowed connection (lease.c takes them). */
	store_params_init(&q);
	store_param_i64(&q, server_id);
	if (store_exec(st,
	               "INSERT INTO server_slots (server_id, slot) SELECT id,"
	               " generate_series(1, max_connections) FROM servers WHERE id = $1"
	               " ON CONFLICT DO NOTHING",
	               q.count, q.values, NULL, err, errlen) < 0 ||
	    store_exec(st,
	               "DELETE FROM server_slots WHERE server_id = $1"
	               " AND slot > (SELECT max_connections FROM servers WHERE id = $1)",
	               q.count, q.values, NULL, err, errlen) < 0)
		goto fail;
	if (patch->set_blackouts) {
		if (store_exec(st, "DELETE FROM blackouts WHERE server_id = $1", q.count, q.values,
		               NULL, err, errlen) < 0)
			goto fail;
		for (size_t i = 0; i < patch->nblackouts; i++) {
			const struct store_blackout *b = &patch->blackouts[i];
			struct store_params bq;

			store_params_init(&bq);
			store_param_i64(&bq, server_id);
			store_param_i64(&bq, b->weekdays);
			store_param_i64(&bq, b->from_s);
			store_param_i64(&bq, b->to_s);
			store_param_str(&bq, b->time_zone);
			/* AT TIME ZONE refuses an unknown zone now, not in every
			 * scheduler step later. */
			if (store_exec(st,
			               "INSERT INTO blackouts (server_id, weekdays, from_s, to_s,"
			               " time_zone) SELECT $1, $2, $3, $4, $5"
			               " WHERE (now() AT TIME ZONE $5) IS NOT NULL",
			               bq.count, bq.values, NULL, err, errlen) < 0)
				goto fail;
		}
	}
	if (store_exec_simple(st, "NOTIFY mailshift_scheduler; COMMIT", err, errlen) < 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	store_rollback(st);
out:
	PQclear(res);
	return ret;
}
