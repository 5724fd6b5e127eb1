/* The account commands of a migration that may be running: pause, resume,
 * cancel; add (more accounts), passwd (new credentials), remove. */
#include "commands-private.h"

#include "account.h"
#include "log.h"
#include "plan.h"
#include "secret.h"
#include "verifier.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* pause|resume|cancel MIGRATION [ACCOUNT]: argv[0] is the action. */
int cmd_control(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const char *action = argv[0];
	struct store_job *jobs = NULL;
	size_t count = 0, changed = 0, unchanged = 0;
	char error[STORE_ERRLEN] = "";
	int64_t mid, account_id = 0;
	int ret = 0;

	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (argc == 3 && command_account_arg(st, mid, argv[2], &account_id) < 0)
		return 1;
	if (store_accounts_control(st, mid, account_id, action, &jobs, &count, &changed, &unchanged,
	                           error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	free(jobs);
	if (count > 0 && c->o->brokers != NULL)
		ret = command_publish_due(st, c->o, mid, NULL);
	if (strcmp(action, "cancel") == 0)
		printf("%zu accounts cancelled, %zu already finished (synced, done, cancelled, or"
		       " failed with no retry left) kept their state\n",
		       changed, unchanged);
	else if (strcmp(action, "pause") == 0)
		printf("%zu accounts paused (running ones stop at their next checkpoint), %zu"
		       " left as they were (already paused, finished or refused)\n",
		       changed, unchanged);
	else
		printf("%zu accounts resumed (paused ones, and failed ones of their current pass"
		       " with a fresh error budget), %zu left as they were\n",
		       changed, unchanged);
	return ret;
}

/* After new or repaired credentials: verify those accounts and let the
 * verified ones join the migration's current pass. */
static int verify_and_join(struct store *st, const struct command_options *o, int64_t mid,
                           const int64_t *ids, size_t n)
{
	struct secret_key *key = NULL;
	char error[STORE_ERRLEN] = "";
	char err[512];
	size_t queued = 0;
	int last = 0, ret;

	if (account_key_open(st, o->key_file, false, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	ret = verifier_run(o->db, key, mid, ids, n, 8) != 0 ? 1 : 0;
	secret_key_destroy(&key);
	if (store_pass_last(st, mid, &last, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (last > 0) {
		if (store_pass_start(st, mid, last, last == 1 ? "bulk" : "delta", ids, n, &queued,
		                     error, sizeof(error)) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (queued > 0 && o->brokers != NULL)
			ret |= command_publish_due(st, o, mid, NULL);
		printf("%zu accounts joined pass %d\n", queued, last);
	}
	return ret;
}

/* add MIGRATION CSV: more accounts for a migration, possibly running. */
int cmd_add(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	const char *csv = argv[2];
	struct store_new_account *rows = NULL;
	struct secret_key *key = NULL;
	struct plan *plan = NULL;
	int64_t mid, *ids = NULL;
	char error[STORE_ERRLEN] = "";
	char err[8192];
	int ret = 1;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	plan = calloc(1, sizeof(*plan));
	if (plan == NULL)
		return 1;
	/* The CSV names source profiles: the migration's. */
	if (store_migration_sources(st, mid, &plan->srcs, &plan->nsrcs, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		goto out;
	}
	if (plan->nsrcs == 0) {
		fprintf(stderr, "no migration %" PRId64 "\n", mid);
		goto out;
	}
	if (plan_accounts_parse(csv, plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (account_key_open(st, o->key_file, true, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	rows = calloc(plan->naccounts + 1, sizeof(*rows));
	ids = calloc(plan->naccounts + 1, sizeof(*ids));
	if (rows == NULL || ids == NULL)
		goto out;
	for (size_t i = 0; i < plan->naccounts; i++) {
		const struct plan_account *a = &plan->accounts[i];
		const char *dst_pw = a->dst_password != NULL ? a->dst_password : a->src_password;
		unsigned char *s = NULL, *d = NULL;

		if (plan->srcs[a->source].master_user != NULL) {
			fprintf(stderr,
			        "%s:%d: source profile %s logs in as a master user: its"
			        " accounts are added with the plan\n",
			        csv, a->line, plan->srcs[a->source].name);
			goto out;
		}
		if (command_seal_secret(key, ACCOUNT_SRC, a->src_login, a->src_password, &s,
		                        &rows[i].src_secret_len) < 0 ||
		    command_seal_secret(key, ACCOUNT_DST, a->dst_login, dst_pw, &d,
		                        &rows[i].dst_secret_len) < 0) {
			free(s);
			goto out;
		}
		rows[i] = (struct store_new_account){.src_login = a->src_login,
		                                     .dst_login = a->dst_login,
		                                     .src_secret = s,
		                                     .src_secret_len = rows[i].src_secret_len,
		                                     .dst_secret = d,
		                                     .dst_secret_len = rows[i].dst_secret_len,
		                                     .priority = a->priority,
		                                     .folder_rules = a->folder_rules,
		                                     .source = a->source,
		                                     .line = a->line};
	}
	if (store_accounts_add(st, mid, rows, plan->naccounts, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s: %s (nothing added)\n", csv, error);
		goto out;
	}
	for (size_t i = 0; i < plan->naccounts; i++) {
		if (store_account_find(st, mid, plan->accounts[i].src_login, &ids[i], error,
		                       sizeof(error)) < 0) {
			fprintf(stderr, "%s\n", error);
			goto out;
		}
	}
	log_info("migration %" PRId64 ": %zu accounts added", mid, plan->naccounts);
	ret = verify_and_join(st, o, mid, ids, plan->naccounts);
out:
	if (rows != NULL) {
		for (size_t i = 0; i < plan->naccounts; i++) {
			free((void *)rows[i].src_secret);
			free((void *)rows[i].dst_secret);
		}
	}
	free(rows);
	free(ids);
	plan_destroy(&plan);
	secret_key_destroy(&key);
	return ret;
}

/* passwd MIGRATION ACCOUNT source|destination|both: the new password from
 * stdin (never from the command line, which other users can see). */
int cmd_passwd(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	const char *which = argv[2], *side = argv[3];
	struct store_account acct;
	struct secret_key *key = NULL;
	unsigned char *secret = NULL;
	size_t secret_len = 0;
	int64_t mid, id;
	char error[STORE_ERRLEN] = "";
	char pw[4096], err[512];
	size_t len;
	int ret = 1;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (strcmp(side, "source") != 0 && strcmp(side, "destination") != 0 &&
	    strcmp(side, "both") != 0) {
		fprintf(stderr, "passwd: the side is source, destination or both, not %s\n", side);
		return 2;
	}
	if (store_account_find(st, mid, which, &id, error, sizeof(error)) < 0 ||
	    store_account_get(st, id, &acct, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL || (len = strcspn(pw, "\r\n")) == 0) {
		fprintf(stderr, "passwd: give the new password on standard input\n");
		goto out;
	}
	pw[len] = '\0';
	if (account_key_open(st, o->key_file, true, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		const char *s = i == 0 ? "source" : "destination";
		if (strcmp(side, "both") != 0 && strcmp(side, s) != 0)
			continue;
		free(secret);
		secret = NULL;
		if (command_seal_secret(key, i == 0 ? ACCOUNT_SRC : ACCOUNT_DST,
		                        i == 0 ? acct.src_login : acct.dst_login, pw, &secret,
		                        &secret_len) < 0)
			goto out;
		if (store_account_secret(st, id, s, secret, secret_len, error, sizeof(error)) < 0) {
			fprintf(stderr, "%s\n", error);
			goto out;
		}
	}
	log_info("account %" PRId64 " (%s): %s updated", id, acct.src_login,
	         strcmp(side, "both") == 0     ? "source and destination passwords"
	         : strcmp(side, "source") == 0 ? "source password"
	                                       : "destination password");
	ret = verify_and_join(st, o, mid, &id, 1);
out:
	explicit_bzero(pw, sizeof(pw));
	free(secret);
	secret_key_destroy(&key);
	store_account_clear(&acct);
	return ret;
}

/* How long remove waits for a worker copying the account to stop: its
 * heartbeat (every TTL/4) sees the cancel, and it stops at its next batch. */
#define REMOVE_WAIT_S 90

/* An account is removed only once no worker copies it: a run still appending
 * after its rows are gone would leave messages no checkpoint knows, and the
 * account added back would match them only if they landed before it looked.
 * So: cancel it, wait for its lease to be released, then delete. */
int cmd_remove(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const char *which = argv[2];
	struct store_job *jobs = NULL;
	size_t njobs = 0, changed = 0, unchanged = 0;
	char error[STORE_ERRLEN] = "";
	char owner[128] = "";
	int64_t mid, id;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (store_account_find(st, mid, which, &id, error, sizeof(error)) < 0 ||
	    store_accounts_control(st, mid, id, "cancel", &jobs, &njobs, &changed, &unchanged,
	                           error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	free(jobs);
	for (int i = 0; i <= REMOVE_WAIT_S * 2; i++) {
		if (store_account_lease_holder(st, id, owner, sizeof(owner), error, sizeof(error)) <
		    0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (owner[0] == '\0')
			break;
		if (i == 0)
			fprintf(stderr,
			        "account %s is being copied by worker %s: cancelled, waiting"
			        " for it to stop (at most %d s)\n",
			        which, owner, REMOVE_WAIT_S);
		usleep(500 * 1000);
	}
	if (owner[0] != '\0') {
		fprintf(stderr,
		        "account %s: worker %s still holds its lease after %d s; it is cancelled"
		        " but not removed: run remove again once it has stopped\n",
		        which, owner, REMOVE_WAIT_S);
		return 1;
	}
	if (store_account_remove(st, id, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	log_info("migration %" PRId64 ": account %" PRId64 " (%s) removed; what was copied"
	         " stays on the destination",
	         mid, id, which);
	return 0;
}
