#include "verifier.h"

#include "account.h"
#include "account_state.h"
#include "imap.h"
#include "log.h"
#include "pace.h"
#include "store-account.h"
#include "store-lease.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct verify_run {
	const char *db_conninfo;
	const char *actor;
	const struct secret_key *key;
	int64_t *ids;
	size_t count;
	pthread_mutex_t lock;
	size_t next;
	size_t verified, refused, unreachable, errors;
};

/* How long a login waits for a slot of its server's connection budget. */
#define SLOT_WAIT_S 120
/* Tries for a login while the server asks to slow down. */
#define THROTTLE_TRIES 6

_Static_assert(PACE_TAKEN == STORE_TAKEN && PACE_BUSY == STORE_BUSY, "lib/pace results");

/* One try for a slot of a server's budget, as pace_take_fn. */
struct slot_take {
	struct store *st;
	int64_t server_id;
	const char *owner;
	int *slot_r;
	char *error;
	size_t errlen;
};

static int slot_try(void *context)
{
	struct slot_take *t = context;

	return store_slot_take(t->st, t->server_id, t->owner, 600, t->slot_r, t->error, t->errlen);
}

/* Tries one side's login within the server's connection budget (a slot is
 * held for the login, so verification never exceeds max_connections even
 * while workers copy); fills state/reason when it fails. */
static bool login_ok(struct store *st, int64_t server_id, const struct imap_endpoint *ep,
                     const char *side, enum account_state *state_r, char *reason, size_t reasonlen)
{
	struct imap_session *s = NULL;
	char err[512], owner[64];
	char error[STORE_ERRLEN] = "";
	int ret, slot = 0, taken;
	struct slot_take take = {st, server_id, owner, &slot, error, sizeof(error)};

	snprintf(owner, sizeof(owner), "verify-%ld-%lu", (long)getpid(),
	         (unsigned long)pthread_self());
	/* The slot outlives the login and its waits for a throttling server. */
	taken = pace_slot_wait(slot_try, &take, SLOT_WAIT_S, NULL, NULL);
	if (taken == STORE_BUSY) {
		*state_r = ACCOUNT_STATE_VERIFY_FAILED;
		snprintf(reason, reasonlen,
		         "%s: no connection free within the server's budget for 2 minutes"
		         " (copies are using it); check again later",
		         side);
		return false;
	}
	if (taken < 0)
		log_warn("%s: connection budget: %s (checking anyway)", side, error);
	/* A server that asks to slow down is waited for, not taken as a no. */
	for (int tries = 1;; tries++) {
		int backoff = 0, secs;
		ret = imap_session_open_backoff(ep, &s, &backoff, err, sizeof(err));
		imap_session_close(&s);
		if (ret != IMAP_ETHROTTLED || tries == THROTTLE_TRIES)
			break;
		secs = pace_throttle_delay_s(backoff, tries);
		log_info("%s: %s; waiting %d s", side, err, secs);
		pace_sleep(secs, NULL, NULL);
	}
	if (taken == STORE_TAKEN &&
	    store_slot_release(st, server_id, slot, owner, error, sizeof(error)) < 0)
		log_warn("%s: connection budget: %s", side, error);
	if (ret == 0)
		return true;
	*state_r = ret == IMAP_EAUTH ? ACCOUNT_STATE_AUTH_FAILED : ACCOUNT_STATE_VERIFY_FAILED;
	snprintf(reason, reasonlen, "%s: %s", side, err);
	return false;
}

static void verify_one(struct verify_run *run, struct store *st, int64_t id)
{
	struct store_account acct;
	struct account_creds creds;
	enum account_state state = ACCOUNT_STATE_VERIFIED;
	char reason[768] = "source and destination logins accepted";
	char err[512], error[STORE_ERRLEN] = "";

	if (store_account_get(st, id, &acct, error, sizeof(error)) < 0) {
		log_error("account %" PRId64 ": %s", id, error);
		pthread_mutex_lock(&run->lock);
		run->errors++;
		pthread_mutex_unlock(&run->lock);
		return;
	}
	if (account_creds_open(&acct, run->key, NULL, &creds, err, sizeof(err)) < 0) {
		state = ACCOUNT_STATE_VERIFY_FAILED;
		snprintf(reason, sizeof(reason), "%s", err);
	} else {
		if (login_ok(st, acct.src.id, &creds.src, "source", &state, reason, sizeof(reason)))
			login_ok(st, acct.dst.id, &creds.dst, "destination", &state, reason,
			         sizeof(reason));
		account_creds_close(&creds);
	}
	if (store_account_verified(st, id, account_state_name(state), reason, error,
	                           sizeof(error)) < 0)
		log_error("account %" PRId64 ": %s", id, error);
	pthread_mutex_lock(&run->lock);
	printf("account %-4" PRId64 " %-24s %-13s %s\n", id, acct.src_login,
	       account_state_name(state), state == ACCOUNT_STATE_VERIFIED ? "" : reason);
	fflush(stdout);
	if (state == ACCOUNT_STATE_VERIFIED)
		run->verified++;
	else if (state == ACCOUNT_STATE_AUTH_FAILED)
		run->refused++;
	else
		run->unreachable++;
	pthread_mutex_unlock(&run->lock);
	store_account_clear(&acct);
}

static void *verify_thread(void *arg)
{
	struct verify_run *run = arg;
	struct store *st = NULL;
	char error[STORE_ERRLEN] = "";

	if (store_open(run->db_conninfo, &st, error, sizeof(error)) < 0 ||
	    (run->actor != NULL && store_actor_set(st, run->actor, error, sizeof(error)) < 0)) {
		log_error("%s", error);
		store_close(&st);
		return NULL;
	}
	for (;;) {
		size_t i;
		pthread_mutex_lock(&run->lock);
		i = run->next++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->count)
			break;
		verify_one(run, st, run->ids[i]);
	}
	store_close(&st);
	return NULL;
}

int verifier_run(const char *db_conninfo, const struct secret_key *key, int64_t migration_id,
                 const int64_t *ids, size_t count, int parallel, const char *actor,
                 struct verifier_counts *counts_r)
{
	struct verify_run run;
	struct store *st = NULL;
	pthread_t *threads = NULL;
	char error[STORE_ERRLEN] = "";
	int started = 0, ret = -1;

	memset(&run, 0, sizeof(run));
	run.db_conninfo = db_conninfo;
	run.actor = actor;
	run.key = key;
	pthread_mutex_init(&run.lock, NULL);
	if (store_open(db_conninfo, &st, error, sizeof(error)) < 0) {
		log_error("%s", error);
		goto out;
	}
	if (ids != NULL) {
		run.ids = calloc(count + 1, sizeof(*run.ids));
		if (run.ids == NULL)
			goto out;
		memcpy(run.ids, ids, count * sizeof(*ids));
		run.count = count;
	} else if (store_migration_accounts(st, migration_id, &run.ids, &run.count, error,
	                                    sizeof(error)) < 0) {
		log_error("%s", error);
		goto out;
	}
	threads = calloc((size_t)parallel, sizeof(*threads));
	if (threads == NULL)
		goto out;
	for (int i = 0; i < parallel && (size_t)i < run.count; i++) {
		if (pthread_create(&threads[i], NULL, verify_thread, &run) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	printf("%zu verified, %zu refused, %zu unreachable\n", run.verified, run.refused,
	       run.unreachable);
	ret = run.verified == run.count ? 0 : 1;
	if (counts_r != NULL)
		*counts_r = (struct verifier_counts){.verified = run.verified,
		                                     .refused = run.refused,
		                                     .unreachable = run.unreachable,
		                                     .all_verified = run.verified == run.count};
out:
	free(threads);
	free(run.ids);
	store_close(&st);
	pthread_mutex_destroy(&run.lock);
	return ret;
}
