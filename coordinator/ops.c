/* The operator's actions (ops.h): what the commands and the HTTP API both
 * do, computed once. */
#include "ops.h"

#include "account.h"
#include "account_state.h"
#include "log.h"
#include "queue.h"
#include "scheduler.h"
#include "secret.h"
#include "store-account.h"
#include "store-pass.h"
#include "store-plan.h"
#include "store-schedule.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Seconds after which a job published but not taken is published again. */
#define OPS_REPUBLISH_S 300

/* Publishes what the budgets and the workers' room allow now; without
 * brokers the scheduler does it at its next step. */
static int ops_publish(const struct ops *o, int64_t mid, char *err, size_t errlen)
{
	struct queue_producer *producer = NULL;
	size_t count = 0;
	int ret = OPS_FAILED;

	if (o->brokers == NULL)
		return 0;
	if (queue_producer_create(o->brokers, &producer, err, errlen) == 0 &&
	    scheduler_publish_due(o->st, producer, mid, 100000, OPS_REPUBLISH_S, &count, err,
	                          errlen) == 0)
		ret = 0;
	queue_producer_destroy(&producer);
	return ret;
}

/* Seals the passwords of plan's accounts into rows (their secrets are the
 * caller's to free). */
static int seal_rows(const struct ops *o, const struct plan *plan, bool with_masters,
                     struct store_new_account **rows_r, char *err, size_t errlen)
{
	struct store_new_account *rows = NULL;
	struct secret_key *key = NULL;
	int ret = OPS_FAILED;

	*rows_r = NULL;
	if (account_key_open(o->st, o->key_file, true, &key, err, errlen) < 0)
		return OPS_FAILED;
	rows = calloc(plan->naccounts + 1, sizeof(*rows));
	if (rows == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < plan->naccounts; i++) {
		const struct plan_account *a = &plan->accounts[i];
		struct store_new_account *r = &rows[i];
		/* With a master user, the secret is the master's password. */
		const char *src_master =
		    with_masters ? plan->src_master_passwords[a->source] : NULL;
		const char *dst_master = with_masters ? plan->dst_master_password : NULL;
		const char *src_pw = src_master != NULL ? src_master : a->src_password;
		const char *dst_pw = dst_master != NULL        ? dst_master
		                     : a->dst_password != NULL ? a->dst_password
		                                               : a->src_password;
		unsigned char *s = NULL, *d = NULL;
		char why[256];

		if (!with_masters && plan->srcs[a->source].master_user != NULL) {
			snprintf(err, errlen,
			         "line %d: source profile %s logs in as a master user: its"
			         " accounts are added with the plan",
			         a->line, plan->srcs[a->source].name);
			ret = OPS_INVALID;
			goto out;
		}
		if (account_secret_seal(key, ACCOUNT_SRC, a->src_login, src_pw, &s,
		                        &r->src_secret_len, why, sizeof(why)) < 0 ||
		    account_secret_seal(key, ACCOUNT_DST, a->dst_login, dst_pw, &d,
		                        &r->dst_secret_len, why, sizeof(why)) < 0) {
			free(s);
			snprintf(err, errlen, "account %s: %s", a->src_login, why);
			goto out;
		}
		r->src_secret = s;
		r->dst_secret = d;
		r->src_login = a->src_login;
		r->dst_login = a->dst_login;
		r->priority = a->priority;
		r->folder_rules = a->folder_rules;
		r->source = a->source;
		r->line = a->line;
	}
	*rows_r = rows;
	rows = NULL;
	ret = 0;
out:
	if (rows != NULL) {
		for (size_t i = 0; i < plan->naccounts; i++) {
			free((void *)rows[i].src_secret);
			free((void *)rows[i].dst_secret);
		}
		free(rows);
	}
	secret_key_destroy(&key);
	return ret;
}

static void rows_free(struct store_new_account *rows, size_t n)
{
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free((void *)rows[i].src_secret);
		free((void *)rows[i].dst_secret);
	}
	free(rows);
}

int ops_import(const struct ops *o, const struct plan *plan, int64_t *mid_r, char *err,
               size_t errlen)
{
	struct store_new_account *rows = NULL;
	int ret;

	ret = seal_rows(o, plan, true, &rows, err, errlen);
	if (ret < 0)
		return ret;
	if (store_migration_import(o->st, plan->name, plan->srcs, plan->nsrcs, &plan->dst, rows,
	                           plan->naccounts, mid_r, err, errlen) < 0)
		ret = OPS_INVALID; /* a duplicate, an unknown time zone: named */
	else
		log_info("migration %" PRId64 " (%s): %zu accounts imported", *mid_r, plan->name,
		         plan->naccounts);
	rows_free(rows, plan->naccounts);
	return ret;
}

int ops_migration_plan(const struct ops *o, int64_t mid, struct plan **plan_r, char *err,
                       size_t errlen)
{
	struct plan *plan = calloc(1, sizeof(*plan));

	*plan_r = NULL;
	if (plan == NULL) {
		snprintf(err, errlen, "out of memory");
		return OPS_FAILED;
	}
	/* The CSV names source profiles: the migration's. */
	if (store_migration_sources(o->st, mid, &plan->srcs, &plan->nsrcs, err, errlen) < 0) {
		plan_destroy(&plan);
		return OPS_FAILED;
	}
	if (plan->nsrcs == 0) {
		snprintf(err, errlen, "no migration %" PRId64, mid);
		plan_destroy(&plan);
		return OPS_NOT_FOUND;
	}
	*plan_r = plan;
	return 0;
}

int ops_accounts_add(const struct ops *o, int64_t mid, const struct plan *plan, int64_t **ids_r,
                     char *err, size_t errlen)
{
	struct store_new_account *rows = NULL;
	int64_t *ids = NULL;
	int ret;

	*ids_r = NULL;
	ret = seal_rows(o, plan, false, &rows, err, errlen);
	if (ret < 0)
		return ret;
	ids = calloc(plan->naccounts + 1, sizeof(*ids));
	if (ids == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = OPS_FAILED;
		goto out;
	}
	if (store_accounts_add(o->st, mid, rows, plan->naccounts, err, errlen) < 0) {
		ret = OPS_INVALID;
		goto out;
	}
	for (size_t i = 0; i < plan->naccounts; i++) {
		if (store_account_find(o->st, mid, plan->accounts[i].src_login, &ids[i], err,
		                       errlen) < 0) {
			ret = OPS_FAILED;
			goto out;
		}
	}
	log_info("migration %" PRId64 ": %zu accounts added", mid, plan->naccounts);
	*ids_r = ids;
	ids = NULL;
out:
	free(ids);
	rows_free(rows, plan->naccounts);
	return ret;
}

int ops_verify(const struct ops *o, int64_t mid, const int64_t *ids, size_t n,
               struct verifier_counts *counts_r, char *err, size_t errlen)
{
	struct secret_key *key = NULL;
	int r;

	*counts_r = (struct verifier_counts){0};
	if (account_key_open(o->st, o->key_file, false, &key, err, errlen) < 0)
		return OPS_FAILED;
	/* Logins at once: within Dovecot's default per-user-and-IP limit. */
	r = verifier_run(o->db, key, mid, ids, n, 8, o->actor, counts_r);
	secret_key_destroy(&key);
	if (r < 0) {
		snprintf(err, errlen, "verification could not run (see the log)");
		return OPS_FAILED;
	}
	return 0;
}

int ops_verify_join(const struct ops *o, int64_t mid, const int64_t *ids, size_t n,
                    struct verifier_counts *counts_r, int *pass_r, size_t *joined_r, char *err,
                    size_t errlen)
{
	int last = 0, ret;

	*pass_r = 0;
	*joined_r = 0;
	ret = ops_verify(o, mid, ids, n, counts_r, err, errlen);
	if (ret < 0)
		return ret;
	if (store_pass_last(o->st, mid, &last, err, errlen) < 0)
		return OPS_FAILED;
	*pass_r = last;
	if (last == 0)
		return 0;
	if (store_pass_start(o->st, mid, last, last == 1 ? "bulk" : "delta", ids, n, joined_r, err,
	                     errlen) < 0)
		return OPS_FAILED;
	return *joined_r > 0 ? ops_publish(o, mid, err, errlen) : 0;
}

int ops_passwd(const struct ops *o, int64_t mid, int64_t account_id, const char *side,
               const char *password, struct verifier_counts *counts_r, int *pass_r,
               size_t *joined_r, char *err, size_t errlen)
{
	struct store_account acct = {0};
	struct secret_key *key = NULL;
	unsigned char *secret = NULL;
	size_t secret_len = 0;
	int ret = OPS_FAILED;

	if (strcmp(side, "source") != 0 && strcmp(side, "destination") != 0 &&
	    strcmp(side, "both") != 0) {
		snprintf(err, errlen, "the side is source, destination or both, not %s", side);
		return OPS_INVALID;
	}
	if (password[0] == '\0') {
		snprintf(err, errlen, "the password is empty");
		return OPS_INVALID;
	}
	if (store_account_get(o->st, account_id, &acct, err, errlen) < 0)
		return OPS_FAILED;
	if (acct.migration_id != mid) {
		snprintf(err, errlen, "no account %" PRId64 " in migration %" PRId64, account_id,
		         mid);
		ret = OPS_NOT_FOUND;
		goto out;
	}
	if (account_key_open(o->st, o->key_file, true, &key, err, errlen) < 0)
		goto out;
	for (int i = 0; i < 2; i++) {
		const char *s = i == 0 ? "source" : "destination";
		char why[256];

		if (strcmp(side, "both") != 0 && strcmp(side, s) != 0)
			continue;
		free(secret);
		secret = NULL;
		if (account_secret_seal(key, i == 0 ? ACCOUNT_SRC : ACCOUNT_DST,
		                        i == 0 ? acct.src_login : acct.dst_login, password, &secret,
		                        &secret_len, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "account %s: %s", acct.src_login, why);
			goto out;
		}
		if (store_account_secret(o->st, account_id, s, secret, secret_len, err, errlen) < 0)
			goto out;
	}
	log_info("account %" PRId64 " (%s): %s updated", account_id, acct.src_login,
	         strcmp(side, "both") == 0     ? "source and destination passwords"
	         : strcmp(side, "source") == 0 ? "source password"
	                                       : "destination password");
	ret = ops_verify_join(o, mid, &account_id, 1, counts_r, pass_r, joined_r, err, errlen);
out:
	free(secret);
	secret_key_destroy(&key);
	store_account_clear(&acct);
	return ret;
}

int ops_remove(const struct ops *o, int64_t mid, int64_t account_id, int wait_s, char *err,
               size_t errlen)
{
	struct store_job *jobs = NULL;
	size_t njobs = 0, changed = 0, unchanged = 0;
	char owner[128] = "";

	/* An account is removed only once no worker copies it: a run still
	 * appending after its rows are gone would leave messages no checkpoint
	 * knows.  So: cancel it, wait for its lease to be released, delete. */
	if (store_accounts_control(o->st, mid, account_id, "cancel", &jobs, &njobs, &changed,
	                           &unchanged, err, errlen) < 0)
		return OPS_FAILED;
	free(jobs);
	for (int i = 0; i <= wait_s * 2; i++) {
		if (store_account_lease_holder(o->st, account_id, owner, sizeof(owner), err,
		                               errlen) < 0)
			return OPS_FAILED;
		if (owner[0] == '\0')
			break;
		if (i == 0)
			log_info("account %" PRId64 " is being copied by worker %s: cancelled,"
			         " waiting for it to stop (at most %d s)",
			         account_id, owner, wait_s);
		usleep(500 * 1000);
	}
	if (owner[0] != '\0') {
		snprintf(err, errlen,
		         "account %" PRId64 ": worker %s still holds its lease after %d s; it is"
		         " cancelled but not removed: remove it again once it has stopped",
		         account_id, owner, wait_s);
		return OPS_CONFLICT;
	}
	if (store_account_remove(o->st, account_id, err, errlen) < 0)
		return OPS_FAILED;
	log_info("migration %" PRId64 ": account %" PRId64 " removed; what was copied stays on"
	         " the destination",
	         mid, account_id);
	return 0;
}

int ops_control(const struct ops *o, int64_t mid, int64_t account_id, const char *action,
                size_t *changed_r, size_t *unchanged_r, char *err, size_t errlen)
{
	struct store_job *jobs = NULL;
	size_t count = 0;

	if (store_accounts_control(o->st, mid, account_id, action, &jobs, &count, changed_r,
	                           unchanged_r, err, errlen) < 0)
		return OPS_FAILED;
	free(jobs);
	return count > 0 ? ops_publish(o, mid, err, errlen) : 0;
}

int ops_pass_queue(const struct ops *o, int64_t mid, int pass, const char *kind, const int64_t *ids,
                   size_t n, size_t *queued_r, char *err, size_t errlen)
{
	char states[512];
	int64_t fresh = 0, verified = 0;

	if (store_pass_start(o->st, mid, pass, kind, ids, n, queued_r, err, errlen) < 0)
		return OPS_FAILED;
	if (*queued_r > 0) {
		log_info("migration %" PRId64 ": pass %d (%s) queued for %zu accounts", mid, pass,
		         kind, *queued_r);
		return ops_publish(o, mid, err, errlen);
	}
	if (store_migration_states(o->st, mid, states, sizeof(states), &fresh, &verified, err,
	                           errlen) < 0)
		return OPS_FAILED;
	if (fresh > 0)
		snprintf(err, errlen,
		         "migration %" PRId64 ": pass %d not started: no verified accounts to"
		         " run: run `mailshift-coordinator verify %" PRId64 "` first"
		         " (accounts: %s)",
		         mid, pass, mid, states[0] != '\0' ? states : "none");
	else
		snprintf(err, errlen,
		         "migration %" PRId64 ": pass %d not started: no account to run"
		         " (accounts: %s)",
		         mid, pass, states[0] != '\0' ? states : "none");
	return OPS_CONFLICT;
}

int ops_pass_next(const struct ops *o, int64_t mid, const char *kind, int *pass_r, char *err,
                  size_t errlen)
{
	int last = 0;

	if (store_pass_last(o->st, mid, &last, err, errlen) < 0)
		return OPS_FAILED;
	if (strcmp(kind, "bulk") == 0) {
		if (last > 0) {
			snprintf(err, errlen,
			         "migration %" PRId64 ": pass 1 (bulk) was started already; ask"
			         " for a delta or final pass",
			         mid);
			return OPS_CONFLICT;
		}
		*pass_r = 1;
		return 0;
	}
	if (strcmp(kind, "delta") != 0 && strcmp(kind, "final") != 0) {
		snprintf(err, errlen, "kind: bulk, delta or final, not %s", kind);
		return OPS_INVALID;
	}
	if (last == 0) {
		snprintf(err, errlen, "migration %" PRId64 ": no pass yet: start a bulk pass first",
		         mid);
		return OPS_CONFLICT;
	}
	*pass_r = last + 1;
	return 0;
}

int ops_retry(const struct ops *o, int64_t mid, int pass, const int64_t *ids, size_t n,
              size_t *requeued_r, char *err, size_t errlen)
{
	int64_t *failed = NULL, *refused_ids = NULL;
	bool *refused = NULL;
	size_t count = 0, nrefused = 0;
	struct verifier_counts counts;
	char kind[8] = "delta";
	int last = 0, ret = OPS_FAILED;

	*requeued_r = 0;
	if (store_pass_failed(o->st, mid, pass, ids, n, &failed, &refused, &count, err, errlen) < 0)
		return OPS_FAILED;
	if (count == 0) {
		ret = 0;
		goto out;
	}
	refused_ids = calloc(count, sizeof(*refused_ids));
	if (refused_ids == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		if (refused[i])
			refused_ids[nrefused++] = failed[i];
	/* Refused credentials are checked again first: only the verified run. */
	if (nrefused > 0 &&
	    (ret = ops_verify(o, mid, refused_ids, nrefused, &counts, err, errlen)) < 0)
		goto out;
	if (store_pass_last(o->st, mid, &last, err, errlen) < 0) {
		ret = OPS_FAILED;
		goto out;
	}
	if (pass == 1)
		snprintf(kind, sizeof(kind), "bulk");
	ret = OPS_FAILED;
	if (store_pass_start(o->st, mid, pass, kind, failed, count, requeued_r, err, errlen) < 0)
		goto out;
	log_info("migration %" PRId64 ": pass %d retried for %zu of %zu failed accounts", mid, pass,
	         *requeued_r, count);
	ret = *requeued_r > 0 ? ops_publish(o, mid, err, errlen) : 0;
out:
	free(failed);
	free(refused);
	free(refused_ids);
	return ret;
}

struct tally_ctx {
	int pass;
	struct ops_pass_tally *t;
};

static void tally_row(const struct store_account_status *r, void *context)
{
	struct tally_ctx *c = context;
	enum account_state state;

	if (account_state_parse(r->state, &state) < 0)
		state = ACCOUNT_STATE_COUNT;
	if (r->pass < c->pass)
		return; /* not scheduled for this pass (unverified, refused, cancelled) */
	c->t->total++;
	if (r->pass_done >= c->pass) {
		c->t->synced++;
		c->t->ended++;
	} else if ((state == ACCOUNT_STATE_FAILED && r->retry_at[0] == '\0') ||
	           state == ACCOUNT_STATE_AUTH_FAILED || state == ACCOUNT_STATE_CANCELLED) {
		/* A failed account with a retry to come is not done yet. */
		c->t->ended++;
	}
}

int ops_pass_tally(const struct ops *o, int64_t mid, int pass, struct ops_pass_tally *t, char *err,
                   size_t errlen)
{
	struct tally_ctx c = {.pass = pass, .t = t};

	*t = (struct ops_pass_tally){0};
	return store_migration_status(o->st, mid, 0, tally_row, &c, err, errlen) < 0 ? OPS_FAILED
	                                                                             : 0;
}
