/* Checkpoints and the UID map: the worker's crash-safe protocol
 * (docs/DESIGN.md, "2. Copy of a folder: the batch protocol").  Every write
 * here is fenced by the account's lease epoch. */
#include "store-checkpoint.h"

#include "store-private.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_folder_clear(struct store_folder *f)
{
	free(f->src_name);
	free(f->dst_name);
	free(f->intent_uids);
	free(f->lane_intent_uids);
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
                     const char *dst_name, struct store_folder *folder_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	struct store_folder f;
	int ret;

	memset(&f, 0, sizeof(f));
	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, src_name);
	store_param_str(&q, dst_name);
	ret = store_fenced_exec(
	    st, account_id, epoch,
	    "WITH ins AS (INSERT INTO folders (account_id, src_name, dst_name)"
	    " VALUES ($1, $2, $3) ON CONFLICT (account_id, src_name)"
	    " DO UPDATE SET dst_name = EXCLUDED.dst_name RETURNING *)"
	    " SELECT id, src_name, dst_name, src_uidvalidity, dst_uidvalidity, high_water,"
	    " highest_modseq, src_uidnext, src_messages, intent_dst_uidnext,"
	    " coalesce(intent_uids::text, '{}'), rematch, filtered_through, lane_lo, lane_hi,"
	    " lane_high_water, lane_intent_dst_uidnext, coalesce(lane_intent_uids::text, '{}')"
	    " FROM ins",
	    q.count, q.values, &res, err, errlen);
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
	f.filtered_through = (uint32_t)strtoul(PQgetvalue(res, 0, 12), NULL, 10);
	f.lane_lo = (uint32_t)strtoul(PQgetvalue(res, 0, 13), NULL, 10);
	f.lane_hi = (uint32_t)strtoul(PQgetvalue(res, 0, 14), NULL, 10);
	f.lane_high_water = (uint32_t)strtoul(PQgetvalue(res, 0, 15), NULL, 10);
	f.lane_intent_dst_uidnext = (uint32_t)strtoul(PQgetvalue(res, 0, 16), NULL, 10);
	if (uid_array_parse(PQgetvalue(res, 0, 10), &f.intent_uids, &f.intent_count) < 0 ||
	    uid_array_parse(PQgetvalue(res, 0, 17), &f.lane_intent_uids, &f.lane_intent_count) <
	        0 ||
	    f.src_name == NULL || f.dst_name == NULL) {
		PQclear(res);
		store_folder_clear(&f);
		snprintf(err, errlen, "folder row: cannot parse");
		return -1;
	}
	PQclear(res);
	*folder_r = f;
	return 0;
}

int store_folder_reset(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t src_uidvalidity, uint32_t dst_uidvalidity, bool rematch, char *err,
                       size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	int ret;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_u32(&q, src_uidvalidity);
	store_param_u32(&q, dst_uidvalidity);
	store_param_bool(&q, rematch);
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		return ret;
	if ((rematch && store_exec(st, "DELETE FROM uid_map WHERE folder_id = $1", 1, params, NULL,
	                           err, errlen) < 0) ||
	    store_exec(st,
	               "UPDATE folders SET src_uidvalidity = $2, dst_uidvalidity = $3,"
	               " high_water = 0, highest_modseq = 0, src_uidnext = 0, src_messages = 0,"
	               " intent_dst_uidnext = 0, intent_uids = NULL, rematch = $4,"
	               " filtered_messages = 0, filtered_through = 0, lane_lo = 0, lane_hi = 0,"
	               " lane_high_water = 0, lane_intent_dst_uidnext = 0,"
	               " lane_intent_uids = NULL WHERE id = $1",
	               4, params, NULL, err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_fence_commit(st, err, errlen);
}

int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       bool lane, uint32_t dst_uidnext, const uint32_t *uids, size_t count,
                       char *err, size_t errlen)
{
	struct store_params q;
	int ret = -1;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_u32(&q, dst_uidnext);
	store_param_uids(&q, uids, count);
	if (store_params_check(&q, err, errlen) < 0)
		goto out;
	ret = store_fenced_exec(st, account_id, epoch,
	                        lane ? "UPDATE folders SET lane_intent_dst_uidnext = $2,"
	                               " lane_intent_uids = $3::bigint[] WHERE id = $1"
	                             : "UPDATE folders SET intent_dst_uidnext = $2,"
	                               " intent_uids = $3::bigint[] WHERE id = $1",
	                        q.count, q.values, NULL, err, errlen);
out:
	store_params_free(&q);
	return ret;
}

int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       bool lane, const struct store_uidpair *pairs, size_t npairs,
                       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
                       size_t appended, uint64_t bytes, size_t matched,
                       const struct store_intent *next, char *err, size_t errlen)
{
	uint32_t *src = NULL, *dst = NULL, *len = NULL;
	/* runs: the UID map's rows; folder: the folder's counters and the intent
	 * ($8 NULL: none); counts: the pass's and the day's. */
	struct store_params runs_q, folder_q, counts_q;
	size_t runs = 0;
	int ret = -1;

	store_params_init(&runs_q);
	store_params_init(&folder_q);
	store_params_init(&counts_q);
	store_param_i64(&folder_q, folder_id);
	store_param_u32(&folder_q, high_water);
	store_param_u64(&folder_q, bytes);
	store_param_u64(&folder_q, appended);
	store_param_u64(&folder_q, nerrors);
	store_param_u64(&folder_q, matched);
	store_param_u32(&folder_q, next != NULL ? next->dst_uidnext : 0);
	if (next != NULL && next->count > 0)
		store_param_uids(&folder_q, next->uids, next->count);
	else
		store_param_str(&folder_q, NULL);
	store_param_i64(&counts_q, folder_id);
	store_param_i64(&counts_q, account_id);
	store_param_u64(&counts_q, bytes);
	store_param_u64(&counts_q, appended);
	store_param_u64(&counts_q, nerrors);
	store_param_u64(&counts_q, matched);
	if (store_params_check(&folder_q, err, errlen) < 0)
		goto out;
	for (size_t i = 1; i < npairs; i++)
		assert(pairs[i - 1].src <= pairs[i].src); /* the contract: sorted by src */

	/* Compress the pairs into runs of consecutive UIDs on both sides. */
	src = calloc(npairs + 1, sizeof(*src));
	dst = calloc(npairs + 1, sizeof(*dst));
	len = calloc(npairs + 1, sizeof(*len));
	if (src == NULL || dst == NULL || len == NULL) {
		snprintf(err, errlen, "out of memory");
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
	store_param_i64(&runs_q, folder_id);
	store_param_uids(&runs_q, src, runs);
	store_param_uids(&runs_q, dst, runs);
	store_param_uids(&runs_q, len, runs);
	if (store_params_check(&runs_q, err, errlen) < 0)
		goto out;
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		goto out;
	ret = -1;
	if (runs > 0 && store_exec(st,
	                           "INSERT INTO uid_map (folder_id, src_start, dst_start, len)"
	                           " SELECT $1, s, d, l FROM unnest($2::bigint[], $3::bigint[],"
	                           " $4::int[]) AS r(s, d, l)"
	                           " ON CONFLICT (folder_id, src_start) DO UPDATE SET"
	                           " dst_start = EXCLUDED.dst_start, len = EXCLUDED.len",
	                           runs_q.count, runs_q.values, NULL, err, errlen) < 0)
		goto rollback;
	for (size_t i = 0; i < nerrors; i++) {
		struct store_params e;

		store_params_init(&e);
		store_param_i64(&e, account_id);
		store_param_i64(&e, folder_id);
		store_param_u32(&e, errors[i].src_uid);
		store_param_str(&e, errors[i].error);
		if (store_exec(st,
		               "INSERT INTO message_errors (account_id, folder_id, src_uid, error)"
		               " VALUES ($1, $2, $3, $4) ON CONFLICT (folder_id, src_uid)"
		               " DO UPDATE SET error = EXCLUDED.error, at = now()",
		               e.count, e.values, NULL, err, errlen) < 0)
			goto rollback;
	}
	{
		/* The intent is cleared, or is the next batch's ($8 NULL: none);
		 * the folder's own cursor or its lane's. */
#define CURSOR_SET(prefix)                                                                         \
	"UPDATE folders SET " prefix "high_water = greatest(" prefix "high_water, $2::bigint),"    \
	" copied_bytes = copied_bytes + $3, copied_messages = copied_messages + $4,"               \
	" failed_messages = failed_messages + $5, matched_messages = matched_messages + "          \
	"$6, " prefix                                                                              \
	"intent_dst_uidnext = CASE WHEN $8::bigint[] IS NULL THEN 0 ELSE $7 END, " prefix          \
	"intent_uids = $8::bigint[] WHERE id = $1"
		if (store_exec(st, lane ? CURSOR_SET("lane_") : CURSOR_SET(""), folder_q.count,
		               folder_q.values, NULL, err, errlen) < 0)
			goto rollback;
#undef CURSOR_SET
	}
	if (appended > 0 || nerrors > 0 || matched > 0) {
		const char *const *params = counts_q.values;
		/* The pass's own counts, and the bytes of the account's UTC day. */
		if (store_exec(
		        st,
		        "INSERT INTO pass_folders (folder_id, number, messages, bytes, failed,"
		        " matched)"
		        " SELECT $1, lease_pass, $4, $3, $5, $6 FROM accounts WHERE id = $2"
		        " ON CONFLICT (folder_id, number) DO UPDATE SET"
		        " messages = pass_folders.messages + EXCLUDED.messages,"
		        " bytes = pass_folders.bytes + EXCLUDED.bytes,"
		        " failed = pass_folders.failed + EXCLUDED.failed,"
		        " matched = pass_folders.matched + EXCLUDED.matched",
		        6, params, NULL, err, errlen) < 0 ||
		    store_exec(st,
		               "INSERT INTO account_days (account_id, day, bytes)"
		               " VALUES ($1, (now() AT TIME ZONE 'UTC')::date, $2)"
		               " ON CONFLICT (account_id) DO UPDATE SET bytes = CASE WHEN"
		               " account_days.day = EXCLUDED.day THEN account_days.bytes ELSE 0 END"
		               " + EXCLUDED.bytes, day = EXCLUDED.day",
		               2, params + 1, NULL, err, errlen) < 0)
			goto rollback;
	}
	ret = store_fence_commit(st, err, errlen);
	goto out;
rollback:
	store_rollback(st);
out:
	free(src);
	free(dst);
	free(len);
	store_params_free(&runs_q);
	store_params_free(&folder_q);
	store_params_free(&counts_q);
	return ret;
}

int store_lane_open(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                    uint32_t lo, uint32_t hi, char *err, size_t errlen)
{
	struct store_params q;
	int ret = -1;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_u32(&q, lo);
	store_param_u32(&q, hi);
	if (store_params_check(&q, err, errlen) == 0)
		ret = store_fenced_exec(st, account_id, epoch,
		                        "UPDATE folders SET lane_lo = $2, lane_hi = $3,"
		                        " lane_high_water = 0, lane_intent_dst_uidnext = 0,"
		                        " lane_intent_uids = NULL WHERE id = $1",
		                        q.count, q.values, NULL, err, errlen);
	store_params_free(&q);
	return ret;
}

int store_lane_close(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                     char *err, size_t errlen)
{
	struct store_params q;
	int ret = -1;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	if (store_params_check(&q, err, errlen) == 0)
		ret = store_fenced_exec(st, account_id, epoch,
		                        "UPDATE folders SET high_water = greatest(high_water,"
		                        " lane_hi), lane_lo = 0, lane_hi = 0, lane_high_water = 0,"
		                        " lane_intent_dst_uidnext = 0, lane_intent_uids = NULL"
		                        " WHERE id = $1 AND lane_lo <> 0",
		                        q.count, q.values, NULL, err, errlen);
	store_params_free(&q);
	return ret;
}

int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                        uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
                        char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_u32(&q, src_uidnext);
	store_param_u32(&q, src_messages);
	store_param_u64(&q, highest_modseq);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "WITH f AS (UPDATE folders SET src_uidnext = $2, src_messages = $3,"
	    " highest_modseq = $4, rematch = false, synced_at = now(), error = NULL"
	    " WHERE id = $1 RETURNING id, account_id)"
	    " INSERT INTO pass_folders (folder_id, number, finished_at)"
	    " SELECT f.id, a.lease_pass, now() FROM f JOIN accounts a"
	    " ON a.id = f.account_id"
	    " ON CONFLICT (folder_id, number) DO UPDATE SET finished_at = now(),"
	    " error = NULL",
	    q.count, q.values, NULL, err, errlen);
}

int store_folder_error(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                       const char *dst_name, const char *error, char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_str(&q, src_name);
	store_param_str(&q, dst_name != NULL ? dst_name : "");
	store_param_str(&q, error);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "WITH f AS (INSERT INTO folders (account_id, src_name, dst_name, error)"
	    " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, src_name)"
	    " DO UPDATE SET error = EXCLUDED.error RETURNING id, account_id)"
	    " INSERT INTO pass_folders (folder_id, number, error)"
	    " SELECT f.id, a.lease_pass, $4 FROM f JOIN accounts a"
	    " ON a.id = f.account_id"
	    " ON CONFLICT (folder_id, number) DO UPDATE SET error = EXCLUDED.error",
	    q.count, q.values, NULL, err, errlen);
}

int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids, size_t count,
                        uint32_t *dst_uids_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	size_t j = 0;

	for (size_t i = 1; i < count; i++)
		assert(src_uids[i - 1] <= src_uids[i]); /* the contract: ascending */
	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_uids(&q, src_uids, count);
	if (store_params_check(&q, err, errlen) < 0) {
		store_params_free(&q);
		return -1;
	}
	memset(dst_uids_r, 0, count * sizeof(*dst_uids_r));
	/* For each UID, the run with the greatest start <= UID (an index probe). */
	if (store_exec(
	        st,
	        "SELECT u, m.dst_start + (u - m.src_start) FROM unnest($2::bigint[]) AS u"
	        " CROSS JOIN LATERAL (SELECT src_start, dst_start, len FROM uid_map"
	        "  WHERE folder_id = $1 AND src_start <= u ORDER BY src_start DESC LIMIT 1) m"
	        " WHERE u < m.src_start + m.len ORDER BY u",
	        q.count, q.values, &res, err, errlen) < 0) {
		store_params_free(&q);
		return -1;
	}
	store_params_free(&q);
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

int store_uidmap_next(struct store *st, int64_t folder_id, uint32_t from, uint32_t *uid_r,
                      char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_u32(&q, from);
	if (store_exec(st,
	               "SELECT coalesce(min(greatest(src_start, $2::bigint)), 0) FROM uid_map"
	               " WHERE folder_id = $1 AND src_start + len > $2::bigint",
	               q.count, q.values, &res, err, errlen) < 0)
		return -1;
	*uid_r = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int store_uidmap_claimed(struct store *st, int64_t account_id, int64_t folder_id,
                         const char *dst_name, uint32_t **starts_r, uint32_t **lens_r,
                         size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	size_t n;

	*starts_r = *lens_r = NULL;
	*count_r = 0;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_i64(&q, folder_id);
	store_param_str(&q, dst_name);
	if (store_exec(
	        st,
	        "SELECT m.dst_start, m.len FROM uid_map m JOIN folders f ON f.id = m.folder_id"
	        " WHERE f.account_id = $1 AND f.id <> $2 AND f.dst_name = $3",
	        q.count, q.values, &res, err, errlen) < 0)
		return -1;
	n = (size_t)PQntuples(res);
	*starts_r = calloc(n + 1, sizeof(**starts_r));
	*lens_r = calloc(n + 1, sizeof(**lens_r));
	if (*starts_r == NULL || *lens_r == NULL) {
		PQclear(res);
		free(*starts_r);
		free(*lens_r);
		*starts_r = *lens_r = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		(*starts_r)[i] = (uint32_t)strtoul(PQgetvalue(res, (int)i, 0), NULL, 10);
		(*lens_r)[i] = (uint32_t)strtoul(PQgetvalue(res, (int)i, 1), NULL, 10);
	}
	*count_r = n;
	PQclear(res);
	return 0;
}

int store_folder_filtered(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                          uint32_t through, uint32_t count, const struct store_msg_error *skips,
                          size_t nskips, char *err, size_t errlen)
{
	struct store_params q;
	int ret;

	store_params_init(&q);
	store_param_i64(&q, folder_id);
	store_param_u32(&q, through);
	store_param_u32(&q, count);
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		return ret;
	if (store_exec(
	        st,
	        "WITH f AS (UPDATE folders SET filtered_messages = filtered_messages + $3,"
	        " filtered_through = greatest(filtered_through, $2::bigint) WHERE id = $1"
	        " RETURNING id, account_id)"
	        " INSERT INTO pass_folders (folder_id, number, filtered)"
	        " SELECT f.id, a.lease_pass, $3 FROM f JOIN accounts a ON a.id = f.account_id"
	        " ON CONFLICT (folder_id, number)"
	        " DO UPDATE SET filtered = pass_folders.filtered + EXCLUDED.filtered",
	        q.count, q.values, NULL, err, errlen) < 0)
		goto rollback;
	for (size_t i = 0; i < nskips; i++) {
		struct store_params e;

		store_params_init(&e);
		store_param_i64(&e, account_id);
		store_param_i64(&e, folder_id);
		store_param_u32(&e, skips[i].src_uid);
		store_param_str(&e, skips[i].error);
		if (store_exec(
		        st,
		        "INSERT INTO message_skips (account_id, folder_id, src_uid, reason)"
		        " VALUES ($1, $2, $3, $4) ON CONFLICT (folder_id, src_uid) DO NOTHING",
		        e.count, e.values, NULL, err, errlen) < 0)
			goto rollback;
	}
	return store_fence_commit(st, err, errlen);
rollback:
	store_rollback(st);
	return -1;
}
