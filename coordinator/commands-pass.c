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
	const struct ops o = command_ops(c);
	size_t queued = 0;
	char error[STORE_ERRLEN] = "";

	if (c->o->brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		return 1;
	}
	if (ops_pass_queue(&o, mid, pass, kind, ids, nids, &queued, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		if (queued == 0)
			return 1;
		printf("pass %d\n", pass);
		return 1;
	}
	printf("pass %d\n", pass);
	return 0;
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
