/* What the files the coordinator's commands are cut into share (commands.h
 * is the interface main uses):
 *   commands.c          the table, argument checks, usage; import, verify,
 *                       step, run; the id and secret helpers
 *   commands-pass.c     pass, start, delta, passes, wait, status; publishing
 *   commands-account.c  pause, resume, cancel, add, passwd, remove
 *   commands-inspect.c  estimate, proof, empty-destination (inspect.h)
 * Helpers print their errors (to stderr, or the log where said). */
#ifndef MAILSHIFT_COMMANDS_PRIVATE_H
#define MAILSHIFT_COMMANDS_PRIVATE_H

#include "account.h"
#include "commands.h"
#include "ops.h"
#include "secret.h"
#include "store-account.h"
#include "store-conn.h"
#include "store-lease.h"
#include "store-pass.h"
#include "store-plan.h"
#include "store-schedule.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The options and store as the shared actions (ops.h) take them; the
 * commands act as "command" in the accounts' history. */
struct ops command_ops(const struct command_ctx *c);

/* Seconds after which a job published but not taken is published again. */
#define REPUBLISH_S 300

/* A positive integer argument: 0, or -1 with the error printed. */
int command_parse_id(const char *s, const char *what, int64_t *v_r);

/* An account argument: a source login or an id; -1 with the error printed. */
int command_account_arg(struct store *st, int64_t mid, const char *which, int64_t *id_r);

/* Resolves account arguments (source logins or ids); caller frees *ids_r. */
int command_resolve_accounts(struct store *st, int64_t mid, char **names, int n, int64_t **ids_r);

/* Proves the accounts whose final pass ended, in a thread beside the
 * scheduler (coordinator run) until *stop is set; stop joins it. */
struct final_proofs;
struct final_proofs *command_final_proofs_start(const struct command_options *o,
                                                volatile sig_atomic_t *stop);
void command_final_proofs_stop(struct final_proofs **fp);

/* The handlers of the other files, as in struct command. */
int cmd_pass(struct command_ctx *c, int argc, char **argv);
int cmd_start(struct command_ctx *c, int argc, char **argv);
int cmd_delta(struct command_ctx *c, int argc, char **argv);
int cmd_passes(struct command_ctx *c, int argc, char **argv);
int cmd_wait(struct command_ctx *c, int argc, char **argv);
int cmd_status(struct command_ctx *c, int argc, char **argv);
int cmd_control(struct command_ctx *c, int argc, char **argv);
int cmd_add(struct command_ctx *c, int argc, char **argv);
int cmd_passwd(struct command_ctx *c, int argc, char **argv);
int cmd_remove(struct command_ctx *c, int argc, char **argv);
int cmd_estimate(struct command_ctx *c, int argc, char **argv);
int cmd_proof(struct command_ctx *c, int argc, char **argv);
int cmd_empty_destination(struct command_ctx *c, int argc, char **argv);

#endif
