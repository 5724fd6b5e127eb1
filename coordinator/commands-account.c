/* The account commands of a migration that may be running: pause, resume,
 * cancel; add (more accounts), passwd (new credentials), remove. */
#include "commands-private.h"

#include "account.h"
#include "log.h"
#include "ops.h"
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
	const struct ops o = command_ops(c);
	const char *action = argv[0];
	size_t changed = 0, unchanged = 0;
	char error[STORE_ERRLEN] = "";
	int64_t mid, account_id = 0;
	int ret;

	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (argc == 3 && command_account_arg(c->st, mid, argv[2], &account_id) < 0)
		return 1;
	ret = ops_control(&o, mid, account_id, action, &changed, &unchanged, error, sizeof(error));
	if (ret < 0 && changed == 0 && unchanged == 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (ret < 0)
		fprintf(stderr, "%s\n", error);
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
	return ret < 0 ? 1 : 0;
}

/* After new or repaired credentials: verify those accounts and let the
 * verified ones join the migration's current pass. */
static int verify_and_join(const struct ops *o, int64_t mid, const int64_t *ids, size_t n)
{
	struct verifier_counts counts;
	char error[STORE_ERRLEN] = "";
	size_t joined = 0;
	int pass = 0;

	if (ops_verify_join(o, mid, ids, n, &counts, &pass, &joined, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (pass > 0)
		printf("%zu accounts joined pass %d\n", joined, pass);
	return counts.all_verified ? 0 : 1;
}

/* add MIGRATION CSV: more accounts for a migration, possibly running. */
int cmd_add(struct command_ctx *c, int argc, char **argv)
{
	const struct ops o = command_ops(c);
	const char *csv = argv[2];
	struct plan *plan = NULL;
	int64_t mid, *ids = NULL;
	char err[8192];
	int ret = 1;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (ops_migration_plan(&o, mid, &plan, err, sizeof(err)) < 0 ||
	    plan_accounts_parse(csv, plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (ops_accounts_add(&o, mid, plan, &ids, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s (nothing added)\n", csv, err);
		goto out;
	}
	ret = verify_and_join(&o, mid, ids, plan->naccounts);
out:
	free(ids);
	plan_destroy(&plan);
	return ret;
}

/* passwd MIGRATION ACCOUNT source|destination|both: the new password from
 * stdin (never from the command line, which other users can see). */
int cmd_passwd(struct command_ctx *c, int argc, char **argv)
{
	const struct ops o = command_ops(c);
	const char *which = argv[2], *side = argv[3];
	struct verifier_counts counts;
	char error[STORE_ERRLEN] = "";
	char pw[4096];
	size_t len, joined = 0;
	int64_t mid, id;
	int pass = 0, ret = 1, r;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (strcmp(side, "source") != 0 && strcmp(side, "destination") != 0 &&
	    strcmp(side, "both") != 0) {
		fprintf(stderr, "passwd: the side is source, destination or both, not %s\n", side);
		return 2;
	}
	if (store_account_find(c->st, mid, which, &id, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL || (len = strcspn(pw, "\r\n")) == 0) {
		fprintf(stderr, "passwd: give the new password on standard input\n");
		goto out;
	}
	pw[len] = '\0';
	r = ops_passwd(&o, mid, id, side, pw, &counts, &pass, &joined, error, sizeof(error));
	if (r < 0) {
		fprintf(stderr, "%s\n", error);
		goto out;
	}
	if (pass > 0)
		printf("%zu accounts joined pass %d\n", joined, pass);
	ret = counts.all_verified ? 0 : 1;
out:
	explicit_bzero(pw, sizeof(pw));
	return ret;
}

/* How long remove waits for a worker copying the account to stop: its
 * heartbeat (every TTL/4) sees the cancel, and it stops at its next batch. */
#define REMOVE_WAIT_S 90

/* remove MIGRATION ACCOUNT */
int cmd_remove(struct command_ctx *c, int argc, char **argv)
{
	const struct ops o = command_ops(c);
	const char *which = argv[2];
	char error[STORE_ERRLEN] = "";
	int64_t mid, id;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (store_account_find(c->st, mid, which, &id, error, sizeof(error)) < 0 ||
	    ops_remove(&o, mid, id, REMOVE_WAIT_S, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	return 0;
}
