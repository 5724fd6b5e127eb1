/* The MX-aware final pass's records (store-mx.h): settings, lookups, the
 * settle, the final pass started in one transaction with its record, and
 * the domains' state for status. */
#include "store-mx.h"

#include "store-private.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Account a belongs to domain row d: its source or destination login ends
 * in "@" d.domain. */
#define MX_MEMBER                                                                                  \
	" a.migration_id = d.migration_id"                                                         \
	" AND (lower(substring(a.src_login FROM '@([^@]*)$')) = d.domain"                          \
	"  OR lower(substring(a.dst_login FROM '@([^@]*)$')) = d.domain)"

/* Writes reason ($2) into the history of every account of domain $1. */
#define MX_LOG_SQL                                                                                 \
	"INSERT INTO account_log (account_id, from_state, to_state, reason)"                       \
	" SELECT a.id, a.state, a.state, $2 FROM mx_domains d JOIN accounts a ON" MX_MEMBER        \
	" WHERE d.id = $1"

/* Times as status shows them. */
#define MX_TS "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

/* Account a's part in final pass d.final_pass ended (as `wait` counts):
 * it synced it, or was refused, cancelled or failed past its budget. */
#define MX_ENDED                                                                                   \
	"a.pass_done >= d.final_pass"                                                              \
	" OR a.state IN ('auth_failed', 'verify_failed', 'cancelled')"                             \
	" OR (a.state = 'failed' AND a.attempts >= a.error_budget)"

static int mx_log(struct store *st, int64_t domain_id, const char *reason, char *err, size_t errlen)
{
	struct store_params q;

	store_params_init(&q);
	store_param_i64(&q, domain_id);
	store_param_str(&q, reason);
	return store_exec(st, MX_LOG_SQL, 2, q.values, NULL, err, errlen);
}

int store_mx_set(struct store *st, int64_t migration_id, const struct store_mx_config *cfg,
                 char *err, size_t errlen)
{
	bool on = cfg != NULL && cfg->ndomains > 0;
	struct store_params m, d;
	int ret = -1;

	store_params_init(&m);
	store_param_i64(&m, migration_id);
	store_params_init(&d);
	store_param_i64(&d, migration_id);
	if (on) {
		store_param_texts(&m, cfg->hosts, cfg->nhosts);
		store_param_i64(&m, cfg->settle_s);
		store_param_i64(&m, cfg->interval_s);
		store_param_str(&m, cfg->resolver);
		store_param_texts(&d, cfg->domains, cfg->ndomains);
	} else {
		store_param_str(&m, NULL);
		store_param_i64(&m, 600);
		store_param_i64(&m, 60);
		store_param_str(&m, NULL);
		store_param_texts(&d, NULL, 0);
	}
	if (store_params_check(&m, err, errlen) < 0 || store_params_check(&d, err, errlen) < 0 ||
	    store_exec_simple(st, "BEGIN", err, errlen) < 0)
		goto out;
	if (store_exec(st,
	               "UPDATE migrations SET mx_hosts = $2::text[], mx_settle_s = $3,"
	               " mx_interval_s = $4, mx_resolver = $5 WHERE id = $1",
	               5, m.values, NULL, err, errlen) < 0 ||
	    store_exec(st,
	               "DELETE FROM mx_domains WHERE migration_id = $1"
	               " AND domain <> ALL($2::text[])",
	               2, d.values, NULL, err, errlen) < 0 ||
	    store_exec(st,
	               "INSERT INTO mx_domains (migration_id, domain)"
	               " SELECT $1, unnest($2::text[])"
	               " ON CONFLICT (migration_id, domain) DO NOTHING",
	               2, d.values, NULL, err, errlen) < 0 ||
	    store_exec_simple(st, "COMMIT", err, errlen) < 0) {
		store_rollback(st);
		goto out;
	}
	ret = 0;
out:
	store_params_free(&m);
	store_params_free(&d);
	return ret;
}

static void mx_strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Splits a PostgreSQL text[] literal's elements as array_to_string gave
 * them (separated by a space; host names hold none) into a NULL-terminated
 * array. */
static char **mx_split(const char *s)
{
	size_t n = 1, i = 0;
	char **out, *copy, *save = NULL;

	for (const char *c = s; *c != '\0'; c++)
		n += *c == ' ';
	out = calloc(n + 1, sizeof(*out));
	copy = strdup(s);
	if (out == NULL || copy == NULL) {
		free(out);
		free(copy);
		return NULL;
	}
	for (char *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if ((out[i++] = strdup(t)) == NULL) {
			free(copy);
			mx_strv_free(out);
			return NULL;
		}
	}
	free(copy);
	return out;
}

void store_mx_due_free(struct store_mx_due *rows, size_t count)
{
	for (size_t i = 0; rows != NULL && i < count; i++) {
		free(rows[i].domain);
		mx_strv_free(rows[i].hosts);
		free(rows[i].resolver);
	}
	free(rows);
}

int store_mx_due_list(struct store *st, struct store_mx_due **rows_r, size_t *count_r, char *err,
                      size_t errlen)
{
	struct store_mx_due *rows;
	PGresult *res = NULL;
	int n;

	*rows_r = NULL;
	*count_r = 0;
	if (store_exec(st,
	               "SELECT d.id, d.migration_id, d.domain, array_to_string(m.mx_hosts, ' '),"
	               " m.mx_resolver FROM mx_domains d JOIN migrations m ON m.id = d.migration_id"
	               " WHERE m.mx_hosts IS NOT NULL AND d.final_pass IS NULL"
	               " AND (d.checked_at IS NULL"
	               "  OR d.checked_at <= now() - make_interval(secs => m.mx_interval_s))"
	               " ORDER BY d.checked_at NULLS FIRST, d.id",
	               0, NULL, &res, err, errlen) < 0)
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
		rows[i].migration_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		rows[i].domain = strdup(PQgetvalue(res, i, 2));
		rows[i].hosts = mx_split(PQgetvalue(res, i, 3));
		rows[i].resolver = store_dup_value(res, i, 4);
		if (rows[i].domain == NULL || rows[i].hosts == NULL) {
			PQclear(res);
			store_mx_due_free(rows, (size_t)i + 1);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	PQclear(res);
	*rows_r = rows;
	*count_r = (size_t)n;
	return 0;
}

int store_mx_record(struct store *st, int64_t domain_id, const char *error, const char *seen,
                    int matched, int total, bool *due_r, enum store_mx_change *change_r, char *err,
                    size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	bool all = error == NULL && total > 0 && matched == total, was, open;
	char reason[1024];
	const char *domain;
	int settle;

	*due_r = false;
	*change_r = STORE_MX_SAME;
	store_params_init(&q);
	store_param_i64(&q, domain_id);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	if (store_exec(st,
	               "SELECT d.switched_at IS NOT NULL, d.final_pass IS NULL, d.domain,"
	               " m.mx_settle_s FROM mx_domains d JOIN migrations m ON m.id = d.migration_id"
	               " WHERE d.id = $1 FOR UPDATE OF d",
	               1, q.values, &res, err, errlen) < 0)
		goto fail;
	if (PQntuples(res) == 0) { /* forgotten meanwhile */
		PQclear(res);
		store_rollback(st);
		return 0;
	}
	was = PQgetvalue(res, 0, 0)[0] == 't';
	open = PQgetvalue(res, 0, 1)[0] == 't';
	domain = PQgetvalue(res, 0, 2);
	settle = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
	if (error != NULL) {
		store_param_str(&q, error);
		if (store_exec(st,
		               "UPDATE mx_domains SET checked_at = now(), error = $2 WHERE id = $1",
		               2, q.values, NULL, err, errlen) < 0)
			goto fail;
	} else {
		store_param_str(&q, seen);
		store_param_i64(&q, matched);
		store_param_i64(&q, total);
		store_param_bool(&q, all);
		if (store_exec(st,
		               "UPDATE mx_domains SET checked_at = now(), error = NULL, seen = $2,"
		               " matched = $3, total = $4, switched_at = CASE WHEN $5::boolean"
		               "  THEN coalesce(switched_at, now()) END WHERE id = $1",
		               5, q.values, NULL, err, errlen) < 0)
			goto fail;
		if (all && !was && open) {
			*change_r = STORE_MX_SETTLE_STARTED;
			snprintf(reason, sizeof(reason),
			         "MX switch seen for %s: every MX at the destination (%s)", domain,
			         seen);
			if (mx_log(st, domain_id, reason, err, errlen) < 0)
				goto fail;
			snprintf(reason, sizeof(reason),
			         "settle started for %s: MX %s; the final pass starts after %d s if"
			         " they stay",
			         domain, seen, settle);
			if (mx_log(st, domain_id, reason, err, errlen) < 0)
				goto fail;
		} else if (!all && was && open) {
			*change_r = STORE_MX_SETTLE_RESET;
			snprintf(
			    reason, sizeof(reason),
			    "MX switch undone for %s: %d of %d MX at the destination (%s); settle"
			    " reset",
			    domain, matched, total, seen);
			if (mx_log(st, domain_id, reason, err, errlen) < 0)
				goto fail;
		}
	}
	PQclear(res);
	res = NULL;
	if (error == NULL && all && open) {
		if (store_exec(
		        st,
		        "SELECT d.switched_at + make_interval(secs => m.mx_settle_s) <= now()"
		        " FROM mx_domains d JOIN migrations m ON m.id = d.migration_id"
		        " WHERE d.id = $1",
		        1, q.values, &res, err, errlen) < 0)
			goto fail;
		*due_r = PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
		res = NULL;
	}
	store_params_free(&q);
	return store_exec_simple(st, "COMMIT", err, errlen);
fail:
	PQclear(res);
	store_params_free(&q);
	store_rollback(st);
	return -1;
}

/* A final pass started for some of the domain's accounts (by hand). */
#define MX_HAND_FINAL                                                                              \
	"SELECT min(p.number) FROM accounts a JOIN pass_accounts pa ON pa.account_id = a.id"       \
	" JOIN passes p ON p.migration_id = a.migration_id AND p.number = pa.number"               \
	"  AND p.kind = 'final' WHERE" MX_MEMBER

/* A final pass due but not started: why, for status, until the next
 * lookup. */
static int mx_not_started(struct store *st, int64_t domain_id, const char *why, char *err,
                          size_t errlen)
{
	char text[512];
	struct store_params q;

	snprintf(text, sizeof(text), "final pass due but not started: %s", why);
	store_params_init(&q);
	store_param_i64(&q, domain_id);
	store_param_str(&q, text);
	return store_exec(st, "UPDATE mx_domains SET error = $2 WHERE id = $1", 2, q.values, NULL,
	                  err, errlen);
}

int store_mx_final_start(struct store *st, int64_t domain_id, int *pass_r, size_t *queued_r,
                         const char **why_r, char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;
	int64_t mid, *ids = NULL;
	size_t nids = 0;
	int pass;
	char reason[1024];

	*pass_r = 0;
	*queued_r = 0;
	*why_r = NULL;
	store_params_init(&q);
	store_param_i64(&q, domain_id);
	if (store_exec_simple(st, "BEGIN", err, errlen) < 0)
		return -1;
	/* The migration row is locked first: two watchers (or a watcher and
	 * an operator's change of the settings) are serialised on it. */
	if (store_exec(st,
	               "SELECT m.id FROM migrations m JOIN mx_domains d ON d.migration_id = m.id"
	               " WHERE d.id = $1 FOR UPDATE OF m",
	               1, q.values, &res, err, errlen) < 0)
		goto fail;
	PQclear(res);
	res = NULL;
	if (store_exec(st,
	               "SELECT d.migration_id, d.domain, d.seen,"
	               " to_char(d.switched_at AT TIME ZONE 'UTC', " MX_TS "),"
	               " m.mx_settle_s,"
	               " greatest((SELECT max(number) FROM passes WHERE migration_id = m.id),"
	               "  (SELECT max(pass) FROM accounts WHERE migration_id = m.id), 0) + 1"
	               " FROM mx_domains d JOIN migrations m ON m.id = d.migration_id"
	               " WHERE d.id = $1 AND d.final_pass IS NULL AND d.error IS NULL"
	               " AND d.total > 0 AND d.matched = d.total AND m.mx_hosts IS NOT NULL"
	               " AND d.switched_at + make_interval(secs => m.mx_settle_s) <= now()"
	               " AND NOT EXISTS (" MX_HAND_FINAL " HAVING min(p.number) IS NOT NULL)"
	               " FOR UPDATE OF d",
	               1, q.values, &res, err, errlen) < 0)
		goto fail;
	if (PQntuples(res) == 0) { /* started, reset or adopted meanwhile */
		PQclear(res);
		store_rollback(st);
		return 0;
	}
	mid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	pass = (int)strtol(PQgetvalue(res, 0, 5), NULL, 10);
	snprintf(reason, sizeof(reason),
	         "final pass %d started by the MX watcher for %s: MX %s at the destination"
	         " since %s, settled %s s",
	         pass, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
	         PQgetvalue(res, 0, 4));
	PQclear(res);
	res = NULL;
	if (store_exec(st,
	               "SELECT a.id FROM mx_domains d JOIN accounts a ON" MX_MEMBER
	               " WHERE d.id = $1 ORDER BY a.id",
	               1, q.values, &res, err, errlen) < 0 ||
	    store_ids_from_result(res, &ids, &nids, err, errlen) < 0)
		goto fail;
	res = NULL;
	if (nids == 0) {
		*why_r = "the domain has no account (no source or destination login ends in"
		         " @domain)";
		store_rollback(st);
		free(ids);
		return mx_not_started(st, domain_id, *why_r, err, errlen);
	}
	if (store_pass_start_tx(st, mid, pass, "final", ids, nids, queued_r, err, errlen) < 0)
		goto fail;
	free(ids);
	ids = NULL;
	if (*queued_r == 0) {
		*why_r = "no account of the domain can run it (none verified or copied before)";
		store_rollback(st);
		return mx_not_started(st, domain_id, *why_r, err, errlen);
	}
	store_param_i64(&q, pass);
	store_param_i64(&q, (int64_t)*queued_r);
	if (store_exec(st,
	               "UPDATE mx_domains SET final_pass = $2, final_by = 'watcher',"
	               " final_at = now(), accounts = $3 WHERE id = $1",
	               3, q.values, NULL, err, errlen) < 0 ||
	    mx_log(st, domain_id, reason, err, errlen) < 0 ||
	    store_exec_simple(st, "COMMIT", err, errlen) < 0)
		goto fail;
	*pass_r = pass;
	return 0;
fail:
	PQclear(res);
	free(ids);
	store_rollback(st);
	return -1;
}

int store_mx_track(struct store *st, store_mx_event_cb *cb, void *context, char *err, size_t errlen)
{
	PGresult *res = NULL;

	/* A final pass started by hand for the domain's accounts is the
	 * domain's: the watcher starts none. */
	if (store_exec(st,
	               "WITH h AS (SELECT d.id, (" MX_HAND_FINAL ") AS number"
	               "  FROM mx_domains d WHERE d.final_pass IS NULL),"
	               " u AS (UPDATE mx_domains d SET final_pass = h.number, final_by = 'hand',"
	               "  final_at = p.started_at FROM h, passes p WHERE d.id = h.id"
	               "  AND h.number IS NOT NULL AND p.migration_id = d.migration_id"
	               "  AND p.number = h.number RETURNING d.id, d.migration_id, d.domain,"
	               "  d.final_pass),"
	               " l AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
	               "  SELECT a.id, a.state, a.state, 'final pass ' || d.final_pass ||"
	               "  ' started by hand for ' || d.domain || ': the MX watcher starts none'"
	               "  FROM u d JOIN accounts a ON" MX_MEMBER ")"
	               " SELECT migration_id, domain, final_pass FROM u",
	               0, NULL, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_mx_event ev = {
		    .migration_id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .domain = PQgetvalue(res, i, 1),
		    .pass = (int)strtol(PQgetvalue(res, i, 2), NULL, 10),
		    .by_hand = true,
		};
		cb(&ev, context);
	}
	PQclear(res);
	res = NULL;
	/* Ended: every account in it synced it, or was refused, cancelled or
	 * failed past its error budget (as `wait` counts). */
	if (store_exec(
	        st,
	        "WITH r AS (SELECT d.id, count(*) AS n,"
	        "  count(*) FILTER (WHERE a.pass_done >= d.final_pass) AS synced,"
	        "  bool_and(" MX_ENDED ") AS ended"
	        "  FROM mx_domains d JOIN accounts a ON" MX_MEMBER
	        "  JOIN pass_accounts pa ON pa.account_id = a.id AND pa.number = d.final_pass"
	        "  WHERE d.final_pass IS NOT NULL AND d.done_at IS NULL GROUP BY d.id),"
	        " u AS (UPDATE mx_domains d SET done_at = now(), accounts = r.n, synced = r.synced"
	        "  FROM r WHERE d.id = r.id AND r.ended"
	        "  RETURNING d.id, d.migration_id, d.domain, d.final_pass, d.synced, d.accounts),"
	        " l AS (INSERT INTO account_log (account_id, from_state, to_state, reason)"
	        "  SELECT a.id, a.state, a.state, 'final pass ' || d.final_pass || ' for ' ||"
	        "  d.domain || ' ended: ' || d.synced || ' of ' || d.accounts ||"
	        "  ' accounts synced' FROM u d JOIN accounts a ON" MX_MEMBER ")"
	        " SELECT u.migration_id, u.domain, u.final_pass, u.synced, u.accounts,"
	        "  NOT EXISTS (SELECT 1 FROM mx_domains o WHERE o.migration_id = u.migration_id"
	        "   AND o.done_at IS NULL AND o.id NOT IN (SELECT id FROM u))"
	        " FROM u ORDER BY u.migration_id, u.domain",
	        0, NULL, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_mx_event ev = {
		    .migration_id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .domain = PQgetvalue(res, i, 1),
		    .pass = (int)strtol(PQgetvalue(res, i, 2), NULL, 10),
		    .ended = true,
		    .synced = strtoll(PQgetvalue(res, i, 3), NULL, 10),
		    .accounts = strtoll(PQgetvalue(res, i, 4), NULL, 10),
		    .complete = PQgetvalue(res, i, 5)[0] == 't',
		};
		cb(&ev, context);
	}
	PQclear(res);
	return 0;
}

int store_mx_status(struct store *st, int64_t migration_id, store_mx_status_cb *cb, void *context,
                    char *err, size_t errlen)
{
	struct store_params q;
	PGresult *res = NULL;

	store_params_init(&q);
	store_param_i64(&q, migration_id);
	if (store_exec(
	        st,
	        "SELECT d.domain, array_to_string(m.mx_hosts, ', '), coalesce(m.mx_resolver, ''),"
	        " m.mx_settle_s, m.mx_interval_s,"
	        " coalesce(to_char(d.checked_at AT TIME ZONE 'UTC', " MX_TS "), ''), d.seen,"
	        " coalesce(d.error, ''), d.matched, d.total,"
	        " coalesce(to_char(d.switched_at AT TIME ZONE 'UTC', " MX_TS "), ''),"
	        " coalesce(to_char((d.switched_at + make_interval(secs => m.mx_settle_s))"
	        "  AT TIME ZONE 'UTC', " MX_TS "), ''),"
	        " coalesce(d.final_pass, 0), coalesce(d.final_by, ''),"
	        " coalesce(to_char(d.final_at AT TIME ZONE 'UTC', " MX_TS "), ''),"
	        " coalesce(to_char(d.done_at AT TIME ZONE 'UTC', " MX_TS "), ''),"
	        " (SELECT count(*) FROM accounts a JOIN pass_accounts pa ON pa.account_id = a.id"
	        "  AND pa.number = d.final_pass WHERE" MX_MEMBER "),"
	        " (SELECT count(*) FROM accounts a JOIN pass_accounts pa ON pa.account_id = a.id"
	        "  AND pa.number = d.final_pass WHERE" MX_MEMBER " AND (" MX_ENDED ")),"
	        " (SELECT count(*) FROM accounts a JOIN pass_accounts pa ON pa.account_id = a.id"
	        "  AND pa.number = d.final_pass WHERE" MX_MEMBER
	        " AND a.pass_done >= d.final_pass),"
	        " (SELECT count(*) FROM accounts a WHERE" MX_MEMBER ")"
	        " FROM mx_domains d JOIN migrations m ON m.id = d.migration_id"
	        " WHERE d.migration_id = $1 AND m.mx_hosts IS NOT NULL ORDER BY d.domain",
	        1, q.values, &res, err, errlen) < 0)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_mx_status row = {
		    .domain = PQgetvalue(res, i, 0),
		    .hosts = PQgetvalue(res, i, 1),
		    .resolver = PQgetvalue(res, i, 2),
		    .settle_s = (int)strtol(PQgetvalue(res, i, 3), NULL, 10),
		    .interval_s = (int)strtol(PQgetvalue(res, i, 4), NULL, 10),
		    .checked_at = PQgetvalue(res, i, 5),
		    .seen = PQgetvalue(res, i, 6),
		    .error = PQgetvalue(res, i, 7),
		    .matched = (int)strtol(PQgetvalue(res, i, 8), NULL, 10),
		    .total = (int)strtol(PQgetvalue(res, i, 9), NULL, 10),
		    .switched_at = PQgetvalue(res, i, 10),
		    .due_at = PQgetvalue(res, i, 11),
		    .final_pass = (int)strtol(PQgetvalue(res, i, 12), NULL, 10),
		    .final_by = PQgetvalue(res, i, 13),
		    .final_at = PQgetvalue(res, i, 14),
		    .done_at = PQgetvalue(res, i, 15),
		    .accounts = strtoll(PQgetvalue(res, i, 16), NULL, 10),
		    .ended = strtoll(PQgetvalue(res, i, 17), NULL, 10),
		    .synced = strtoll(PQgetvalue(res, i, 18), NULL, 10),
		    .domain_accounts = strtoll(PQgetvalue(res, i, 19), NULL, 10),
		};
		cb(&row, context);
	}
	PQclear(res);
	return 0;
}
