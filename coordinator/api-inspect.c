/* The inspections of inspect.h through the API: estimate (dry run), proof
 * of completeness (run, last per account, the migration's summary) and
 * emptying an account's destination, guarded by its confirmation. */
#include "api.h"

#include "account.h"
#include "inspect.h"

#include <stdlib.h>
#include <string.h>

/* The reply for an inspection that returned NULL. */
static void inspect_error(struct api_req *r, enum inspect_code code, const char *err)
{
	switch (code) {
	case INSPECT_NOT_FOUND:
		api_error(r, 404, "not_found", NULL, "%s", err);
		break;
	case INSPECT_CONFIRMATION:
		api_error(r, 400, "confirmation_required", "confirm", "%s", err);
		break;
	case INSPECT_CONFLICT:
		api_error(r, 409, "conflict", NULL, "%s", err);
		break;
	default:
		api_ops_error(r, OPS_FAILED, err);
		break;
	}
}

/* The key the accounts' secrets are sealed with: NULL with a reply set. */
static struct secret_key *inspect_key(struct api_req *r)
{
	struct secret_key *key = NULL;
	char err[512];

	if (account_key_open(r->st, r->cfg->key_file, false, &key, err, sizeof(err)) < 0) {
		api_error(r, 500, "internal", NULL, "%s", err);
		return NULL;
	}
	return key;
}

/* POST estimate and proof: {"accounts": [...]} optional. */
static void inspect_accounts(struct api_req *r, bool proof)
{
	enum inspect_code code = INSPECT_FAILED;
	struct secret_key *key = NULL;
	char err[STORE_ERRLEN] = "";
	int64_t mid, *ids = NULL;
	size_t n = 0;
	json_t *body, *out;

	if (api_migration(r, &mid) < 0 || (body = api_body_object(r, true)) == NULL)
		return;
	if (api_body_accounts(r, body, mid, &ids, &n) == 0 && (key = inspect_key(r)) != NULL) {
		out = proof ? inspect_proof(r->st, key, mid, ids, n, "operator", NULL, err,
		                            sizeof(err), &code)
		            : inspect_estimate(r->st, key, mid, ids, n, err, sizeof(err), &code);
		if (out != NULL)
			api_reply(r, 200, out);
		else
			inspect_error(r, code, err);
	}
	secret_key_destroy(&key);
	free(ids);
	json_decref(body);
}

void api_estimate(struct api_req *r)
{
	inspect_accounts(r, false);
}

void api_proof_run(struct api_req *r)
{
	inspect_accounts(r, true);
}

/* GET .../proof: the last proof of each account proven. */
void api_proofs_summary(struct api_req *r)
{
	enum inspect_code code = INSPECT_FAILED;
	char err[STORE_ERRLEN] = "";
	int64_t mid;
	json_t *out;

	if (api_migration(r, &mid) < 0)
		return;
	out = inspect_proofs_summary(r->st, mid, err, sizeof(err), &code);
	if (out == NULL) {
		inspect_error(r, code, err);
		return;
	}
	/* A list like the others (all of it: one row per account proven). */
	json_object_set_new(out, "next", json_null());
	api_reply(r, 200, out);
}

/* GET .../accounts/{a}/proof */
void api_account_proof(struct api_req *r)
{
	enum inspect_code code = INSPECT_FAILED;
	char err[STORE_ERRLEN] = "";
	int64_t mid, aid;
	json_t *out;

	if (api_migration(r, &mid) < 0 || api_account(r, mid, r->seg[4], &aid) < 0)
		return;
	out = inspect_proof_get(r->st, aid, err, sizeof(err), &code);
	if (out != NULL)
		api_reply(r, 200, out);
	else
		inspect_error(r, code, err[0] != '\0' ? err : "the account has no proof yet");
}

/* POST .../accounts/{a}/empty-destination {"confirm": "<destination login>"} */
void api_account_empty(struct api_req *r)
{
	enum inspect_code code = INSPECT_FAILED;
	struct secret_key *key = NULL;
	char err[STORE_ERRLEN] = "";
	const char *confirm;
	int64_t mid, aid;
	json_t *body, *out;

	if (api_migration(r, &mid) < 0 || api_account(r, mid, r->seg[4], &aid) < 0 ||
	    (body = api_body_object(r, true)) == NULL)
		return;
	confirm = json_string_value(json_object_get(body, "confirm"));
	if (confirm == NULL) {
		api_error(r, 400, "confirmation_required", "confirm",
		          "confirm: give the account's destination login to delete every message"
		          " of its destination");
	} else if ((key = inspect_key(r)) != NULL) {
		out = inspect_empty_destination(r->st, key, mid, aid, confirm, r->actor, err,
		                                sizeof(err), &code);
		if (out != NULL)
			api_reply(r, 200, out);
		else
			inspect_error(r, code, err);
	}
	secret_key_destroy(&key);
	json_decref(body);
}
