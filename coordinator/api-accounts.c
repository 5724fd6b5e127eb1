/* /v1/migrations/{m}/accounts: the list with filters, accounts added as
 * CSV, one account's detail, remove, a new password, pause / resume /
 * cancel of one account. */
#include "api.h"

#include "plan.h"
#include "store-pass.h"
#include "store-proof.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How long a remove waits for a worker copying the account to stop. */
#define REMOVE_WAIT_S 60

static json_t *text_or_null(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

/* One row of `status` as the API shows it. */
static void account_row(const struct store_account_status *a, void *context)
{
	json_t *progress = json_null();

	if (strcmp(a->state, "running") == 0 && a->live_messages >= 0)
		progress =
		    json_pack("{sIsIsoso}", "messages", (json_int_t)a->live_messages, "bytes",
		              (json_int_t)a->live_bytes, "folder", text_or_null(a->live_folder),
		              "worker", text_or_null(a->live_worker));
	json_array_append_new(
	    context,
	    json_pack("{sIsssssssisisIsIsIsIsIsIsIsosssoso}", "id", (json_int_t)a->id,
	              "source_login", a->src_login, "destination_login", a->dst_login, "state",
	              a->state, "pass", a->pass, "pass_done", a->pass_done, "folders",
	              (json_int_t)a->folders, "messages", (json_int_t)a->messages, "bytes",
	              (json_int_t)a->bytes, "matched", (json_int_t)a->matched, "failed_folders",
	              (json_int_t)a->failed_folders, "filtered", (json_int_t)a->filtered, "errors",
	              (json_int_t)a->failed_messages, "last_error", text_or_null(a->last_error),
	              "updated_at", a->updated_at, "retry_at", text_or_null(a->retry_at),
	              "progress", progress));
}

/* The accounts as `status` shows them, filtered: NULL with a reply set. */
static json_t *accounts_rows(struct api_req *r, int64_t mid, const struct store_status_filter *f)
{
	char err[STORE_ERRLEN] = "";
	json_t *rows = json_array();

	if (api_store(r) == NULL ||
	    store_migration_status_page(r->st, mid, f, account_row, rows, err, sizeof(err)) < 0) {
		if (r->status == 0)
			api_ops_error(r, OPS_FAILED, err);
		json_decref(rows);
		return NULL;
	}
	return rows;
}

/* GET ?state=&q=&limit&after */
void api_accounts_list(struct api_req *r)
{
	struct store_status_filter f = {0};
	json_t *rows, *next = json_null();
	int64_t mid;
	int limit;

	if (api_migration(r, &mid) < 0 || api_page_args(r, &limit, &f.after) < 0)
		return;
	f.state = api_query(r, "state");
	f.q = api_query(r, "q");
	if (f.state != NULL && f.state[0] == '\0')
		f.state = NULL;
	if (f.q != NULL && f.q[0] == '\0')
		f.q = NULL;
	/* One more than asked: there is a next page if it comes. */
	f.limit = limit + 1;
	rows = accounts_rows(r, mid, &f);
	if (rows == NULL)
		return;
	if (json_array_size(rows) > (size_t)limit) {
		json_array_remove(rows, (size_t)limit);
		next = json_sprintf("%" JSON_INTEGER_FORMAT,
		                    json_integer_value(json_object_get(
		                        json_array_get(rows, (size_t)limit - 1), "id")));
	}
	api_reply(r, 200, json_pack("{soso}", "items", rows, "next", next));
}

/* POST text/csv: the plan's CSV columns; the accounts are verified and
 * join the current pass, as `add` does. */
void api_accounts_add(struct api_req *r)
{
	struct verifier_counts counts;
	struct plan *plan = NULL;
	int64_t mid, *ids = NULL;
	size_t joined = 0;
	char err[8192] = "";
	struct ops o;
	int pass = 0, ret;

	if (api_migration(r, &mid) < 0)
		return;
	if (r->content_type == NULL || strncasecmp(r->content_type, "text/csv", 8) != 0) {
		api_error(r, 400, "bad_request", NULL,
		          "send the accounts as a CSV body with Content-Type: text/csv");
		return;
	}
	o = api_ops(r);
	ret = ops_migration_plan(&o, mid, &plan, err, sizeof(err));
	if (ret < 0) {
		api_ops_error(r, ret, err);
		return;
	}
	if (plan_accounts_parse_text("accounts_csv", r->body, r->body_len, plan, err, sizeof(err)) <
	    0) {
		api_error(r, 400, "invalid_field", "accounts_csv", "%s", err);
		goto out;
	}
	ret = ops_accounts_add(&o, mid, plan, &ids, err, sizeof(err));
	if (ret == 0)
		ret = ops_verify_join(&o, mid, ids, plan->naccounts, &counts, &pass, &joined, err,
		                      sizeof(err));
	if (ret < 0) {
		api_ops_error(r, ret, err);
		goto out;
	}
	api_reply(r, 201,
	          json_pack("{sIsIsIsIsI}", "added", (json_int_t)plan->naccounts, "verified",
	                    (json_int_t)counts.verified, "auth_failed", (json_int_t)counts.refused,
	                    "verify_failed", (json_int_t)counts.unreachable, "joined",
	                    (json_int_t)joined));
out:
	free(ids);
	plan_destroy(&plan);
}

/* A message copied without keywords the destination refused. */
static void keywords_row(int64_t account_id, const char *src_name, uint32_t src_uid,
                         const char *keywords, const char *error, void *context)
{
	(void)account_id;
	json_array_append_new(context,
	                      json_pack("{sssIssss}", "folder", src_name, "uid",
	                                (json_int_t)src_uid, "keywords", keywords, "error", error));
}

void api_account_get(struct api_req *r)
{
	static const struct {
		enum store_view view;
		const char *key;
	} parts[] = {{STORE_VIEW_ACCOUNT_FOLDERS, "folders"},
	             {STORE_VIEW_ACCOUNT_PASSES, "passes"},
	             {STORE_VIEW_ERRORS, "errors"},
	             {STORE_VIEW_ACCOUNT_HISTORY, "history"}};
	struct store_view_args args = {0};
	struct store_status_filter f = {0};
	char err[STORE_ERRLEN] = "";
	json_t *list, *a, *part;

	if (api_migration(r, &args.migration_id) < 0 ||
	    api_account(r, args.migration_id, r->seg[4], &args.account_id) < 0)
		return;
	f.account_id = args.account_id;
	if ((list = accounts_rows(r, args.migration_id, &f)) == NULL)
		return;
	a = json_incref(json_array_get(list, 0));
	json_decref(list);
	if (a == NULL) {
		api_error(r, 404, "not_found", NULL, "no such account");
		return;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		part = api_view(r, parts[i].view, &args);
		if (part == NULL) {
			json_decref(a);
			return;
		}
		json_object_set_new(a, parts[i].key, part);
	}
	part = json_array();
	json_object_set_new(a, "keywords_dropped", part);
	if (store_keywords_dropped_each(r->st, args.migration_id, args.account_id, keywords_row,
	                                part, err, sizeof(err)) < 0) {
		json_decref(a);
		api_ops_error(r, OPS_FAILED, err);
		return;
	}
	api_reply(r, 200, a);
}

void api_account_delete(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";
	int64_t mid, aid;
	struct ops o;
	int ret;

	if (api_migration(r, &mid) < 0 || api_account(r, mid, r->seg[4], &aid) < 0)
		return;
	o = api_ops(r);
	ret = ops_remove(&o, mid, aid, REMOVE_WAIT_S, err, sizeof(err));
	if (ret < 0)
		api_ops_error(r, ret, err);
	else
		api_reply(r, 200, json_pack("{sb}", "removed", 1));
}

/* PUT {"side": "source"|"destination"|"both", "password": "..."}: the
 * account is verified again and joins the current pass if it passes. */
void api_account_password(struct api_req *r)
{
	struct verifier_counts counts;
	char err[STORE_ERRLEN] = "";
	const char *side, *pw;
	size_t joined = 0;
	int64_t mid, aid;
	json_t *body;
	struct ops o;
	int pass = 0, ret;

	if (api_migration(r, &mid) < 0 || api_account(r, mid, r->seg[4], &aid) < 0 ||
	    (body = api_body_object(r, false)) == NULL)
		return;
	side = json_string_value(json_object_get(body, "side"));
	pw = json_string_value(json_object_get(body, "password"));
	if (side == NULL || (strcmp(side, "source") != 0 && strcmp(side, "destination") != 0 &&
	                     strcmp(side, "both") != 0))
		api_error(r, 400, "invalid_field", "side",
		          "side: \"source\", \"destination\" or \"both\"");
	else if (pw == NULL || pw[0] == '\0')
		api_error(r, 400, "invalid_field", "password", "password: a non-empty string");
	else {
		o = api_ops(r);
		ret = ops_passwd(&o, mid, aid, side, pw, &counts, &pass, &joined, err, sizeof(err));
		if (ret < 0)
			api_ops_error(r, ret, err);
		else
			api_reply(r, 200,
			          json_pack("{sssbsIsi}", "state",
			                    counts.verified > 0  ? "verified"
			                    : counts.refused > 0 ? "auth_failed"
			                                         : "verify_failed",
			                    "verified", counts.verified > 0, "joined",
			                    (json_int_t)joined, "pass", pass));
	}
	/* The password is in the parsed body too. */
	if (pw != NULL)
		explicit_bzero((char *)pw, strlen(pw));
	json_decref(body);
}

/* POST .../accounts/{a}/pause|resume|cancel */
void api_account_control(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";
	size_t changed = 0, unchanged = 0;
	int64_t mid, aid;
	struct ops o;
	int ret;

	if (api_migration(r, &mid) < 0 || api_account(r, mid, r->seg[4], &aid) < 0)
		return;
	o = api_ops(r);
	ret = ops_control(&o, mid, aid, r->seg[5], &changed, &unchanged, err, sizeof(err));
	if (ret < 0 && changed == 0)
		api_ops_error(r, ret, err);
	else
		api_reply(r, 200,
		          json_pack("{sIsI}", "accounts", (json_int_t)changed, "unchanged",
		                    (json_int_t)unchanged));
}
