/* The operator's actions, shared by the coordinator's commands and the HTTP
 * API: each computes and stores, and the caller presents the result (the
 * command prints it, the API renders it as JSON).  Errors go to the caller's
 * buffer, never to stdout; a negative OPS_* code says what kind they are. */
#ifndef MAILSHIFT_OPS_H
#define MAILSHIFT_OPS_H

#include "plan.h"
#include "store-conn.h"
#include "verifier.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPS_FAILED (-1)    /* the store, the key, the broker: err says */
#define OPS_INVALID (-2)   /* the input was refused: err names what */
#define OPS_NOT_FOUND (-3) /* no such migration, account or pass */
#define OPS_CONFLICT (-4)  /* not possible in the current state: err says why */

/* What an action runs with.  brokers NULL: the jobs owed are left to the
 * scheduler (`run` publishes them within its next step). */
struct ops {
	struct store *st;
	const char *db; /* conninfo, for the verifier's own connections */
	const char *brokers;
	const char *key_file;
	const char *actor; /* recorded with state changes the verifier makes */
};

/* A plan and all its accounts in one transaction: *mid_r. */
int ops_import(const struct ops *o, const struct plan *plan, int64_t *mid_r, char *err,
               size_t errlen);
/* A plan holding the migration's source profiles and no accounts, for
 * parsing an accounts CSV to add (free with plan_destroy). */
int ops_migration_plan(const struct ops *o, int64_t mid, struct plan **plan_r, char *err,
                       size_t errlen);
/* Adds plan's accounts (parsed against ops_migration_plan's profiles) in one
 * transaction; *ids_r (caller frees) their ids in plan order. */
int ops_accounts_add(const struct ops *o, int64_t mid, const struct plan *plan, int64_t **ids_r,
                     char *err, size_t errlen);

/* Checks the credentials of the migration's accounts (all, or ids). */
int ops_verify(const struct ops *o, int64_t mid, const int64_t *ids, size_t n,
               struct verifier_counts *counts_r, char *err, size_t errlen);
/* After new or repaired credentials: verifies those accounts and lets the
 * verified ones join the migration's current pass (*pass_r, 0: none yet;
 * *joined_r counts them). */
int ops_verify_join(const struct ops *o, int64_t mid, const int64_t *ids, size_t n,
                    struct verifier_counts *counts_r, int *pass_r, size_t *joined_r, char *err,
                    size_t errlen);
/* New password for side "source", "destination" or "both" of an account,
 * then ops_verify_join.  The password is not kept. */
int ops_passwd(const struct ops *o, int64_t mid, int64_t account_id, const char *side,
               const char *password, struct verifier_counts *counts_r, int *pass_r,
               size_t *joined_r, char *err, size_t errlen);
/* Cancels the account, waits up to wait_s for a worker copying it to stop,
 * then removes it (its copied mail stays).  OPS_CONFLICT if a worker still
 * holds it (*holder the worker). */
int ops_remove(const struct ops *o, int64_t mid, int64_t account_id, int wait_s, char *err,
               size_t errlen);
/* pause, resume or cancel every account of the migration (account_id 0) or
 * one; publishes what became queued. */
int ops_control(const struct ops *o, int64_t mid, int64_t account_id, const char *action,
                size_t *changed_r, size_t *unchanged_r, char *err, size_t errlen);
/* Queues pass `pass` (kind bulk, delta, final) for the migration's accounts
 * or ids, and publishes what the budgets allow now.  No account to run is
 * OPS_CONFLICT with the reason (accounts not verified yet, ...). */
int ops_pass_queue(const struct ops *o, int64_t mid, int pass, const char *kind, const int64_t *ids,
                   size_t n, size_t *queued_r, char *err, size_t errlen);
/* The next pass number for a kind: 1 for bulk (OPS_CONFLICT once a pass
 * ran), the last + 1 for delta and final (OPS_CONFLICT before a first). */
int ops_pass_next(const struct ops *o, int64_t mid, const char *kind, int *pass_r, char *err,
                  size_t errlen);
/* Runs again the accounts of pass `pass` that failed it (all, or those of
 * ids): refused credentials are verified first; synced accounts never run
 * again.  *requeued_r counts the accounts queued. */
int ops_retry(const struct ops *o, int64_t mid, int pass, const int64_t *ids, size_t n,
              size_t *requeued_r, char *err, size_t errlen);

/* Where a pass stands: accounts scheduled for it, synced, and ended
 * (synced, refused, cancelled, failed with no retry left). */
struct ops_pass_tally {
	int total, synced, ended;
};
int ops_pass_tally(const struct ops *o, int64_t mid, int pass, struct ops_pass_tally *t, char *err,
                   size_t errlen);

#endif
