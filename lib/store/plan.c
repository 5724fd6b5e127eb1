/* Plans: a migration with its servers (source profiles, destination,
 * blackout windows, connection slots) and its accounts, imported or added in
 * one transaction each. */
#include "store-plan.h"

#include "store-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_server_clear(struct store_server *srv)
{
	free(srv->host);
	free(srv->tls);
	free(srv->ca_file);
	free(srv->auth);
	free(srv->master_user);
	free(srv->prefix);
	free(srv->exclude);
	free(srv->folder_rules);
	free(srv->since);
	free(srv->name);
	for (size_t i = 0; i < srv->nblackouts; i++)
		free(srv->blackouts[i].time_zone);
	free(srv->blackouts);
	memset(srv, 0, sizeof(*srv));
}

/* Fills srv from the STORE_SERVER_COLUMNS starting at column c. */
void store_server_from_row(struct store_server *srv, const PGresult *res, int row, int c)
{
	srv->id = strtoll(PQgetvalue(res, row, c), NULL, 10);
	srv->host = store_dup_value(res, row, c + 1);
	srv->port = (int)strtol(PQgetvalue(res, row, c + 2), NULL, 10);
	srv->tls = store_dup_value(res, row, c + 3);
	srv->ca_file = store_dup_value(res, row, c + 4);
	srv->auth = store_dup_value(res, row, c + 5);
	srv->master_user = store_dup_value(res, row, c + 6);
	srv->max_connections = (int)strtol(PQgetvalue(res, row, c + 7), NULL, 10);
	srv->prefix = store_dup_value(res, row, c + 8);
	srv->exclude = store_dup_value(res, row, c + 9);
	srv->name = store_dup_value(res, row, c + 10);
	srv->rate_messages = (int)strtol(PQgetvalue(res, row, c + 11), NULL, 10);
	srv->rate_bytes = strtoll(PQgetvalue(res, row, c + 12), NULL, 10);
	srv->account_daily_bytes = strtoll(PQgetvalue(res, row, c + 13), NULL, 10);
	srv->folder_rules = store_dup_value(res, row, c + 14);
	srv->since = store_dup_value(res, row, c + 15);
	srv->max_message_bytes = strtoll(PQgetvalue(res, row, c + 16), NULL, 10);
}

/* Inserts a server profile with its connection budget (max_connections slots)
 * and its blackout windows; *id_r is its id. */
static int server_insert(struct store *st, const char *migration_id, const char *role,
                         const struct store_server *srv, char *id_r, size_t id_len, char *err,
                         size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_str(&q, migration_id);
	store_param_str(&q, role);
	store_param_str(&q, srv->host);
	store_param_i64(&q, srv->port);
	store_param_str(&q, srv->tls);
	store_param_str(&q, srv->ca_file);
	store_param_str(&q, srv->auth);
	store_param_str(&q, srv->master_user);
	store_param_i64(&q, srv->max_connections);
	store_param_str(&q, srv->prefix != NULL ? srv->prefix : "");
	store_param_str(&q, srv->exclude != NULL ? srv->exclude : "");
	store_param_str(&q, srv->name != NULL ? srv->name : "default");
	store_param_i64(&q, srv->rate_messages);
	store_param_i64(&q, srv->rate_bytes);
	store_param_i64(&q, srv->account_daily_bytes);
	store_param_str(&q, srv->folder_rules != NULL ? srv->folder_rules : "");
	if (store_exec(st,
	               "WITH srv AS (INSERT INTO servers (migration_id, role, host, port, tls,"
	               " ca_file, auth, master_user, max_connections, prefix, exclude, name,"
	               " rate_messages, rate_bytes, account_daily_bytes, folder_rules)"
	               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
	               " $16)"
	               " RETURNING id, max_connections),"
	               " slots AS (INSERT INTO server_slots (server_id, slot)"
	               " SELECT id, generate_series(1, max_connections) FROM srv)"
	               " SELECT id FROM srv",
	               16, params, &res, err, errlen) < 0)
		return -1;
	snprintf(id_r, id_len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (srv->since != NULL || srv->max_message_bytes > 0) {
		/* The filters (their own statement: the insert has all the
		 * parameters a statement takes). */
		struct store_params fq;
		store_params_init(&fq);
		store_param_str(&fq, id_r);
		store_param_str(&fq, srv->since);
		store_param_i64(&fq, srv->max_message_bytes);
		if (store_exec(st,
		               "UPDATE servers SET since = $2::date, max_message_bytes = $3"
		               " WHERE id = $1",
		               fq.count, fq.values, NULL, err, errlen) < 0)
			return -1;
	}
	for (size_t i = 0; i < srv->nblackouts; i++) {
		const struct store_blackout *b = &srv->blackouts[i];
		char what[160];
		struct store_params bq;

		store_params_init(&bq);
		store_param_str(&bq, id_r);
		store_param_i64(&bq, b->weekdays);
		store_param_i64(&bq, b->from_s);
		store_param_i64(&bq, b->to_s);
		store_param_str(&bq, b->time_zone);
		/* AT TIME ZONE refuses an unknown zone here, at import, rather than
		 * in every scheduler step later. */
		st->error[0] = '\0';
		res = store_pq_exec(
		    st,
		    "INSERT INTO blackouts (server_id, weekdays, from_s, to_s, time_zone)"
		    " SELECT $1, $2, $3, $4, $5 WHERE (now() AT TIME ZONE $5) IS NOT NULL",
		    bq.count, bq.values, NULL, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(what, sizeof(what), "%s %s: blackout[%zu]", role,
			         srv->name != NULL ? srv->name : "", i);
			store_fail(st, err, errlen, what, res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/* Inserts accounts in pages of rows (unnest of arrays): one round trip per
 * page instead of per account. */
static int accounts_insert(struct store *st, const char *migration_id, const char *const *src_ids,
                           const char *dst_id, const struct store_new_account *accounts,
                           size_t count, char *err, size_t errlen)
{
	const size_t page = 1000;

	for (size_t first = 0; first < count; first += page) {
		size_t n = count - first < page ? count - first : page;
		/* One page as arrays: logins, secrets, priorities, source ids. */
		const char **src_logins = calloc(n, sizeof(*src_logins));
		const char **dst_logins = calloc(n, sizeof(*dst_logins));
		const char **sources = calloc(n, sizeof(*sources));
		const char **rules = calloc(n, sizeof(*rules));
		const unsigned char **src_secrets = calloc(n, sizeof(*src_secrets));
		const unsigned char **dst_secrets = calloc(n, sizeof(*dst_secrets));
		size_t *src_lens = calloc(n, sizeof(*src_lens));
		size_t *dst_lens = calloc(n, sizeof(*dst_lens));
		int64_t *priorities = calloc(n, sizeof(*priorities));
		struct store_params q;
		PGresult *res;
		int ok = src_logins != NULL && dst_logins != NULL && sources != NULL &&
		         src_secrets != NULL && dst_secrets != NULL && src_lens != NULL &&
		         dst_lens != NULL && priorities != NULL && rules != NULL;

		store_params_init(&q);
		for (size_t i = 0; i < n && ok; i++) {
			const struct store_new_account *a = &accounts[first + i];
			src_logins[i] = a->src_login;
			dst_logins[i] = a->dst_login;
			src_secrets[i] = a->src_secret;
			dst_secrets[i] = a->dst_secret;
			src_lens[i] = a->src_secret_len;
			dst_lens[i] = a->dst_secret_len;
			priorities[i] = a->priority;
			rules[i] = a->folder_rules != NULL ? a->folder_rules : "";
			sources[i] = src_ids[a->source];
		}
		if (ok) {
			store_param_str(&q, migration_id);
			store_param_str(&q, dst_id);
			store_param_texts(&q, src_logins, n);
			store_param_texts(&q, dst_logins, n);
			store_param_byteas(&q, src_secrets, src_lens, n);
			store_param_byteas(&q, dst_secrets, dst_lens, n);
			store_param_ids(&q, priorities, n);
			store_param_texts(&q, sources, n);
			store_param_texts(&q, rules, n);
		}
		free(src_logins);
		free(dst_logins);
		free(sources);
		free(rules);
		free(src_secrets);
		free(dst_secrets);
		free(src_lens);
		free(dst_lens);
		free(priorities);
		if (!ok || store_params_check(&q, err, errlen) < 0) {
			store_params_free(&q);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		st->error[0] = '\0';
		res =
		    store_pq_exec(st,
		                  "INSERT INTO accounts (migration_id, dst_server_id, src_login,"
		                  " dst_login, src_secret, dst_secret, priority, src_server_id,"
		                  " folder_rules)"
		                  " SELECT $1, $2, s, d, ss, ds, p, sv, fr FROM unnest($3::text[],"
		                  " $4::text[], $5::bytea[], $6::bytea[], $7::int[], $8::bigint[],"
		                  " $9::text[]) AS r(s, d, ss, ds, p, sv, fr)",
		                  q.count, q.values, NULL, NULL);
		store_params_free(&q);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* Name the account: a duplicate names its login in the detail. */
			const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
			char what[512];
			int line = 0;
			for (size_t i = first; detail != NULL && i < first + n; i++) {
				char needle[300];
				/* "Key (migration_id, lower(src_login))=(7, alice)": the
				 * login as stored, in lower case for the case-blind key. */
				snprintf(needle, sizeof(needle), ", %s)", accounts[i].src_login);
				if (strcasestr(detail, needle) != NULL) {
					line = accounts[i].line;
					break;
				}
			}
			if (line > 0)
				snprintf(what, sizeof(what), "line %d", line);
			else
				snprintf(what, sizeof(what), "accounts %zu..%zu", first + 1,
				         first + n);
			store_fail(st, err, errlen, what, res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

int store_migration_import(struct store *st, const char *name, const struct store_server *srcs,
                           size_t nsrcs, const struct store_server *dst,
                           const struct store_new_account *accounts, size_t count, int64_t *id_r,
                           char *err, size_t errlen)
{
	const char *params[1] = {name};
	char(*src_ids)[32] = calloc(nsrcs + 1, sizeof(*src_ids));
	const char **src_id_ptrs = calloc(nsrcs + 1, sizeof(*src_id_ptrs));
	char dst_id[32];
	PGresult *res = NULL;
	const char *id;

	if (src_ids == NULL || src_id_ptrs == NULL) {
		free(src_ids);
		free(src_id_ptrs);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		goto fail;
	if (store_exec(st, "INSERT INTO migrations (name) VALUES ($1) RETURNING id", 1, params,
	               &res, err, errlen) < 0)
		goto fail;
	id = PQgetvalue(res, 0, 0);
	for (size_t i = 0; i < nsrcs; i++) {
		if (server_insert(st, id, "source", &srcs[i], src_ids[i], sizeof(src_ids[i]), err,
		                  errlen) < 0)
			goto fail;
		src_id_ptrs[i] = src_ids[i];
	}
	if (server_insert(st, id, "destination", dst, dst_id, sizeof(dst_id), err, errlen) < 0 ||
	    accounts_insert(st, id, src_id_ptrs, dst_id, accounts, count, err, errlen) < 0)
		goto fail;
	*id_r = strtoll(id, NULL, 10);
	PQclear(res);
	free(src_ids);
	free(src_id_ptrs);
	return store_exec_simple(st, "COMMIT", err, errlen);
fail:
	PQclear(res);
	free(src_ids);
	free(src_id_ptrs);
	store_rollback(st);
	return -1;
}

int store_accounts_add(struct store *st, int64_t migration_id,
                       const struct store_new_account *accounts, size_t count, char *err,
                       size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	const char **src_ids = NULL;
	char dst_id[32];
	int ret = -1;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(st,
	               "SELECT id, role FROM servers WHERE migration_id = $1"
	               " ORDER BY role = 'destination', id FOR KEY SHARE",
	               1, params, &res, err, errlen) < 0)
		goto out;
	if (PQntuples(res) < 2) {
		snprintf(err, errlen, "no such migration");
		goto out;
	}
	src_ids = calloc((size_t)PQntuples(res), sizeof(*src_ids));
	if (src_ids == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < PQntuples(res) - 1; i++)
		src_ids[i] = PQgetvalue(res, i, 0);
	snprintf(dst_id, sizeof(dst_id), "%s", PQgetvalue(res, PQntuples(res) - 1, 0));
	for (size_t i = 0; i < count; i++) {
		if (accounts[i].source >= (size_t)PQntuples(res) - 1) {
			snprintf(err, errlen, "unknown source profile");
			goto out;
		}
	}
	if (accounts_insert(st, params[0], src_ids, dst_id, accounts, count, err, errlen) < 0)
		goto out;
	ret = store_exec_simple(st, "COMMIT", err, errlen);
out:
	if (ret < 0)
		store_rollback(st);
	free(src_ids);
	PQclear(res);
	return ret;
}

int store_migration_sources(struct store *st, int64_t migration_id, struct store_server **srcs_r,
                            size_t *count_r, char *err, size_t errlen)
{
	struct store_params q;
	const char *const *params = q.values;
	PGresult *res = NULL;
	struct store_server *srcs;
	int n;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	if (store_exec(st,
	               "SELECT " STORE_SERVER_COLUMNS " FROM servers s WHERE migration_id = $1"
	               " AND role = 'source' ORDER BY id",
	               1, params, &res, err, errlen) < 0)
		return -1;
	n = PQntuples(res);
	srcs = calloc((size_t)n + 1, sizeof(*srcs));
	if (srcs == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++)
		store_server_from_row(&srcs[i], res, i, 0);
	PQclear(res);
	*srcs_r = srcs;
	*count_r = (size_t)n;
	return 0;
}
