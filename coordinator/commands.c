/* The coordinator's commands: the table that names them, their arguments and
 * their usage (see commands.h), with the id and secret helpers the handlers
 * share and the commands that wire other modules: import, verify, step, run. */
#include "commands.h"
#include "commands-private.h"

#include "http.h"

#include "account.h"
#include "log.h"
#include "plan.h"
#include "queue.h"
#include "scheduler.h"
#include "secret.h"
#include "store-account.h"
#include "store-pass.h"
#include "store-schedule.h"
#include "verifier.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int command_parse_id(const char *s, const char *what, int64_t *v_r)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1) {
		fprintf(stderr, "mailshift-coordinator: %s: not a positive integer: %s\n", what, s);
		return -1;
	}
	*v_r = v;
	return 0;
}

struct ops command_ops(const struct command_ctx *c)
{
	return (struct ops){.st = c->st,
	                    .db = c->o->db,
	                    .brokers = c->o->brokers,
	                    .key_file = c->o->key_file,
	                    .actor = "command"};
}

/* import PLAN: the plan and every account in one transaction, after the whole
 * file was validated: a bad line or a database error imports nothing. */
static int cmd_import(struct command_ctx *c, int argc, char **argv)
{
	const struct ops o = command_ops(c);
	const char *path = argv[1];
	struct plan *plan = NULL;
	char err[8192];
	int64_t mid;
	int ret = 1;

	(void)argc;
	if (plan_load(path, &plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < plan->nsrcs; i++)
		if (strcmp(plan->srcs[i].tls, "none") == 0)
			fprintf(stderr,
			        "warning: source '%s' uses tls none: passwords travel in"
			        " clear\n",
			        plan->srcs[i].name);
	if (strcmp(plan->dst.tls, "none") == 0)
		fprintf(stderr,
		        "warning: the destination uses tls none: passwords travel in clear\n");
	switch (ops_import(&o, plan, &mid, err, sizeof(err))) {
	case 0:
		printf("%" PRId64 "\n", mid);
		ret = 0;
		break;
	case OPS_INVALID:
		fprintf(stderr, "%s: %s (nothing imported)\n", path, err);
		break;
	default:
		fprintf(stderr, "%s\n", err);
		break;
	}
	plan_destroy(&plan);
	return ret;
}
/* verify MIGRATION */
static int cmd_verify(struct command_ctx *c, int argc, char **argv)
{
	const struct ops o = command_ops(c);
	struct verifier_counts counts;
	char err[512];
	int64_t mid;

	(void)argc;
	if (command_parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (ops_verify(&o, mid, NULL, 0, &counts, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return counts.all_verified ? 0 : 1;
}

/* step: one scheduler step. */
static int cmd_step(struct command_ctx *c, int argc, char **argv)
{
	struct scheduler_config sc = {
	    .db_conninfo = c->o->db, .brokers = c->o->brokers, .republish_s = REPUBLISH_S};

	(void)argc;
	(void)argv;
	return scheduler_once(&sc) < 0 ? 1 : 0;
}

/* The API options of run and serve, after the command name: --listen
 * ADDR:PORT, --api-tokens-file PATH, --ui-dir DIR (or their environment
 * variables).  -1 with the error printed. */
static int api_options(const struct command_ctx *c, int argc, char **argv, struct http_config *cfg)
{
	*cfg = (struct http_config){.listen = getenv("MAILSHIFT_LISTEN"),
	                            .tokens_file = getenv("MAILSHIFT_API_TOKENS_FILE"),
	                            .ui_dir = getenv("MAILSHIFT_UI_DIR"),
	                            .db = c->o->db,
	                            .brokers = c->o->brokers,
	                            .key_file = c->o->key_file};
	for (int i = 1; i < argc; i++) {
		const char **dst = strcmp(argv[i], "--listen") == 0            ? &cfg->listen
		                   : strcmp(argv[i], "--api-tokens-file") == 0 ? &cfg->tokens_file
		                   : strcmp(argv[i], "--ui-dir") == 0          ? &cfg->ui_dir
		                                                               : NULL;
		if (dst == NULL || i + 1 >= argc) {
			fprintf(stderr, "%s: unknown option or missing value: %s\n", argv[0],
			        argv[i]);
			return -1;
		}
		*dst = argv[++i];
	}
	if (cfg->ui_dir == NULL)
		cfg->ui_dir = MAILSHIFT_UI_DIR;
	if (cfg->tokens_file != NULL && cfg->tokens_file[0] == '\0')
		cfg->tokens_file = NULL;
	return 0;
}

/* run [--listen ADDR:PORT ...]: the scheduler daemon, with the API when
 * asked for, until SIGTERM or SIGINT. */
static int cmd_run(struct command_ctx *c, int argc, char **argv)
{
	static volatile sig_atomic_t active;
	struct scheduler_config sc = {
	    .db_conninfo = c->o->db,
	    .brokers = c->o->brokers,
	    .interval_ms = 500,
	    .republish_s = REPUBLISH_S,
	    .stop = &stop_requested,
	    .active = &active,
	};
	struct http_server *srv = NULL;
	struct http_config hc;
	struct final_proofs *fp;
	char err[1024];
	int ret;

	if (api_options(c, argc, argv, &hc) < 0)
		return 2;
	hc.scheduler_active = &active;
	/* Before any producer: one would have the broker auto-create the
	 * topics with its defaults, or fail much later and less clearly. */
	if (queue_topics_ensure(c->o->brokers, &c->o->topics, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (hc.listen != NULL && hc.listen[0] != '\0' &&
	    http_server_start(&hc, &srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* A final pass ends with a proof of completeness of each account. */
	fp = command_final_proofs_start(c->o, &stop_requested);
	ret = scheduler_run(&sc) < 0 ? 1 : 0;
	stop_requested = 1;
	command_final_proofs_stop(&fp);
	http_server_stop(&srv);
	return ret;
}

/* serve [--listen ADDR:PORT ...]: the API alone, until SIGTERM or SIGINT. */
static int cmd_serve(struct command_ctx *c, int argc, char **argv)
{
	struct http_server *srv = NULL;
	struct http_config hc;
	char err[1024];

	if (api_options(c, argc, argv, &hc) < 0)
		return 2;
	if (hc.listen == NULL || hc.listen[0] == '\0')
		hc.listen = "127.0.0.1:8080";
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (http_server_start(&hc, &srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	while (!stop_requested)
		pause();
	http_server_stop(&srv);
	return 0;
}

/* topics: the Kafka topics checked, the missing ones created (a deployment's
 * first step, or a Job before the coordinators start). */
static int cmd_topics(struct command_ctx *c, int argc, char **argv)
{
	char jobs[256], events[256], err[1024];

	(void)argc;
	(void)argv;
	if (queue_topic_name(QUEUE_TOPIC_JOBS, jobs, sizeof(jobs), err, sizeof(err)) < 0 ||
	    queue_topic_name(QUEUE_TOPIC_EVENTS, events, sizeof(events), err, sizeof(err)) < 0 ||
	    queue_topics_ensure(c->o->brokers, &c->o->topics, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%s\n%s\n", jobs, events);
	return 0;
}

static const struct command commands[] = {
    {"import", "PLAN.json", 1, 1, 0, cmd_import,
     "store a migration and its accounts; prints its id"},
    {"verify", "MIGRATION", 1, 1, COMMAND_MIGRATION, cmd_verify,
     "check every account's source and destination login\n"
     "(verified, auth_failed or verify_failed)"},
    {"start", "MIGRATION", 1, 1, COMMAND_MIGRATION, cmd_start,
     "pass 1 (the bulk copy) for every verified account"},
    {"delta", "MIGRATION [--final] [ACCOUNT...]", 1, -1, COMMAND_MIGRATION, cmd_delta,
     "the next pass, for every account or those named;\n"
     "--final marks the pass after the MX switch"},
    {"pass", "MIGRATION N [ACCOUNT...]", 2, -1, COMMAND_MIGRATION, cmd_pass,
     "run pass N (1 = bulk, 2.. = delta)"},
    {"wait", "MIGRATION N [SECS]", 2, 3, COMMAND_MIGRATION | COMMAND_PASS, cmd_wait,
     "wait until pass N ended for every account: synced,\n"
     "refused, cancelled, or failed with no retry left"},
    {"passes", "MIGRATION [N]", 1, 2, COMMAND_MIGRATION | COMMAND_PASS, cmd_passes,
     "each pass's kind, counts and timings; with N, per\n"
     "account"},
    {"status", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_status,
     "per-account state, counts and last error"},
    {"add", "MIGRATION CSV", 2, 2, COMMAND_MIGRATION, cmd_add,
     "more accounts (same columns as the plan's CSV); they\n"
     "are verified and join the current pass"},
    {"passwd", "MIGRATION ACCOUNT source|destination|both", 3, 3, COMMAND_MIGRATION, cmd_passwd,
     "new password from stdin"},
    {"remove", "MIGRATION ACCOUNT", 2, 2, COMMAND_MIGRATION, cmd_remove,
     "forget an account (its copied mail stays)"},
    {"import-dav", "MIGRATION ACCOUNT FILE.vcf|FILE.ics", 3, 3, COMMAND_MIGRATION, cmd_import_dav,
     "put an exported address book or calendar into the\n"
     "account's destination (CardDAV/CalDAV); again adds nothing"},
    {"pause", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_control,
     "stop starting work; running accounts checkpoint"},
    {"resume", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_control,
     "continue paused accounts"},
    {"cancel", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_control, "stop for good"},
    {"mx",
     "MIGRATION --domains D,.. --hosts H,.. [--settle T] [--interval T] [--resolver A] | --off", 2,
     11, COMMAND_MIGRATION, cmd_mx,
     "watch the domains' MX records (run does): every MX\n"
     "at the destination's hosts for the settle time\n"
     "starts the final pass (default 10m, lookups every 1m)"},
    {"estimate", "MIGRATION [ACCOUNT...] [--json]", 1, -1, COMMAND_MIGRATION, cmd_estimate,
     "dry run: per account the source's folders, messages\n"
     "and bytes (excluded folders shown), totals and an ETA"},
    {"proof", "MIGRATION [ACCOUNT...] [--out DIR] [--json]", 1, -1, COMMAND_MIGRATION, cmd_proof,
     "proof of completeness: both sides compared message by\n"
     "message; --out writes the customer's report (.md,\n"
     ".csv); exit 1 when not exact"},
    {"empty-destination", "MIGRATION ACCOUNT --confirm DESTINATION_LOGIN [--json]", 3, -1,
     COMMAND_MIGRATION, cmd_empty_destination,
     "delete every message on the account's destination\n"
     "and forget its checkpoints (not while it runs)"},
    {"run", "[--listen ADDR:PORT] [--api-tokens-file F] [--ui-dir D]", 0, -1,
     COMMAND_BROKERS | COMMAND_OWN_DB, cmd_run,
     "the scheduler daemon: re-queues accounts whose lease\n"
     "expired and publishes the jobs owed (one active\n"
     "coordinator at a time, the others stand by); with\n"
     "--listen (env MAILSHIFT_LISTEN) it serves the API too"},
    {"serve", "[--listen ADDR:PORT] [--api-tokens-file F] [--ui-dir D]", 0, -1, COMMAND_OWN_DB,
     cmd_serve,
     "the HTTP API alone (default 127.0.0.1:8080; tokens\n"
     "from the file, env MAILSHIFT_API_TOKENS_FILE; without\n"
     "them only a loopback address, no auth); see\n"
     "docs/openapi.yaml"},
    {"step", "", 0, 0, COMMAND_BROKERS | COMMAND_OWN_DB, cmd_step, "one scheduler step, then exit"},
    {"topics", "", 0, 0, COMMAND_BROKERS | COMMAND_OWN_DB, cmd_topics,
     "check the Kafka topics, create the missing ones\n"
     "(unless --no-create-topics); prints their names"},
};

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Every command naming a migration (and wait or passes naming a pass) fails
 * clearly when it does not exist, rather than reporting nothing with exit 0.
 * Arguments that are not ids are left to the command's own parsing; so is a
 * wrong argument count, checked after this. */
int command_migration_args_exist(struct store *st, const struct command *cmd, int argc, char **argv)
{
	char error[STORE_ERRLEN] = "";
	char *end;
	long long mid, pass = 0;

	if ((cmd->flags & COMMAND_MIGRATION) == 0 || argc < 2)
		return 0;
	errno = 0;
	mid = strtoll(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || mid < 1)
		return 0;
	if ((cmd->flags & COMMAND_PASS) != 0 && argc >= 3) {
		errno = 0;
		pass = strtoll(argv[2], &end, 10);
		if (errno != 0 || *end != '\0' || pass < 1 || pass > 100000)
			pass = 0;
	}
	if (store_migration_exists(st, (int64_t)mid, (int)pass, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	return 0;
}

/* Column at which a command's description starts. */
#define USAGE_COLUMN 28

void command_usage_print(FILE *f)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cmd = &commands[i];
		const char *line = cmd->help, *nl;
		char head[128];
		int indent = USAGE_COLUMN;

		snprintf(head, sizeof(head), "%s%s%s", cmd->name, cmd->args[0] != '\0' ? " " : "",
		         cmd->args);
		/* A description starts beside the command if a space is left. */
		if (2 + strlen(head) < USAGE_COLUMN) {
			fprintf(f, "  %-*s", USAGE_COLUMN - 2, head);
			indent = 0;
		} else {
			fprintf(f, "  %s\n", head);
		}
		for (;;) {
			nl = strchr(line, '\n');
			fprintf(f, "%*s%.*s\n", indent, "",
			        nl != NULL ? (int)(nl - line) : (int)strlen(line), line);
			if (nl == NULL)
				break;
			line = nl + 1;
			indent = USAGE_COLUMN;
		}
	}
}
