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
	char aid[32];
	const char *params[3] = {aid, src_name, dst_name};
	PGresult *res = NULL;
	struct store_folder f;
	int ret;

	memset(&f, 0, sizeof(f));
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	ret = store_fenced_exec(
	    st, account_id, epoch,
	    "WITH ins AS (INSERT INTO folders (account_id, src_name, dst_name)"
	    " VALUES ($1, $2, $3) ON CONFLICT (account_id, src_name)"
	    " DO UPDATE SET dst_name = EXCLUDED.dst_name RETURNING *)"
	    " SELECT id, src_name, dst_name, src_uidvalidity, dst_uidvalidity, high_water,"
	    " highest_modseq, src_uidnext, src_messages, intent_dst_uidnext,"
	    " coalesce(intent_uids::text, '{}'), rematch FROM ins",
	    3, params, &res, err, errlen);
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
	if (uid_array_parse(PQgetvalue(res, 0, 10), &f.intent_uids, &f.intent_count) < 0 ||
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
	char fid[32], sv[16], dv[16];
	const char *params[4] = {fid, sv, dv, rematch ? "true" : "false"};
	int ret;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(sv, sizeof(sv), "%" PRIu32, src_uidvalidity);
	snprintf(dv, sizeof(dv), "%" PRIu32, dst_uidvalidity);
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		return ret;
	if ((rematch && store_exec(st, "DELETE FROM uid_map WHERE folder_id = $1", 1, params, NULL,
	                           err, errlen) < 0) ||
	    store_exec(st,
	               "UPDATE folders SET src_uidvalidity = $2, dst_uidvalidity = $3,"
	               " high_water = 0, highest_modseq = 0, src_uidnext = 0, src_messages = 0,"
	               " intent_dst_uidnext = 0, intent_uids = NULL, rematch = $4 WHERE id = $1",
	               4, params, NULL, err, errlen) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_fence_commit(st, err, errlen);
}

/* Formats UIDs as a PostgreSQL array literal; caller frees. */
static char *uid_array_format(const uint32_t *uids, size_t count)
{
	size_t cap = 3 + count * 11, len = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (size_t i = 0; i < count; i++)
		len +=
		    (size_t)snprintf(out + len, cap - len, "%s%" PRIu32, i > 0 ? "," : "", uids[i]);
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t dst_uidnext, const uint32_t *uids, size_t count, char *err,
                       size_t errlen)
{
	char fid[32], next[16];
	char *arr = uid_array_format(uids, count);
	const char *params[3] = {fid, next, arr};
	int ret;

	if (arr == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(next, sizeof(next), "%" PRIu32, dst_uidnext);
	ret = store_fenced_exec(
	    st, account_id, epoch,
	    "UPDATE folders SET intent_dst_uidnext = $2, intent_uids = $3::bigint[]"
	    " WHERE id = $1",
	    3, params, NULL, err, errlen);
	free(arr);
	return ret;
}

int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       const struct store_uidpair *pairs, size_t npairs,
                       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
                       size_t appended, uint64_t bytes, size_t matched,
                       const struct store_intent *next, char *err, size_t errlen)
{
	uint32_t *src = NULL, *dst = NULL, *len = NULL;
	char *src_arr = NULL, *dst_arr = NULL, *len_arr = NULL, *next_arr = NULL;
	char fid[32], aid[32], hw[16], nb[32], nm[32], ne[32], nx[32], nn[16];
	size_t runs = 0;
	int ret = -1;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	snprintf(hw, sizeof(hw), "%" PRIu32, high_water);
	snprintf(nb, sizeof(nb), "%" PRIu64, bytes);
	snprintf(nm, sizeof(nm), "%zu", appended);
	snprintf(ne, sizeof(ne), "%zu", nerrors);
	snprintf(nx, sizeof(nx), "%zu", matched);
	snprintf(nn, sizeof(nn), "%" PRIu32, next != NULL ? next->dst_uidnext : 0);
	if (next != NULL && next->count > 0 &&
	    (next_arr = uid_array_format(next->uids, next->count)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
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
	src_arr = uid_array_format(src, runs);
	dst_arr = uid_array_format(dst, runs);
	len_arr = uid_array_format(len, runs);
	if (src_arr == NULL || dst_arr == NULL || len_arr == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0)
		goto out;
	ret = -1;
	{
		const char *params[4] = {fid, src_arr, dst_arr, len_arr};
		if (runs > 0 &&
		    store_exec(st,
		               "INSERT INTO uid_map (folder_id, src_start, dst_start, len)"
		               " SELECT $1, s, d, l FROM unnest($2::bigint[], $3::bigint[],"
		               " $4::int[]) AS r(s, d, l)"
		               " ON CONFLICT (folder_id, src_start) DO UPDATE SET"
		               " dst_start = EXCLUDED.dst_start, len = EXCLUDED.len",
		               4, params, NULL, err, errlen) < 0)
			goto rollback;
	}
	for (size_t i = 0; i < nerrors; i++) {
		char uid[16];
		const char *params[4] = {aid, fid, uid, errors[i].error};
		snprintf(uid, sizeof(uid), "%" PRIu32, errors[i].src_uid);
		if (store_exec(st,
		               "INSERT INTO message_errors (account_id, folder_id, src_uid, error)"
		               " VALUES ($1, $2, $3, $4) ON CONFLICT (folder_id, src_uid)"
		               " DO UPDATE SET error = EXCLUDED.error, at = now()",
		               4, params, NULL, err, errlen) < 0)
			goto rollback;
	}
	{
		/* The intent is cleared, or is the next batch's ($8 NULL: none). */
		const char *params[8] = {fid, hw, nb, nm, ne, nx, nn, next_arr};
		if (store_exec(
		        st,
		        "UPDATE folders SET high_water = greatest(high_water, $2::bigint),"
		        " copied_bytes = copied_bytes + $3, copied_messages = copied_messages"
		        " + $4, failed_messages = failed_messages + $5,"
		        " matched_messages = matched_messages + $6,"
		        " intent_dst_uidnext = CASE WHEN $8::bigint[] IS NULL THEN 0 ELSE $7 END,"
		        " intent_uids = $8::bigint[] WHERE id = $1",
		        8, params, NULL, err, errlen) < 0)
			goto rollback;
	}
	if (appended > 0 || nerrors > 0 || matched > 0) {
		const char *params[6] = {fid, aid, nb, nm, ne, nx};
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
	free(src_arr);
	free(dst_arr);
	free(len_arr);
	free(next_arr);
	return ret;
}

int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                        uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
                        char *err, size_t errlen)
{
	char fid[32], next[16], msgs[16], modseq[32];
	const char *params[4] = {fid, next, msgs, modseq};

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(next, sizeof(next), "%" PRIu32, src_uidnext);
	snprintf(msgs, sizeof(msgs), "%" PRIu32, src_messages);
	snprintf(modseq, sizeof(modseq), "%" PRIu64, highest_modseq);
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
	    4, params, NULL, err, errlen);
}

int store_folder_error(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                       const char *dst_name, const char *error, char *err, size_t errlen)
{
	char aid[32];
	const char *params[4] = {aid, src_name, dst_name != NULL ? dst_name : "", error};

	snprintf(aid, sizeof(aid), "%" PRId64, account_id);
	return store_fenced_exec(
	    st, account_id, epoch,
	    "WITH f AS (INSERT INTO folders (account_id, src_name, dst_name, error)"
	    " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, src_name)"
	    " DO UPDATE SET error = EXCLUDED.error RETURNING id, account_id)"
	    " INSERT INTO pass_folders (folder_id, number, error)"
	    " SELECT f.id, a.lease_pass, $4 FROM f JOIN accounts a"
	    " ON a.id = f.account_id"
	    " ON CONFLICT (folder_id, number) DO UPDATE SET error = EXCLUDED.error",
	    4, params, NULL, err, errlen);
}

int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids, size_t count,
                        uint32_t *dst_uids_r, char *err, size_t errlen)
{
	char fid[32];
	char *arr = uid_array_format(src_uids, count);
	const char *params[2] = {fid, arr};
	PGresult *res = NULL;
	size_t j = 0;

	for (size_t i = 1; i < count; i++)
		assert(src_uids[i - 1] <= src_uids[i]); /* the contract: ascending */
	if (arr == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	memset(dst_uids_r, 0, count * sizeof(*dst_uids_r));
	/* For each UID, the run with the greatest start <= UID (an index probe). */
	if (store_exec(
	        st,
	        "SELECT u, m.dst_start + (u - m.src_start) FROM unnest($2::bigint[]) AS u"
	        " CROSS JOIN LATERAL (SELECT src_start, dst_start, len FROM uid_map"
	        "  WHERE folder_id = $1 AND src_start <= u ORDER BY src_start DESC LIMIT 1) m"
	        " WHERE u < m.src_start + m.len ORDER BY u",
	        2, params, &res, err, errlen) < 0) {
		free(arr);
		return -1;
	}
	free(arr);
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
	char fid[32], f[16];
	const char *params[2] = {fid, f};
	PGresult *res = NULL;

	snprintf(fid, sizeof(fid), "%" PRId64, folder_id);
	snprintf(f, sizeof(f), "%" PRIu32, from);
	if (store_exec(st,
	               "SELECT coalesce(min(greatest(src_start, $2::bigint)), 0) FROM uid_map"
	               " WHERE folder_id = $1 AND src_start + len > $2::bigint",
	               2, params, &res, err, errlen) < 0)
		return -1;
	*uid_r = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}
