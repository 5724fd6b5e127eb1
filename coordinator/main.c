/* mailshift-coordinator: the coordinator's command line.  main parses the
 * global options, opens the store and runs the command from the table in
 * commands.c; the scheduler, verifier and reports live beside it. */
#include "commands.h"
#include "config.h"
#include "log.h"
#include "queue.h"
#include "secret.h"
#include "store-conn.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
	fprintf(stderr, "usage: mailshift-coordinator [options] COMMAND\n"
	                "commands:\n");
	command_usage_print(stderr);
	fprintf(
	    stderr,
	    "options:\n"
	    "  --db CONNINFO          PostgreSQL (env MAILSHIFT_DB)\n"
	    "  --brokers LIST         Kafka bootstrap servers (env MAILSHIFT_BROKERS)\n"
	    "  --brokers-file PATH    file holding the bootstrap list (env "
	    "MAILSHIFT_BROKERS_FILE)\n"
	    "  --key-file PATH        secret key file (env MAILSHIFT_KEY_FILE), mode 0600\n"
	    "  --no-create-topics     refuse to start when a Kafka topic is missing (env\n"
	    "                         MAILSHIFT_CREATE_TOPICS=0; default: create it)\n"
	    "  --topic-partitions N   partitions of a created topic (env\n"
	    "                         MAILSHIFT_TOPIC_PARTITIONS, default 16)\n"
	    "  --topic-replication N  replication factor of a created topic (env\n"
	    "                         MAILSHIFT_TOPIC_REPLICATION, default min(3, brokers))\n"
	    "environment:\n"
	    "  MAILSHIFT_DB_TIMEOUT=SECS            PostgreSQL connect timeout (default 10)\n"
	    "  MAILSHIFT_DB_STATEMENT_TIMEOUT=SECS  PostgreSQL statement timeout (default 60;\n"
	    "                                       the client gives up 10 s later)\n"
	    "  MAILSHIFT_KEY_FILE_PERMISSIVE=1      only warn about a key file others can read\n"
	    "  MAILSHIFT_DB_PASSWORD_FILE=PATH      PostgreSQL password, read from PATH\n"
	    "  MAILSHIFT_LOG=LEVEL                  debug, info (default), warn or error\n"
	    "  MAILSHIFT_TOPIC_PREFIX=P             topics P+jobs, P+events (default mailshift.)\n"
	    "  MAILSHIFT_TOPIC_JOBS=NAME            the jobs topic's whole name\n"
	    "  MAILSHIFT_TOPIC_EVENTS=NAME          the events topic's whole name\n"
	    "  MAILSHIFT_TOPIC_TIMEOUT=SECS         bound on the topics' check and creation (30)\n"
	    "  MAILSHIFT_KAFKA_PROPERTIES_FILE=PATH librdkafka properties (name=value lines)\n"
	    "  MAILSHIFT_KAFKA_NAME=VALUE           librdkafka property name (lower case, _ is .)\n"
	    "  MAILSHIFT_KAFKA_NAME_FILE=PATH       the same, the value read from PATH\n");
}

/* The environment's topic settings; the flags, parsed later, win. */
static int topics_env(struct queue_topics_config *t, char *err, size_t errlen)
{
	long v;

	if (t->create < 0 &&
	    config_env_bool("MAILSHIFT_CREATE_TOPICS", 1, &t->create, err, errlen) < 0)
		return -1;
	if (t->partitions == 0) {
		if (config_env_int("MAILSHIFT_TOPIC_PARTITIONS", 1, 10000, 0, &v, err, errlen) < 0)
			return -1;
		t->partitions = (int)v;
	}
	if (t->timeout_ms == 0) {
		if (config_env_int("MAILSHIFT_TOPIC_TIMEOUT", 1, 3600, 30, &v, err, errlen) < 0)
			return -1;
		t->timeout_ms = (int)v * 1000;
	}
	if (t->replication == 0) {
		if (config_env_int("MAILSHIFT_TOPIC_REPLICATION", 1, 100, 0, &v, err, errlen) < 0)
			return -1;
		t->replication = (int)v;
	}
	return 0;
}

static int topics_option(struct queue_topics_config *t, int c, const char *arg)
{
	char *end;
	long v;

	if (c == 'N') {
		t->create = 0;
		return 0;
	}
	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 1 || v > (c == 'P' ? 10000 : 100)) {
		fprintf(stderr, "mailshift-coordinator: %s: must be an integer 1..%d\n",
		        c == 'P' ? "--topic-partitions" : "--topic-replication",
		        c == 'P' ? 10000 : 100);
		return -1;
	}
	if (c == 'P')
		t->partitions = (int)v;
	else
		t->replication = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"brokers", required_argument, NULL, 'b'},
	    {"brokers-file", required_argument, NULL, 'B'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"no-create-topics", no_argument, NULL, 'N'},
	    {"topic-partitions", required_argument, NULL, 'P'},
	    {"topic-replication", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct command_options o = {
	    .db = getenv("MAILSHIFT_DB"),
	    .brokers_file = getenv("MAILSHIFT_BROKERS_FILE"),
	    .key_file = getenv("MAILSHIFT_KEY_FILE"),
	    .topics = {.create = -1},
	};
	struct command_ctx ctx = {.o = &o};
	const struct command *cmd;
	char error[STORE_ERRLEN] = "";
	char err[512];
	int c, nargs, ret = 2;

	if (getenv("MAILSHIFT_BROKERS") != NULL)
		o.brokers = strdup(getenv("MAILSHIFT_BROKERS"));
	/* "+": options end at the command (its own, like delta's --final, follow). */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.db = optarg;
			break;
		case 'b':
			free(o.brokers);
			o.brokers = strdup(optarg);
			break;
		case 'B':
			o.brokers_file = optarg;
			break;
		case 'k':
			o.key_file = optarg;
			break;
		case 'N':
		case 'P':
		case 'R':
			if (topics_option(&o.topics, c, optarg) < 0) {
				free(o.brokers);
				return 2;
			}
			break;
		default:
			usage();
			free(o.brokers);
			return c == 'h' ? 0 : 2;
		}
	}
	log_init("coordinator");
	if (config_env_check(err, sizeof(err)) < 0 || topics_env(&o.topics, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailshift-coordinator: %s\n", err);
		goto out;
	}
	/* Keys and passwords pass through this process: no core file. */
	if (secret_process_protect(err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		ret = 1;
		goto out;
	}
	if (optind >= argc) {
		usage();
		goto out;
	}
	argc -= optind;
	argv += optind;
	cmd = command_find(argv[0]);
	nargs = argc - 1;
	if (o.db == NULL) {
		fprintf(stderr, "no database: give --db or MAILSHIFT_DB\n");
		goto out;
	}
	if (o.brokers == NULL && o.brokers_file != NULL &&
	    queue_brokers_from_file(o.brokers_file, &o.brokers, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	/* The schema is applied before the command and its arguments are
	 * checked, an unknown command included: the order it always had. */
	if (store_open(o.db, &ctx.st, error, sizeof(error)) < 0 ||
	    store_schema_apply(ctx.st, error, sizeof(error)) < 0 ||
	    store_actor_set(ctx.st, "command", error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		ret = 1;
		goto out;
	}
	if (cmd != NULL && command_migration_args_exist(ctx.st, cmd, argc, argv) < 0) {
		ret = 1;
		goto out;
	}
	if (cmd == NULL || nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
		usage();
		goto out;
	}
	if ((cmd->flags & COMMAND_BROKERS) != 0 && o.brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		goto out;
	}
	if ((cmd->flags & COMMAND_OWN_DB) != 0)
		store_close(&ctx.st);
	ret = cmd->run(&ctx, argc, argv);
out:
	store_close(&ctx.st);
	free(o.brokers);
	return ret;
}
