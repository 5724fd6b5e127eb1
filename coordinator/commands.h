/* The coordinator's commands, as a table: main looks a command up, checks
 * its arguments against its row and runs its handler. */
#ifndef MAILSHIFT_COMMANDS_H
#define MAILSHIFT_COMMANDS_H

#include "queue.h"
#include "store-conn.h"

#include <stdio.h>

/* The global options (command line, environment). */
struct command_options {
	const char *db;
	const char *brokers_file;
	char *brokers;
	const char *key_file;
	struct queue_topics_config topics; /* checked or created by run, topics */
};

/* What a command runs with: the options and the store, open with the schema
 * applied (NULL for the commands that keep their own connections). */
struct command_ctx {
	const struct command_options *o;
	struct store *st;
};

/* Command flags. */
#define COMMAND_MIGRATION 0x1 /* argv[1] names a migration that must exist */
#define COMMAND_PASS 0x2      /* and argv[2], if given, a pass of it */
#define COMMAND_BROKERS 0x4   /* refused without Kafka brokers */
#define COMMAND_OWN_DB 0x8    /* keeps its own connections: the store is closed */

/* One command: its arguments after the name (at least min_args, at most
 * max_args, -1 for any number), their usage and the handler.  The handler
 * gets argv[0] = the command name, its return value is the exit code (2 for
 * a malformed argument, as for a wrong count). */
struct command {
	const char *name;
	const char *args;
	int min_args, max_args;
	unsigned flags;
	int (*run)(struct command_ctx *c, int argc, char **argv);
	const char *help; /* lines separated by '\n' */
};

/* The command named name, or NULL. */
const struct command *command_find(const char *name);

/* Every command naming a migration (and wait or passes naming a pass) fails
 * clearly when it does not exist: -1 with the error printed.  argv[0] is the
 * command name.  Arguments that are not ids, and a wrong count, are left to
 * the caller and the handler. */
int command_migration_args_exist(struct store *st, const struct command *cmd, int argc,
                                 char **argv);

/* Writes the "commands:" lines of the usage: each command, its arguments and
 * what it does. */
void command_usage_print(FILE *f);

#endif
