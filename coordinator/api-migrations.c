/* /v1/migrations and what hangs off a migration as a whole: import, verify,
 * pause / resume / cancel, servers, errors, report, throughput. */
#include "api.h"

#include "plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_migrations_list(struct api_req *r)
{
	struct store_view_args args = {0};
	json_t *page;

	if (api_page_args(r, &args.limit, &args.after) < 0)
		return;
	page = api_view_page(r, STORE_VIEW_MIGRATIONS, &args, "id");
	if (page != NULL)
		api_reply(r, 200, page);
}

/* The field a plan error names: "plan: destination.port: ..." gives
 * "destination.port", "accounts_csv:3: ..." gives "accounts_csv". */
static void plan_error_field(const char *err, char *field, size_t len)
{
	const char *p = err, *end;

	field[0] = '\0';
	if (strncmp(err, "accounts_csv", 12) == 0) {
		snprintf(field, len, "accounts_csv");
		return;
	}
	if (strncmp(p, "plan: ", 6) == 0 || strncmp(p, "server: ", 8) == 0) {
		p = strchr(p, ' ') + 1;
		end = strchr(p, ':');
		if (end != NULL && memchr(p, ' ', (size_t)(end - p)) == NULL)
			snprintf(field, len, "%.*s", (int)(end - p), p);
	}
}

static void invalid_body(struct api_req *r, const char *err)
{
	char field[128];

	plan_error_field(err, field, sizeof(field));
	api_error(r, 400, "invalid_field", field[0] != '\0' ? field : NULL, "%s", err);
}

/* POST /v1/migrations: a plan with its accounts CSV inline. */
void api_migrations_import(struct api_req *r)
{
	struct plan *plan = NULL;
	struct ops o;
	char err[8192];
	int64_t mid;
	int ret;

	json_t *body;

	/* Not JSON at all is the request's fault as a whole (bad_request);
	 * the plan's keys and CSV lines are checked field by field. */
	if ((body = api_body_object(r, false)) == NULL || api_store(r) == NULL) {
		json_decref(body);
		return;
	}
	json_decref(body);
	if (plan_parse(r->body, r->body_len, &plan, err, sizeof(err)) < 0) {
		invalid_body(r, err);
		return;
	}
	o = api_ops(r);
	ret = ops_import(&o, plan, &mid, err, sizeof(err));
	if (ret == 0)
		api_reply(r, 201,
		          json_pack("{sIsI}", "id", (json_int_t)mid, "accounts",
		                    (json_int_t)plan->naccounts));
	else
		api_ops_error(r, ret, err);
	plan_destroy(&plan);
}

/* One migration as in the list, with its servers and passes. */
void api_migration_get(struct api_req *r)
{
	struct store_view_args args = {0};
	json_t *list, *m, *servers, *passes;

	if (api_migration(r, &args.migration_id) < 0 ||
	    (list = api_view(r, STORE_VIEW_MIGRATIONS, &args)) == NULL)
		return;
	m = json_incref(json_array_get(list, 0));
	json_decref(list);
	servers = api_view(r, STORE_VIEW_SERVERS, &args);
	passes = servers != NULL ? api_view(r, STORE_VIEW_PASSES, &args) : NULL;
	if (m == NULL || servers == NULL || passes == NULL) {
		json_decref(m);
		json_decref(servers);
		if (r->status == 0)
			api_error(r, 404, "not_found", NULL, "no such migration");
		return;
	}
	json_object_set_new(m, "servers", servers);
	json_object_set_new(m, "passes", passes);
	api_reply(r, 200, m);
}

void api_migration_verify(struct api_req *r)
{
	struct verifier_counts counts;
	char err[STORE_ERRLEN] = "";
	struct ops o;
	int64_t mid;
	int ret;

	if (api_migration(r, &mid) < 0)
		return;
	o = api_ops(r);
	ret = ops_verify(&o, mid, NULL, 0, &counts, err, sizeof(err));
	if (ret < 0) {
		api_ops_error(r, ret, err);
		return;
	}
	api_reply(r, 200,
	          json_pack("{sIsIsI}", "verified", (json_int_t)counts.verified, "auth_failed",
	                    (json_int_t)counts.refused, "verify_failed",
	                    (json_int_t)counts.unreachable));
}

/* POST /v1/migrations/{m}/pause|resume|cancel */
void api_migration_control(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";
	size_t changed = 0, unchanged = 0;
	struct ops o;
	int64_t mid;
	int ret;

	if (api_migration(r, &mid) < 0)
		return;
	o = api_ops(r);
	ret = ops_control(&o, mid, 0, r->seg[3], &changed, &unchanged, err, sizeof(err));
	if (ret < 0 && changed == 0) {
		api_ops_error(r, ret, err);
		return;
	}
	api_reply(r, 200,
	          json_pack("{sIsI}", "accounts", (json_int_t)changed, "unchanged",
	                    (json_int_t)unchanged));
}

void api_servers_list(struct api_req *r)
{
	struct store_view_args args = {0};
	json_t *list;

	if (api_migration(r, &args.migration_id) < 0 ||
	    (list = api_view(r, STORE_VIEW_SERVERS, &args)) == NULL)
		return;
	api_reply(r, 200, list);
}

/* PATCH /v1/migrations/{m}/servers/{id} */
void api_server_patch(struct api_req *r)
{
	struct store_view_args args = {0};
	struct store_server_patch patch;
	char err[8192] = "";
	char *end;
	json_t *list;
	int ret;

	if (api_migration(r, &args.migration_id) < 0)
		return;
	args.server_id = strtoll(r->seg[4], &end, 10);
	if (*end != '\0' || args.server_id <= 0) {
		api_error(r, 404, "not_found", NULL, "no server %s", r->seg[4]);
		return;
	}
	if (plan_server_patch_parse(r->body, r->body_len, &patch, err, sizeof(err)) < 0) {
		invalid_body(r, err);
		return;
	}
	ret =
	    store_server_update(r->st, args.migration_id, args.server_id, &patch, err, sizeof(err));
	plan_server_patch_clear(&patch);
	if (ret == 1) {
		api_error(r, 404, "not_found", NULL, "migration %" PRId64 " has no server %" PRId64,
		          args.migration_id, args.server_id);
		return;
	}
	if (ret < 0) {
		/* An unknown time zone is the caller's: PostgreSQL names it. */
		if (strstr(err, "time zone") != NULL)
			api_error(r, 400, "invalid_field", "blackouts", "%s", err);
		else
			api_ops_error(r, OPS_FAILED, err);
		return;
	}
	list = api_view(r, STORE_VIEW_SERVERS, &args);
	if (list != NULL) {
		api_reply(r, 200, json_incref(json_array_get(list, 0)));
		json_decref(list);
	}
}

/* GET /v1/migrations/{m}/errors?account=&limit&after */
void api_errors_list(struct api_req *r)
{
	struct store_view_args args = {0};
	const char *account;
	json_t *page;

	if (api_migration(r, &args.migration_id) < 0 ||
	    api_page_args(r, &args.limit, &args.after) < 0)
		return;
	account = api_query(r, "account");
	if (account != NULL && account[0] != '\0' &&
	    api_account(r, args.migration_id, account, &args.account_id) < 0)
		return;
	page = api_view_page(r, STORE_VIEW_ERRORS, &args, "id");
	if (page != NULL)
		api_reply(r, 200, page);
}

/* A CSV field, quoted when it must be (RFC 4180). */
static void csv_field(char **buf, size_t *len, size_t *cap, json_t *v, bool last)
{
	char num[32];
	const char *s = "";

	if (json_is_string(v))
		s = json_string_value(v);
	else if (json_is_integer(v))
		s = num, snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		s = num, snprintf(num, sizeof(num), "%.0f", json_real_value(v));
	if (strpbrk(s, ",\"\r\n") != NULL) {
		api_buf_printf(buf, len, cap, "\"");
		for (; *s != '\0'; s++)
			api_buf_printf(buf, len, cap, *s == '"' ? "\"\"" : "%c", *s);
		api_buf_printf(buf, len, cap, "\"");
	} else {
		api_buf_printf(buf, len, cap, "%s", s);
	}
	api_buf_printf(buf, len, cap, last ? "\r\n" : ",");
}

/* The report as CSV: one row per account and folder (an account without
 * folders yet has one row with empty folder columns). */
static char *report_csv(json_t *accounts, size_t *len_r)
{
	static const char *const acct_cols[] = {"id",          "source_login", "destination_login",
	                                        "state",       "pass_done",    "started_at",
	                                        "finished_at", "errors"};
	static const char *const folder_cols[] = {
	    "source_name", "destination_name", "source_messages", "destination_messages",
	    "copied",      "matched",          "failed",          "error"};
	char *buf = NULL;
	size_t len = 0, cap = 0, i, j;
	json_t *a, *f;

	api_buf_printf(&buf, &len, &cap,
	               "account_id,source_login,destination_login,state,pass_done,started_at,"
	               "finished_at,errors,folder,destination_folder,source_messages,"
	               "destination_messages,copied,matched,failed,folder_error\r\n");
	json_array_foreach(accounts, i, a)
	{
		json_t *folders = json_object_get(a, "folders");
		size_t n = json_array_size(folders);

		for (j = 0; j < (n > 0 ? n : 1); j++) {
			f = json_array_get(folders, j);
			for (size_t c = 0; c < 8; c++)
				csv_field(&buf, &len, &cap, json_object_get(a, acct_cols[c]),
				          false);
			for (size_t c = 0; c < 8; c++)
				csv_field(&buf, &len, &cap,
				          f != NULL ? json_object_get(f, folder_cols[c]) : NULL,
				          c == 7);
		}
	}
	*len_r = len;
	return buf;
}

/* GET /v1/migrations/{m}/report?format=json|csv */
void api_report(struct api_req *r)
{
	struct store_view_args args = {0};
	const char *format = api_query(r, "format");
	json_t *accounts, *m;
	char *csv;
	size_t len = 0;

	if (format == NULL)
		format = "json";
	if (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
		api_error(r, 400, "invalid_field", "format", "format: json or csv");
		return;
	}
	if (api_migration(r, &args.migration_id) < 0 ||
	    (accounts = api_view(r, STORE_VIEW_REPORT, &args)) == NULL)
		return;
	if (strcmp(format, "csv") == 0) {
		csv = report_csv(accounts, &len);
		json_decref(accounts);
		if (csv == NULL)
			api_error(r, 500, "internal", NULL, "out of memory");
		else
			api_reply_text(r, 200, "text/csv; charset=utf-8", csv, len);
		return;
	}
	m = api_view(r, STORE_VIEW_MIGRATIONS, &args);
	if (m == NULL) {
		json_decref(accounts);
		return;
	}
	api_reply(r, 200,
	          json_pack("{sOso}", "migration", json_array_get(m, 0), "accounts", accounts));
	json_decref(m);
}

/* GET /v1/migrations/{m}/throughput?minutes=60 */
void api_throughput(struct api_req *r)
{
	struct store_view_args args = {0};
	json_t *list;
	long minutes;

	if (api_query_int(r, "minutes", 1, 10080, 60, &minutes) < 0 ||
	    api_migration(r, &args.migration_id) < 0)
		return;
	args.minutes = (int)minutes;
	list = api_view(r, STORE_VIEW_THROUGHPUT, &args);
	if (list != NULL)
		api_reply(r, 200, list);
}
