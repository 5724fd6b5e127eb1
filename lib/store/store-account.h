/* Accounts one by one, for the coordinator's operator commands and the
 * verifier (lib/store/account.c); struct store_account is also what a lease
 * take fills in (store-lease.h).  Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_ACCOUNT_H
#define MAILSHIFT_STORE_ACCOUNT_H

#include "store-plan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything a worker needs to run an account. Free with store_account_clear.
 * Callers pass it zeroed: the store fills in what it reads (not the servers'
 * blackouts), and store_account_clear frees every field. */
struct store_account {
	int64_t id;
	int64_t migration_id;
	char *src_login;
	unsigned char *src_secret;
	size_t src_secret_len;
	char *dst_login;
	unsigned char *dst_secret;
	size_t dst_secret_len;
	char *state;
	int pass;
	int64_t day_bytes;  /* moved on the current UTC day (daily caps) */
	char *folder_rules; /* its own folder renames, before its source profile's; "" if none */
	struct store_server src, dst;
};
void store_account_clear(struct store_account *acct);

/* Reads an account without taking its lease (credential verification). */
int store_account_get(struct store *st, int64_t account_id, struct store_account *acct_r, char *err,
                      size_t errlen);
/* The ids of a migration's accounts, in id order (caller frees *ids_r). */
int store_migration_accounts(struct store *st, int64_t migration_id, int64_t **ids_r,
                             size_t *count_r, char *err, size_t errlen);
/* Records a credential check: state "verified", "auth_failed" (credentials
 * refused) or "verify_failed" (server unreachable, TLS refused), with the
 * reason.  Accounts being copied or already copied keep their state. */
int store_account_verified(struct store *st, int64_t account_id, const char *state,
                           const char *reason, char *err, size_t errlen);

struct store_job; /* store-schedule.h */

/* Operator control of one account (account_id) or of every account of a
 * migration (account_id 0): action "pause", "resume" or "cancel".  A running
 * account keeps its lease until its worker notices (at its next heartbeat)
 * and checkpoints.  Cancel leaves finished accounts (synced, done, cancelled,
 * failed with no retry left) as they are; resume also queues the failed
 * accounts of their current pass again with a fresh error budget.  Returns
 * the jobs of the accounts that became queued (caller frees *jobs_r), how
 * many accounts changed and how many were left as they were. */
int store_accounts_control(struct store *st, int64_t migration_id, int64_t account_id,
                           const char *action, struct store_job **jobs_r, size_t *count_r,
                           size_t *changed_r, size_t *unchanged_r, char *err, size_t errlen);

/* An account of the migration by source login (case-insensitive) or id. */
int store_account_find(struct store *st, int64_t migration_id, const char *which,
                       int64_t *account_id_r, char *err, size_t errlen);
/* Replaces the encrypted secret of side "source" or "destination"; a refused
 * account goes back to "new", to be checked again. */
int store_account_secret(struct store *st, int64_t account_id, const char *side,
                         const unsigned char *secret, size_t len, char *err, size_t errlen);
/* Removes the account with its checkpoints (its copied mail stays). */
int store_account_remove(struct store *st, int64_t account_id, char *err, size_t errlen);
/* Whether a worker holds the account's lease now (a lease not expired): its
 * owner's name into owner (cut to ownerlen), "" when none. */
int store_account_lease_holder(struct store *st, int64_t account_id, char *owner, size_t ownerlen,
                               char *err, size_t errlen);

#endif
