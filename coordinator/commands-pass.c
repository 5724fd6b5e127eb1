/* The pass commands: pass, start, delta queue a pass and publish what the
 * budgets allow; passes, wait, status report on them. */
#include "commands-private.h"

#include "log.h"
#include "queue.h"
#include "report.h"
#include "scheduler.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Publishes what the budgets and the workers' room allow now; the scheduler
 * publishes the rest as accounts finish.  *published_r counts the jobs. */
int command_publish_due(struct store *st, const struct command_options *o, int64_t mid,
                        size_t *published_r)
{
	struct queue_producer *producer = NULL;
	size_t count = 0;
	char err[512];
	int ret = 1;

	if (queue_producer_create(o->brokers, &producer, err, sizeof(err)) < 0 ||
	    scheduler_publish_due(st, producer, mid, 100000, REPUBLISH_S, &count, err,
	                          sizeof(err)) < 0)
		fprintf(stderr, "%s\n", err);
	else
		ret = 0;
	queue_producer_destroy(&producer);
	if (published_r != NULL)
		*published_r = count;
	return ret;
}

/* An account argument: a source login or an id; the error is printed. */
int command_account_arg(struct store *st, int64_t mid, const char *which, int64_t *id_r)
{
	char error[STORE_ERRLEN] = "";

	if (store_account_find(st, mid, which, id_r, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	return 0;
}

/* Resolves account arguments (source logins or ids); caller frees *ids_r. */
int command_resolve_accounts(struct store *st, int64_t mid, char **names, int n, int64_t **ids_r)
{
	int64_t *ids = calloc((size_t)n + 1, sizeof(*ids));

	if (ids == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		if (command_account_arg(st, mid, names[i], &ids[i]) < 0) {
			free(ids);
			return -1;
		}
	}
	*ids_r = ids;
	return 0;
}

/* Queues pass N of a migration (all accounts, or those named) and publishes
 * the jobs the connection budgets allow now. */
static int pass_queue(struct command_ctx *c, int64_t mid, int pass, const char *kind,
                      const int64_t *ids, size_t nids)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	size_t queued = 0, published = 0;
	char error[STORE_ERRLEN] = "";
	int ret;

	if (o->brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		return 1;
	}
	if (store_pass_start(st, mid, pass, kind, ids, nids, &queued, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (queued == 0) {
		char states[512];
		int64_t fresh = 0, verified = 0;

		if (store_migration_states(st, mid, states, sizeof(states), &fresh, &verified,
		                           error, sizeof(error)) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (fresh > 0)
			fprintf(stderr,
			        "migration %" PRId64
			        ": pass %d not started: no verified accounts to"
			        " run: run `mailshift-coordinator verify %" PRId64 "` first"
			        " (accounts: %s)\n",
			        mid, pass, mid, states[0] != '\0' ? states : "none");
		else
			fprintf(stderr,
			        "migration %" PRId64 ": pass %d not started: no account to run"
			        " (accounts: %s)\n",
			        mid, pass, states[0] != '\0' ? states : "none");
		return 1;
	}
	ret = command_publish_due(st, o, mid, &published);
	if (ret == 0)
		log_info("migration %" PRId64 ": pass %d (%s) queued for %zu accounts; %zu jobs"
		         " published now, the scheduler publishes the rest within the"
		         " connection budgets",
		         mid, pass, kind, queued, published);
	printf("pass %d\n", pass);
	return ret;
}

/* pass MIGRATION N [ACCOUNT...] */
int cmd_pass(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, pass, *ids = NULL;
	int n = argc - 3, ret;

	if (command_parse_id(argv[1], "migration", &mid) < 0 ||
	    command_parse_id(argv[2], "pass", &pass) < 0 || pass > 100000 ||
	    (n > 0 && command_resolve_accounts(c->st, mid, argv + 3, n, &ids) < 0))
		return 2;
	ret = pass_queue(c, mid, (int)pass, pass == 1 ? "bulk" : "delta", ids, (size_t)n);
	free(ids);
	return ret;
}

/* start MIGRATION: pass 1, the bulk copy. */
int cmd_start(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	return pass_queue(c, mid, 1, "bulk", NULL, 0);
}

/* delta MIGRATION [--final] [ACCOUNT...]: the pass after the last one. */
int cmd_delta(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, *ids = NULL;
	int first = 2, last = 0, ret;
	bool final = first < argc && strcmp(argv[first], "--final") == 0;
	char error[STORE_ERRLEN] = "";

	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (final)
		first++;
	if (argc > first &&
	    command_resolve_accounts(c->st, mid, argv + first, argc - first, &ids) < 0)
		return 2;
	if (store_pass_last(c->st, mid, &last, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		free(ids);
		return 1;
	}
	if (last == 0) {
		fprintf(stderr, "migration %" PRId64 ": no pass yet: run start first\n", mid);
		free(ids);
		return 1;
	}
	ret = pass_queue(c, mid, last + 1, final ? "final" : "delta", ids, (size_t)(argc - first));
	free(ids);
	return ret;
}

/* passes MIGRATION [N] */
int cmd_passes(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, pass = 0;

	if (command_parse_id(argv[1], "migration", &mid) < 0 ||
	    (argc == 3 && command_parse_id(argv[2], "pass", &pass) < 0))
		return 2;
	return report_passes(c->st, mid, (int)pass);
}

/* wait MIGRATION N [SECS] */
int cmd_wait(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, pass, secs = 3600;

	if (command_parse_id(argv[1], "migration", &mid) < 0 ||
	    command_parse_id(argv[2], "pass", &pass) < 0 ||
	    (argc == 4 && command_parse_id(argv[3], "seconds", &secs) < 0))
		return 2;
	return report_wait(c->st, mid, (int)pass, (int)secs);
}

/* status MIGRATION [ACCOUNT] */
int cmd_status(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, account_id = 0;

	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (argc == 3 && command_account_arg(c->st, mid, argv[2], &account_id) < 0)
		return 1;
	return report_status(c->st, mid, account_id);
}
