/* The `mailshift` subcommands: one per API action.  Each handler gets the
 * words after the subcommand (argv[0] is the subcommand's name), prints a
 * human answer, or the API's JSON with --json, and returns an enum cli_exit
 * (api.h).  Errors go to stderr naming what is wrong. */
#ifndef MAILSHIFT_CLI_COMMANDS_H
#define MAILSHIFT_CLI_COMMANDS_H

#include <stdio.h>

#include "api.h"

struct cli {
	struct api *api;
	int json; /* --json: print the API's answers as they are */
};

struct cli_command {
	const char *name;
	const char *args;
	int min_args, max_args; /* words after the name; -1: no maximum */
	int (*run)(struct cli *c, int argc, char **argv);
	const char *help;
};

const struct cli_command *cli_command_find(const char *name);
void cli_usage_print(FILE *f);

/* Handlers, by file: commands.c (migrations, passes), commands-account.c
 * (accounts and their controls), commands-report.c (errors, report, proof,
 * estimate, throughput, servers), watch.c (status, --watch). */
int cmd_migrations(struct cli *c, int argc, char **argv);
int cmd_import(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_start(struct cli *c, int argc, char **argv);
int cmd_delta(struct cli *c, int argc, char **argv);
int cmd_passes(struct cli *c, int argc, char **argv);
int cmd_wait(struct cli *c, int argc, char **argv);
int cmd_retry(struct cli *c, int argc, char **argv);
int cmd_accounts(struct cli *c, int argc, char **argv);
int cmd_account(struct cli *c, int argc, char **argv);
int cmd_add(struct cli *c, int argc, char **argv);
int cmd_passwd(struct cli *c, int argc, char **argv);
int cmd_remove(struct cli *c, int argc, char **argv);
int cmd_control(struct cli *c, int argc, char **argv);
int cmd_empty_destination(struct cli *c, int argc, char **argv);
int cmd_errors(struct cli *c, int argc, char **argv);
int cmd_report(struct cli *c, int argc, char **argv);
int cmd_proof(struct cli *c, int argc, char **argv);
int cmd_estimate(struct cli *c, int argc, char **argv);
int cmd_throughput(struct cli *c, int argc, char **argv);
int cmd_server(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);

/* Shared by the handlers (commands.c). */
/* Prints "mailshift: WHAT: ERR" to stderr and returns ret. */
int cli_fail(int ret, const char *what, const char *err);
/* MIGRATION argument: a positive integer; else prints why, returns -1. */
long long cli_migration_arg(const char *s);
/* "/v1/migrations/M" + rest, or with the escaped account "/accounts/A" + rest
 * when account is not NULL; caller frees.  NULL on out of memory. */
char *cli_path(long long m, const char *account, const char *rest);
/* A JSON array of strings from argv[0..argc) (account names). */
json_t *cli_string_array(int argc, char **argv);
/* A positive integer argument (pass number, seconds, limits); -1 if not. */
long long cli_number_arg(const char *s);

#endif
