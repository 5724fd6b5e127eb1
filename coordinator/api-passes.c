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

/* A time of the store's rows: "" is null. */
static json_t *time_json(const char *t)
{
	return t[0] != '\0' ? json_string(t) : json_null();
}

struct passes_ctx {
	json_t *list;
	int only; /* one pass, or 0 */
};

static void pass_row(const struct store_pass_row *p, void *context)
{
	struct passes_ctx *c = context;
	json_t *states;

	if (c->only > 0 && p->number != c->only)
		return;
	states = json_loads(p->states, 0, NULL);
	json_array_append_new(
	    c->list,
	    json_pack("{sisssIsssosososIsIsIsIsIsI}", "number", p->number, "kind", p->kind,
	              "accounts", (json_int_t)p->accounts, "started_at", p->started_at,
	              "finished_at", time_json(p->finished_at), "states",
	              states != NULL ? states : json_object(), "seconds",
	              p->seconds >= 0 ? json_real(p->seconds) : json_null(), "messages",
	              (json_int_t)p->messages, "bytes", (json_int_t)p->bytes, "failed",
	              (json_int_t)p->failed, "synced", (json_int_t)p->synced, "matched",
	              (json_int_t)p->matched, "failed_folders", (json_int_t)p->failed_folders));
}

json_t *api_passes(struct api_req *r, int64_t mid, int pass)
{
	struct passes_ctx c = {.list = json_array(), .only = pass};
	char err[STORE_ERRLEN] = "";

	if (api_store(r) == NULL) {
		json_decref(c.list);
		return NULL;
	}
	/* The rows `passes` prints (lib/store/pass.c), rendered as JSON. */
	if (store_passes(r->st, mid, pass_row, &c, err, sizeof(err)) < 0) {
		json_decref(c.list);
		api_ops_error(r, OPS_FAILED, err);
		return NULL;
	}
	return c.list;
}

void api_passes_list(struct api_req *r)
{
	int64_t mid;
	json_t *list;

	if (api_migration(r, &mid) < 0 || (list = api_passes(r, mid, 0)) == NULL)
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

static void pass_account_row(const struct store_pass_account_row *a, void *context)
{
	json_array_append_new(
	    context,
	    json_pack("{sIsssssisososososIsIsIsIsIsI}", "account_id", (json_int_t)a->account_id,
	              "account", a->src_login, "state", a->state, "runs", a->runs, "queued_at",
	              time_json(a->queued_at), "started_at", time_json(a->started_at),
	              "finished_at", time_json(a->finished_at), "seconds",
	              a->seconds >= 0 ? json_real(a->seconds) : json_null(), "folders",
	              (json_int_t)a->folders, "messages", (json_int_t)a->messages, "bytes",
	              (json_int_t)a->bytes, "failed", (json_int_t)a->failed, "matched",
	              (json_int_t)a->matched, "failed_folders", (json_int_t)a->failed_folders));
}

/* The pass with its accounts (as `passes M N` prints them): NULL with a
 * reply set. */
static json_t *pass_object(struct api_req *r, int64_t mid, int pass)
{
	char err[STORE_ERRLEN] = "";
	json_t *list, *p, *accounts;

	list = api_passes(r, mid, pass);
	if (list == NULL)
		return NULL;
	p = json_incref(json_array_get(list, 0));
	json_decref(list);
	if (p == NULL) {
		api_error(r, 404, "not_found", NULL,
		          "pass %d of migration %" PRId64 " does not exist", pass, mid);
		return NULL;
	}
	accounts = json_array();
	if (store_pass_accounts(r->st, mid, pass, pass_account_row, accounts, err, sizeof(err)) <
	    0) {
		json_decref(accounts);
		json_decref(p);
		api_ops_error(r, OPS_FAILED, err);
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
