/* Contacts and calendars: collections, objects and their counts
 * (store-dav.h). */
#include "store-dav.h"

#include "store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_dav_collection(struct store *st, int64_t account_id, int64_t epoch, const char *kind,
                         const char *src_href, const char *dst_href, const char *name,
                         int64_t *id_r, char **sync_token_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	int ret;

	*sync_token_r = NULL;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, kind);
	store_param_str(&q, src_href);
	store_param_str(&q, dst_href);
	store_param_str(&q, name != NULL ? name : "");
	if (store_params_check(&q, err, errlen) < 0)
		return -1;
	/* A destination collection found elsewhere than last time (deleted
	 * and made again) starts over: its objects are not where the rows say. */
	ret = store_fenced_exec(
	    st, account_id, epoch,
	    "WITH old AS (SELECT id, dst_href FROM dav_collections"
	    "  WHERE account_id = $1 AND src_href = $3),"
	    " gone AS (DELETE FROM dav_objects o USING old"
	    "  WHERE o.collection_id = old.id AND old.dst_href <> $4)"
	    " INSERT INTO dav_collections (account_id, kind, src_href, dst_href, name)"
	    " VALUES ($1, $2, $3, $4, $5)"
	    " ON CONFLICT (account_id, src_href) DO UPDATE SET kind = EXCLUDED.kind,"
	    "  dst_href = EXCLUDED.dst_href, name = EXCLUDED.name, updated_at = now(),"
	    "  sync_token = CASE WHEN dav_collections.dst_href = EXCLUDED.dst_href"
	    "   THEN dav_collections.sync_token END"
	    " RETURNING id, sync_token",
	    q.count, q.values, &res, err, errlen);
	if (ret < 0)
		return ret;
	*id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*sync_token_r = store_dup_value(res, 0, 1);
	PQclear(res);
	return 0;
}

int store_dav_collection_done(struct store *st, int64_t account_id, int64_t epoch,
                              int64_t collection_id, const char *sync_token, const char *error,
                              char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, collection_id);
	store_param_str(&q, sync_token);
	store_param_str(&q, error);
	store_param_i64(&q, account_id);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "UPDATE dav_collections SET sync_token = coalesce($2, sync_token),"
	    " error = $3, updated_at = now() WHERE id = $1 AND account_id = $4",
	    q.count, q.values, NULL, err, errlen);
}

void store_dav_objects_free(struct store_dav_object **objs, size_t count)
{
	if (*objs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*objs)[i].src_href);
		free((*objs)[i].src_etag);
		free((*objs)[i].dst_href);
		free((*objs)[i].dst_etag);
	}
	free(*objs);
	*objs = NULL;
}

int store_dav_objects(struct store *st, int64_t collection_id, struct store_dav_object **objs_r,
                      size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	struct store_dav_object *objs;
	int n;

	*objs_r = NULL;
	*count_r = 0;
	store_params_init(&q);
	store_param_i64(&q, collection_id);
	/* COLLATE "C": the caller looks rows up by byte order. */
	if (store_exec(st,
	               "SELECT src_href, src_etag, dst_href, dst_etag, error IS NOT NULL"
	               " FROM dav_objects WHERE collection_id = $1 ORDER BY src_href COLLATE \"C\"",
	               q.count, q.values, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	objs = calloc(n > 0 ? (size_t)n : 1, sizeof(*objs));
	if (objs == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		objs[i].src_href = store_dup_value(res, i, 0);
		objs[i].src_etag = store_dup_value(res, i, 1);
		objs[i].dst_href = store_dup_value(res, i, 2);
		objs[i].dst_etag = store_dup_value(res, i, 3);
		objs[i].failed = PQgetvalue(res, i, 4)[0] == 't';
		if (objs[i].src_href == NULL || objs[i].src_etag == NULL ||
		    objs[i].dst_href == NULL) {
			store_dav_objects_free(&objs, (size_t)i + 1);
			PQclear(res);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	PQclear(res);
	*objs_r = objs;
	*count_r = (size_t)n;
	return 0;
}

int store_dav_object_done(struct store *st, int64_t account_id, int64_t epoch,
                          int64_t collection_id, bool calendar, const char *src_href,
                          const char *src_etag, const char *dst_href, const char *dst_etag,
                          const char *error, bool copied, char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_i64(&q, collection_id);
	store_param_str(&q, src_href);
	store_param_str(&q, src_etag);
	store_param_str(&q, dst_href);
	store_param_str(&q, dst_etag);
	store_param_str(&q, error);
	store_param_i64(&q, copied && !calendar ? 1 : 0);
	store_param_i64(&q, copied && calendar ? 1 : 0);
	store_param_i64(&q, error != NULL ? 1 : 0);
	/* A refused object keeps the destination ETag of its last copy: the
	 * next change of the source is sent with If-Match again. */
	return store_fenced_exec(
	    st, account_id, epoch,
	    "WITH o AS (INSERT INTO dav_objects (collection_id, src_href, src_etag, dst_href,"
	    "  dst_etag, error) VALUES ($2, $3, $4, $5, $6, $7)"
	    " ON CONFLICT (collection_id, src_href) DO UPDATE SET src_etag = EXCLUDED.src_etag,"
	    "  dst_href = EXCLUDED.dst_href,"
	    "  dst_etag = CASE WHEN EXCLUDED.error IS NULL THEN EXCLUDED.dst_etag"
	    "   ELSE dav_objects.dst_etag END,"
	    "  error = EXCLUDED.error, at = now() RETURNING 1)"
	    " UPDATE pass_accounts pa SET dav_contacts = dav_contacts + $8,"
	    "  dav_events = dav_events + $9, dav_failed = dav_failed + $10"
	    " FROM accounts a WHERE a.id = $1 AND pa.account_id = a.id"
	    "  AND pa.number = a.lease_pass AND EXISTS (SELECT 1 FROM o)",
	    q.count, q.values, NULL, err, errlen);
}

int store_dav_status(struct store *st, int64_t migration_id, int64_t account_id,
                     store_dav_status_cb *cb, void *context, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	store_param_i64(&q, account_id);
	if (store_exec(
	        st,
	        "SELECT a.id, (SELECT count(*) FROM dav_collections c WHERE c.account_id = a.id),"
	        " count(*) FILTER (WHERE c.kind = 'addressbook' AND o.error IS NULL"
	        "  AND o.src_href IS NOT NULL),"
	        " count(*) FILTER (WHERE c.kind = 'calendar' AND o.error IS NULL"
	        "  AND o.src_href IS NOT NULL),"
	        " count(*) FILTER (WHERE o.error IS NOT NULL),"
	        " coalesce(max(pa.dav_contacts), 0), coalesce(max(pa.dav_events), 0),"
	        " coalesce(max(pa.dav_failed), 0),"
	        " coalesce((SELECT c2.error FROM dav_collections c2 WHERE c2.account_id = a.id"
	        "   AND c2.error IS NOT NULL ORDER BY c2.id LIMIT 1),"
	        "  min(o.src_href || ': ' || o.error), '')"
	        " FROM accounts a JOIN dav_collections c ON c.account_id = a.id"
	        " LEFT JOIN dav_objects o ON o.collection_id = c.id"
	        " LEFT JOIN pass_accounts pa ON pa.account_id = a.id AND pa.number = a.pass"
	        " WHERE a.migration_id = $1 AND ($2 = 0 OR a.id = $2)"
	        " GROUP BY a.id ORDER BY a.id",
	        q.count, q.values, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_dav_status row = {
		    .account_id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .collections = strtoll(PQgetvalue(res, i, 1), NULL, 10),
		    .contacts = strtoll(PQgetvalue(res, i, 2), NULL, 10),
		    .events = strtoll(PQgetvalue(res, i, 3), NULL, 10),
		    .failed = strtoll(PQgetvalue(res, i, 4), NULL, 10),
		    .pass_contacts = strtoll(PQgetvalue(res, i, 5), NULL, 10),
		    .pass_events = strtoll(PQgetvalue(res, i, 6), NULL, 10),
		    .pass_failed = strtoll(PQgetvalue(res, i, 7), NULL, 10),
		    .first_error = PQgetvalue(res, i, 8),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}
