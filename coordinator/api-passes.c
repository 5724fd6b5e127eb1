/* /v1/migrations/{m}/passes: list, start, one pass with its accounts, the
 * long-poll wait and the retry of a pass's failed accounts. */
#include "api.h"

#include "store-pass.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The longest a wait answers after (a proxy between may cut sooner). */
#define WAIT_MAX_S 300

void api_passes_list(struct api_req *r)
{
	struct store_view_args args = {0};
	json_t *list;

	if (api_migration(r, &args.migration_id) < 0 ||
	    (list = api_view(r, STORE_VIEW_PASSES, &args)) == NULL)
		return;
	api_reply(r, 200, json_pack("{soso}", "items", list, "next", json_null()));
}

/* POST {"kind": "bulk"|"delta"|"final", "accounts": [...]} */
void api_passes_start(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";
	int64_t mid, *ids = NULL;
	size_t n = 0, queued = 0;
	const char *kind;
	json_t *body;
	struct ops o;
	int pass = 0, ret;

	if (api_migration(r, &mid) < 0 || (body = api_body_object(r, false)) == NULL)
		return;
	kind = json_string_value(json_object_get(body, "kind"));
	if (kind == NULL || (strcmp(kind, "bulk") != 0 && strcmp(kind, "delta") != 0 &&
	                     strcmp(kind, "final") != 0)) {
		api_error(r, 400, "invalid_field", "kind",
		          "kind: \"bulk\", \"delta\" or \"final\"");
		goto out;
	}
	if (api_body_accounts(r, body, mid, &ids, &n) < 0)
		goto out;
	o = api_ops(r);
	ret = ops_pass_next(&o, mid, kind, &pass, err, sizeof(err));
	if (ret == 0)
		ret = ops_pass_queue(&o, mid, pass, kind, ids, n, &queued, err, sizeof(err));
	if (ret < 0 && queued == 0)
		api_ops_error(r, ret, err);
	else
		api_reply(r, 201,
		          json_pack("{sisI}", "number", pass, "accounts", (json_int_t)queued));
out:
	free(ids);
	json_decref(body);
}

/* The pass of seg[4] with its accounts: NULL with a reply set. */
static json_t *pass_object(struct api_req *r, int64_t mid, int pass)
{
	struct store_view_args args = {.migration_id = mid, .pass = pass};
	json_t *list, *p, *accounts;

	list = api_view(r, STORE_VIEW_PASSES, &args);
	if (list == NULL)
		return NULL;
	p = json_incref(json_array_get(list, 0));
	json_decref(list);
	if (p == NULL) {
		api_error(r, 404, "not_found", NULL,
		          "pass %d of migration %" PRId64 " does not exist", pass, mid);
		return NULL;
	}
	accounts = api_view(r, STORE_VIEW_PASS_ACCOUNTS, &args);
	if (accounts == NULL) {
		json_decref(p);
		return NULL;
	}
	json_object_set_new(p, "account_rows", accounts);
	return p;
}

static int pass_arg(struct api_req *r, int *pass_r)
{
	char *end;
	long v = strtol(r->seg[4], &end, 10);

	if (*end != '\0' || v < 1 || v > 100000) {
		api_error(r, 404, "not_found", NULL, "no pass %s", r->seg[4]);
		return -1;
	}
	*pass_r = (int)v;
	return 0;
}

void api_pass_get(struct api_req *r)
{
	int64_t mid;
	int pass;
	json_t *p;

	if (api_migration(r, &mid) < 0 || pass_arg(r, &pass) < 0 ||
	    (p = pass_object(r, mid, pass)) == NULL)
		return;
	api_reply(r, 200, p);
}

/* GET .../passes/{n}/wait?timeout=SECS: answers once every account
 * scheduled for the pass ended (synced, refused, cancelled, failed with no
 * retry left), or at the timeout, with "ended" saying which.  The store
 * connection goes back to the pool between looks: a long poll holds a
 * thread, not a database connection. */
void api_pass_wait(struct api_req *r)
{
	struct ops_pass_tally t = {0};
	char err[STORE_ERRLEN] = "";
	struct ops o;
	long timeout;
	time_t deadline;
	int64_t mid;
	int pass;
	json_t *p;

	if (api_query_int(r, "timeout", 0, WAIT_MAX_S, 30, &timeout) < 0 ||
	    api_migration(r, &mid) < 0 || pass_arg(r, &pass) < 0 ||
	    (p = pass_object(r, mid, pass)) == NULL)
		return;
	json_decref(p);
	deadline = time(NULL) + timeout;
	for (;;) {
		if (api_store(r) == NULL)
			return;
		o = api_ops(r);
		if (ops_pass_tally(&o, mid, pass, &t, err, sizeof(err)) < 0) {
			api_ops_error(r, OPS_FAILED, err);
			return;
		}
		if (t.ended == t.total || time(NULL) >= deadline)
			break;
		api_pool_give(r->pool, &r->st);
		usleep(500 * 1000);
	}
	p = pass_object(r, mid, pass);
	if (p == NULL)
		return;
	json_object_set_new(p, "ended", json_boolean(t.ended == t.total));
	json_object_set_new(p, "scheduled", json_integer(t.total));
	json_object_set_new(p, "synced", json_integer(t.synced));
	json_object_set_new(p, "ended_accounts", json_integer(t.ended));
	api_reply(r, 200, p);
}

/* POST .../passes/{n}/retry {"accounts": [...]} */
void api_pass_retry(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";
	int64_t mid, *ids = NULL;
	size_t n = 0, requeued = 0;
	json_t *body, *p;
	struct ops o;
	int pass, ret;

	if (api_migration(r, &mid) < 0 || pass_arg(r, &pass) < 0 ||
	    (body = api_body_object(r, true)) == NULL)
		return;
	p = pass_object(r, mid, pass);
	if (p == NULL || api_body_accounts(r, body, mid, &ids, &n) < 0)
		goto out;
	o = api_ops(r);
	ret = ops_retry(&o, mid, pass, ids, n, &requeued, err, sizeof(err));
	if (ret < 0 && requeued == 0)
		api_ops_error(r, ret, err);
	else
		api_reply(r, 200, json_pack("{sI}", "requeued", (json_int_t)requeued));
out:
	json_decref(p);
	free(ids);
	json_decref(body);
}
