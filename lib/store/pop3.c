/* Pseudo UIDs of POP3 maildrops; see store-pop3.h. */
#include "store-pop3.h"

#include "store-params.h"
#include "store-private.h"

#include <stdlib.h>
#include <string.h>

int store_pop3_uids(struct store *st, int64_t account_id, int64_t epoch, const char *const *uidls,
                    size_t count, uint32_t *uids_r, int64_t *first_seen_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	int ret;

	if (count == 0)
		return 0;
	store_params_init(&q);
	store_param_i64(&q, account_id);
	store_param_texts(&q, uidls, count);
	if (store_params_check(&q, err, errlen) < 0) {
		store_params_free(&q);
		return -1;
	}
	ret = store_fence_begin(st, account_id, epoch, err, errlen);
	if (ret < 0) {
		store_params_free(&q);
		return ret;
	}
	/* New unique-ids get UIDs above the account's highest, in the order
	 * given (the fence keeps other writers of this account out). */
	if (store_exec(
	        st,
	        "WITH given AS (SELECT u, o FROM unnest($2::text[]) WITH ORDINALITY AS g(u, o)),"
	        " fresh AS (SELECT g.u, g.o FROM given g WHERE NOT EXISTS"
	        "  (SELECT 1 FROM pop3_uids p WHERE p.account_id = $1 AND p.uidl = g.u)),"
	        " base AS (SELECT coalesce(max(uid), 0) AS top FROM pop3_uids"
	        "  WHERE account_id = $1)"
	        " INSERT INTO pop3_uids (account_id, uidl, uid)"
	        " SELECT $1, f.u, b.top + row_number() OVER (ORDER BY f.o)"
	        " FROM fresh f CROSS JOIN base b",
	        q.count, q.values, NULL, err, errlen) < 0 ||
	    store_exec(st,
	               "SELECT p.uid, extract(epoch FROM p.first_seen)::bigint"
	               " FROM unnest($2::text[]) WITH ORDINALITY AS g(u, o)"
	               " JOIN pop3_uids p ON p.account_id = $1 AND p.uidl = g.u ORDER BY g.o",
	               q.count, q.values, &res, err, errlen) < 0)
		goto rollback;
	if ((size_t)PQntuples(res) != count) {
		snprintf(err, errlen, "pop3 unique-ids: %d UIDs read back for %zu", PQntuples(res),
		         count);
		goto rollback;
	}
	for (size_t i = 0; i < count; i++) {
		uids_r[i] = (uint32_t)strtoul(PQgetvalue(res, (int)i, 0), NULL, 10);
		first_seen_r[i] = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
	}
	PQclear(res);
	store_params_free(&q);
	return store_fence_commit(st, err, errlen);
rollback:
	PQclear(res);
	store_params_free(&q);
	store_rollback(st);
	return -1;
}
