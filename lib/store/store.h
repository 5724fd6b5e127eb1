/* PostgreSQL store: the system of record (plans, accounts, leases, folder
 * checkpoints, batch intents, UID map runs, message errors, state log).
 *
 * A struct store wraps one connection and is used by one thread at a time.
 * All functions return 0 on success and a negative value on failure, with a
 * static or store-owned message in *error_r (valid until the next call on the
 * same store).  STORE_LEASE_LOST is returned by every fenced write whose lease
 * epoch no longer matches: the caller must stop working on the account. */
#ifndef MAILSHIFT_STORE_H
#define MAILSHIFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_LEASE_LOST (-2)

struct store;

int store_open(const char *conninfo, struct store **store_r, const char **error_r);
void store_close(struct store **store);

/* Applies the numbered schema migrations not applied yet (idempotent; safe with
 * several processes starting at once: serialised by an advisory lock). */
int store_schema_apply(struct store *st, const char **error_r);

/* Server settings of one side of a migration. Strings are owned by the caller
 * when passed in, by the struct (free with store_server_clear) when filled by
 * the store. */
struct store_server {
	int64_t id; /* filled by the store */
	char *host;
	int port;
	char *tls;	/* "implicit", "starttls" or "none" */
	char *ca_file;	/* NULL: system CAs */
	char *auth;	/* "login", "plain", "xoauth2" */
	char *master_user; /* authorization identity for PLAIN admin login, or NULL */
	int max_connections;
	char *prefix;	/* IMAP path prefix, "" if none */
	char *exclude;	/* comma separated folder names excluded from copy, "" if none */
};
void store_server_clear(struct store_server *srv);

/* An account to import, secrets already encrypted by lib/secret. */
struct store_new_account {
	const char *src_login, *dst_login;
	const unsigned char *src_secret, *dst_secret;
	size_t src_secret_len, dst_secret_len;
	int priority;
	int line; /* where it came from, for error texts */
};

/* Creates a migration with its source and destination server and all its
 * accounts in one transaction: on any failure nothing is stored, and the error
 * names the account (and its line) that failed. */
int store_migration_import(struct store *st, const char *name, const struct store_server *src,
			   const struct store_server *dst, const struct store_new_account *accounts,
			   size_t count, int64_t *id_r, const char **error_r);

/* Marks the accounts of a migration queued for pass `pass` and returns their ids
 * in priority order (caller frees *ids_r).  Only accounts whose credentials were
 * verified (or that were copied before) are scheduled; new, unverified,
 * auth_failed, verify_failed and cancelled accounts are left out. */
int store_pass_start(struct store *st, int64_t migration_id, int pass, int64_t **ids_r,
		     size_t *count_r, const char **error_r);

/* Everything a worker needs to run an account. Free with store_account_clear. */
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
	struct store_server src, dst;
};
void store_account_clear(struct store_account *acct);

/* Reads an account without taking its lease (credential verification). */
int store_account_get(struct store *st, int64_t account_id, struct store_account *acct_r,
		      const char **error_r);
/* The ids of a migration's accounts, in id order (caller frees *ids_r). */
int store_migration_accounts(struct store *st, int64_t migration_id, int64_t **ids_r,
			     size_t *count_r, const char **error_r);
/* Records a credential check: state "verified", "auth_failed" (credentials
 * refused) or "verify_failed" (server unreachable, TLS refused), with the
 * reason.  Accounts being copied or already copied keep their state. */
int store_account_verified(struct store *st, int64_t account_id, const char *state,
			   const char *reason, const char **error_r);

/* Takes the lease of an account for `owner` for ttl_s seconds, if it is free,
 * expired or already ours, and the account's requested pass is `pass` and not
 * finished.  On success *epoch_r is the new epoch (every later write is fenced by
 * it) and the account is filled in.  Returns 1 (not 0) when the lease is held by
 * another live owner or there is nothing to do: the job is to be dropped. */
int store_lease_take(struct store *st, int64_t account_id, int pass, const char *owner, int ttl_s,
		     int64_t *epoch_r, struct store_account *acct_r, const char **error_r);
/* Extends the lease; STORE_LEASE_LOST if it was taken over.  *stop_r tells
 * that an operator paused or cancelled the account: stop at the next
 * checkpoint. */
int store_lease_renew(struct store *st, int64_t account_id, int64_t epoch, int ttl_s,
		      bool *stop_r, const char **error_r);

struct store_job;

/* Operator control of one account (account_id) or of every account of a
 * migration (account_id 0): action "pause", "resume" or "cancel".  A running
 * account keeps its lease until its worker notices (at its next heartbeat)
 * and checkpoints.  Returns the jobs of the accounts that became queued again
 * (resume), for the caller to publish (caller frees *jobs_r). */
int store_accounts_control(struct store *st, int64_t migration_id, int64_t account_id,
			   const char *action, struct store_job **jobs_r, size_t *count_r,
			   const char **error_r);
/* Releases the lease and sets the account state ("synced", "failed", "queued",
 * "auth_failed", ...) with a reason written to the state log. */
int store_lease_release(struct store *st, int64_t account_id, int64_t epoch, const char *state,
			const char *reason, const char **error_r);

/* Checkpoint of one folder of an account, keyed by the source folder name. */
struct store_folder {
	int64_t id;
	char *src_name;	/* source mailbox name as the server spells it (modified UTF-7) */
	char *dst_name;
	uint32_t src_uidvalidity;
	uint32_t dst_uidvalidity;
	uint32_t high_water;	/* highest source UID copied or recorded as failed */
	uint64_t highest_modseq; /* source HIGHESTMODSEQ at the last completed sync, 0 = none */
	uint32_t src_uidnext;	 /* source UIDNEXT at the last completed sync */
	uint32_t src_messages;	 /* source EXISTS at the last completed sync */
	bool rematch;		 /* UIDVALIDITY changed: match by identity before copying */
	/* Open batch intent, if intent_dst_uidnext != 0. */
	uint32_t intent_dst_uidnext;
	uint32_t *intent_uids;
	size_t intent_count;
};
void store_folder_clear(struct store_folder *f);

/* Finds or creates the folder row (fenced). A new row starts at zero. */
int store_folder_get(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
		     const char *dst_name, struct store_folder *folder_r, const char **error_r);

/* Sets the folder's UIDVALIDITYs, resets high water and modseq, and sets the
 * rematch mark (used for a new folder, and with rematch after a UIDVALIDITY
 * change, in which case the UID map is cleared in the same transaction). */
int store_folder_reset(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       uint32_t src_uidvalidity, uint32_t dst_uidvalidity, bool rematch,
		       const char **error_r);

/* Step (a) of the batch protocol: records the batch's source UIDs and the
 * destination UIDNEXT before it. */
int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       uint32_t dst_uidnext, const uint32_t *uids, size_t count,
		       const char **error_r);

/* One source -> destination UID pair. */
struct store_uidpair {
	uint32_t src;
	uint32_t dst;
};

/* A message the destination refused, with the server's words. */
struct store_msg_error {
	uint32_t src_uid;
	const char *error;
};

/* Step (c): in one transaction stores the pairs as runs, records the errors,
 * sets high_water, adds `appended` messages and `bytes` to the folder's copy
 * counters (pairs found by re-matching are not copies), and clears the intent.
 * pairs sorted by src. */
int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       const struct store_uidpair *pairs, size_t npairs,
		       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
		       size_t appended, uint64_t bytes, const char **error_r);

/* Records the folder as synced at this source state (UIDNEXT, EXISTS,
 * HIGHESTMODSEQ) and clears the rematch mark. */
int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
			uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
			const char **error_r);

/* Looks up destination UIDs for the source UIDs (sorted ascending); unmapped
 * entries get 0. */
int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids,
			size_t count, uint32_t *dst_uids_r, const char **error_r);
/* Removes all runs of the folder (fenced). */
int store_uidmap_clear(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
		       const char **error_r);

/* Records an account-level error (auth failure, connection error) in the
 * account's last_error and the state log. */
int store_account_error(struct store *st, int64_t account_id, int64_t epoch, const char *error,
			const char **error_r);

/* A job the scheduler owes to the queue. */
struct store_job {
	int64_t migration_id, account_id;
	int pass;
};

/* The scheduler's step, for the active coordinator only:
 *  1. accounts whose lease expired (a worker died or froze), and failed
 *     accounts whose retry time came while their error budget lasts, go back
 *     to "queued", with the reason in the state log (*reaped_r counts them);
 *  2. up to `limit` queued accounts that are owed a job (never published, or
 *     published more than `republish_s` seconds ago and still not taken), in
 *     priority order, are marked published and returned (caller frees *jobs_r).
 * A job published twice is harmless: the lease takes it once. */
int store_schedule_step(struct store *st, size_t limit, int republish_s, size_t *reaped_r,
			struct store_job **jobs_r, size_t *count_r, const char **error_r);
/* Marks jobs as published (the `pass` command publishes them itself). */
int store_jobs_published(struct store *st, const int64_t *account_ids, size_t count,
			 const char **error_r);

/* Tries to become the active scheduler: a session-level advisory lock held as
 * long as this connection lives.  Returns 1 if taken, 0 if another
 * coordinator holds it. */
int store_scheduler_lock(struct store *st, const char **error_r);

/* Connection budgets: a server allows max_connections slots across the whole
 * fleet.  A slot is held as an expiring lease by `owner` (an account run) and
 * renewed with its heartbeat; a dead or frozen holder's slot frees itself.
 * store_slot_take returns 1 (not 0) when every slot is taken. */
int store_slot_take(struct store *st, int64_t server_id, const char *owner, int ttl_s,
		    int *slot_r, const char **error_r);
int store_slot_release(struct store *st, int64_t server_id, int slot, const char *owner,
		       const char **error_r);
int store_slots_renew(struct store *st, const char *owner, int ttl_s, const char **error_r);

/* One account's progress, for status and reports (strings valid during the
 * callback only). */
struct store_account_status {
	int64_t id;
	const char *src_login, *dst_login, *state, *last_error;
	int pass, pass_done;
	int64_t folders, messages, bytes, failed_messages;
};
typedef void store_status_cb(const struct store_account_status *row, void *context);
/* Calls cb for each account of the migration, in id order. */
int store_migration_status(struct store *st, int64_t migration_id, store_status_cb *cb,
			   void *context, const char **error_r);

#endif
