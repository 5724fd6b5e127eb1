/* PostgreSQL store: the system of record (plans, accounts, leases, folder
 * checkpoints, batch intents, UID map runs, message errors, state log).
 *
 * A struct store wraps one connection and is used by one thread at a time.
 * All functions return 0 on success and a negative value on failure, with the
 * error text in the caller's buffer err (errlen bytes; STORE_ERRLEN carries
 * every text whole).  STORE_LEASE_LOST is returned by every fenced write whose
 * lease epoch no longer matches: the caller must stop working on the account. */
#ifndef MAILSHIFT_STORE_H
#define MAILSHIFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: -1 is any failure (see err); the store's named codes are in
 * -20..-29, apart from lib/imap's (-2..-9), lib/queue's (-30..-39), lib/account's
 * (-40..-49) and lib/secret's (-50..-59) (tests/unit/test_codes.c). */
#define STORE_LEASE_LOST (-20)
/* An err buffer of this size carries any store error text whole. */
#define STORE_ERRLEN 768

struct store;

int store_open(const char *conninfo, struct store **store_r, char *err, size_t errlen);
void store_close(struct store **store);

/* Applies the numbered schema migrations not applied yet (idempotent; safe with
 * several processes starting at once: serialised by an advisory lock). */
int store_schema_apply(struct store *st, char *err, size_t errlen);

/* store_key_check_get's results besides a negative error. */
enum store_key_check_result {
	STORE_KEY_CHECK_FOUND = 0, /* *check_r and *key_id_r are set */
	STORE_KEY_CHECK_NONE = 1,  /* no key check stored yet */
};
/* The key check of this database (see lib/secret): *check_r (caller frees)
 * and *key_id_r (caller frees), or STORE_KEY_CHECK_NONE. */
int store_key_check_get(struct store *st, unsigned char **check_r, size_t *len_r, char **key_id_r,
                        char *err, size_t errlen);
/* Stores the key check if none is stored (a concurrent first one wins);
 * callers read it back with store_key_check_get. */
int store_key_check_put(struct store *st, const unsigned char *check, size_t len,
                        const char *key_id, char *err, size_t errlen);

/* A blackout window of a server: no account using the server starts inside
 * it, and running ones stop at their next checkpoint. */
struct store_blackout {
	int weekdays;     /* bit 0 = Monday ... bit 6 = Sunday */
	int from_s, to_s; /* seconds after local midnight; from >= to runs over midnight */
	char *time_zone;  /* IANA name, "UTC" */
};

/* Server settings of one side of a migration. Strings are owned by the caller
 * when passed in, by the struct (free with store_server_clear) when filled by
 * the store. */
struct store_server {
	int64_t id; /* filled by the store */
	char *name; /* profile name: several source profiles per migration */
	char *host;
	int port;
	char *tls;         /* "implicit", "starttls" or "none" */
	char *ca_file;     /* NULL: system CAs */
	char *auth;        /* "login", "plain", "xoauth2" */
	char *master_user; /* authorization identity for PLAIN admin login, or NULL */
	int max_connections;
	char *prefix;       /* IMAP path prefix, "" if none */
	char *exclude;      /* comma separated folder names excluded from copy, "" if none */
	int rate_messages;  /* messages/s across the whole fleet, 0 = no limit */
	int64_t rate_bytes; /* bytes/s across the whole fleet, 0 = no limit */
	int64_t account_daily_bytes; /* bytes per account per UTC day, 0 = no cap */
	struct store_blackout *blackouts;
	size_t nblackouts;
};
void store_server_clear(struct store_server *srv);

/* An account to import, secrets already encrypted by lib/secret. */
struct store_new_account {
	const char *src_login, *dst_login;
	const unsigned char *src_secret, *dst_secret;
	size_t src_secret_len, dst_secret_len;
	int priority;
	size_t source; /* index of its source profile */
	int line;      /* where it came from, for error texts */
};

/* Creates a migration with its source profiles, its destination and all its
 * accounts in one transaction: on any failure nothing is stored, and the error
 * names the account (and its line) or the server setting that failed. */
int store_migration_import(struct store *st, const char *name, const struct store_server *srcs,
                           size_t nsrcs, const struct store_server *dst,
                           const struct store_new_account *accounts, size_t count, int64_t *id_r,
                           char *err, size_t errlen);
/* Adds accounts to an existing migration in one transaction (a duplicate of
 * an account already there fails it all, naming the line).  Sources are
 * indexes into the migration's source profiles as store_migration_sources
 * lists them. */
int store_accounts_add(struct store *st, int64_t migration_id,
                       const struct store_new_account *accounts, size_t count, char *err,
                       size_t errlen);
/* The migration's source profiles (id, name and settings), in creation order;
 * free each with store_server_clear and the array with free. */
int store_migration_sources(struct store *st, int64_t migration_id, struct store_server **srcs_r,
                            size_t *count_r, char *err, size_t errlen);

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
	int64_t day_bytes; /* moved on the current UTC day (daily caps) */
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

/* What store_lease_take and store_slot_take return besides a negative error. */
enum store_take_result {
	STORE_TAKEN = 0, /* the lease or slot is ours */
	/* The lease is held by another live owner or there is nothing to do (the
	 * job is to be dropped); every slot of the server is taken. */
	STORE_BUSY = 1,
};

/* Takes the lease of an account for `owner` for ttl_s seconds, if it is free,
 * expired or already ours, and the account's requested pass is `pass` and not
 * finished.  On success *epoch_r is the new epoch (every later write is fenced by
 * it) and the account is filled in: STORE_TAKEN.  STORE_BUSY when the lease is
 * held by another live owner or there is nothing to do: the job is to be dropped. */
int store_lease_take(struct store *st, int64_t account_id, int pass, const char *owner, int ttl_s,
                     int64_t *epoch_r, struct store_account *acct_r, char *err, size_t errlen);
/* Extends the lease; STORE_LEASE_LOST if it was taken over.  *stop_r is
 * NULL, or why to stop at the next checkpoint: an operator paused or
 * cancelled the account, or a blackout window of one of its servers began. */
int store_lease_renew(struct store *st, int64_t account_id, int64_t epoch, int ttl_s,
                      const char **stop_r, char *err, size_t errlen);

struct store_job;

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
/* Releases the lease and sets the account state ("synced", "failed", "queued",
 * "auth_failed", ...) with a reason written to the state log.  An account
 * whose next pass was requested while it ran is queued for it. */
int store_lease_release(struct store *st, int64_t account_id, int64_t epoch, const char *state,
                        const char *reason, char *err, size_t errlen);
/* Releases the lease with the account "waiting" (not an error): the scheduler
 * queues it again after wait_s seconds, or at the next UTC midnight for -1
 * (a daily byte cap). */
int store_lease_wait(struct store *st, int64_t account_id, int64_t epoch, int wait_s,
                     const char *reason, char *err, size_t errlen);

/* Checkpoint of one folder of an account, keyed by the source folder name. */
struct store_folder {
	int64_t id;
	char *src_name; /* source mailbox name as the server spells it (modified UTF-7) */
	char *dst_name;
	uint32_t src_uidvalidity;
	uint32_t dst_uidvalidity;
	uint32_t high_water;     /* highest source UID copied or recorded as failed */
	uint64_t highest_modseq; /* source HIGHESTMODSEQ at the last completed sync, 0 = none */
	uint32_t src_uidnext;    /* source UIDNEXT at the last completed sync */
	uint32_t src_messages;   /* source EXISTS at the last completed sync */
	bool rematch;            /* UIDVALIDITY changed: match by identity before copying */
	/* Open batch intent, if intent_dst_uidnext != 0. */
	uint32_t intent_dst_uidnext;
	uint32_t *intent_uids;
	size_t intent_count;
};
void store_folder_clear(struct store_folder *f);

/* Finds or creates the folder row (fenced). A new row starts at zero. */
int store_folder_get(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                     const char *dst_name, struct store_folder *folder_r, char *err, size_t errlen);

/* Sets the folder's UIDVALIDITYs, resets high water and modseq, and sets the
 * rematch mark (used for a new folder, and with rematch after a UIDVALIDITY
 * change, in which case the UID map is cleared in the same transaction). */
int store_folder_reset(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t src_uidvalidity, uint32_t dst_uidvalidity, bool rematch, char *err,
                       size_t errlen);

/* Step (a) of the batch protocol (docs/DESIGN.md, "2. Copy of a folder: the
 * batch protocol"): records the batch's source UIDs and the destination
 * UIDNEXT before it. */
int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t dst_uidnext, const uint32_t *uids, size_t count, char *err,
                       size_t errlen);

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

/* The next batch's intent, written by the commit of the one before it. */
struct store_intent {
	uint32_t dst_uidnext; /* a lower bound of the UIDs its APPENDs get */
	const uint32_t *uids; /* its source UIDs, ascending */
	size_t count;
};

/* Batch protocol: docs/DESIGN.md, "2. Copy of a folder: the batch protocol".
 * Step (c): in one transaction stores the pairs as runs, records the errors,
 * sets high_water, adds `appended` messages and `bytes` to the folder's copy
 * counters (pairs found by re-matching are not copies: `matched` counts those
 * the destination already held), and clears the intent -- or, with next,
 * writes the next batch's intent in its place (its step (a), one commit
 * instead of two).  pairs sorted by src. */
int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       const struct store_uidpair *pairs, size_t npairs,
                       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
                       size_t appended, uint64_t bytes, size_t matched,
                       const struct store_intent *next, char *err, size_t errlen);

/* Records that a folder failed in this pass (fenced): the command and the
 * server's words in `error` (no secret in it).  Creates the folder row if the
 * folder never got one (dst_name NULL: not mapped).  The account goes on with
 * its other folders; store_folder_synced clears the error. */
int store_folder_error(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                       const char *dst_name, const char *error, char *err, size_t errlen);
/* The folders of a migration (or of account_id if not 0) whose last try
 * failed, by account and name (strings valid during the callback). */
typedef void store_folder_error_cb(int64_t account_id, const char *src_name, const char *error,
                                   void *context);
int store_folder_errors(struct store *st, int64_t migration_id, int64_t account_id,
                        store_folder_error_cb *cb, void *context, char *err, size_t errlen);

/* Records the folder as synced at this source state (UIDNEXT, EXISTS,
 * HIGHESTMODSEQ) and clears the rematch mark. */
int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                        uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
                        char *err, size_t errlen);

/* Looks up destination UIDs for the source UIDs (sorted ascending); unmapped
 * entries get 0. */
int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids, size_t count,
                        uint32_t *dst_uids_r, char *err, size_t errlen);
/* The lowest mapped source UID >= from, or 0 in *uid_r when none. */
int store_uidmap_next(struct store *st, int64_t folder_id, uint32_t from, uint32_t *uid_r,
                      char *err, size_t errlen);
/* Removes all runs of the folder (fenced). */
int store_uidmap_clear(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       char *err, size_t errlen);

/* Records an account-level error (auth failure, connection error) in the
 * account's last_error and the state log. */
int store_account_error(struct store *st, int64_t account_id, int64_t epoch, const char *error,
                        char *err, size_t errlen);

/* A job the scheduler owes to the queue. */
struct store_job {
	int64_t migration_id, account_id;
	int pass;
	int attempt; /* how many times the account's job was published */
};

/* store_scheduler_lock's results besides a negative error. */
enum store_lock_result {
	STORE_LOCK_ELSEWHERE = 0, /* another coordinator holds it */
	STORE_LOCK_TAKEN = 1,     /* ours as long as this connection lives */
};
/* Tries to become the active scheduler: a session-level advisory lock held as
 * long as this connection lives. */
int store_scheduler_lock(struct store *st, char *err, size_t errlen);

/* Connection budgets: a server allows max_connections slots across the whole
 * fleet.  A slot is held as an expiring lease by `owner` (an account run) and
 * renewed with its heartbeat; a dead or frozen holder's slot frees itself.
 * store_slot_take returns STORE_TAKEN with *slot_r, or STORE_BUSY when every
 * slot is taken. */
int store_slot_take(struct store *st, int64_t server_id, const char *owner, int ttl_s, int *slot_r,
                    char *err, size_t errlen);
int store_slot_release(struct store *st, int64_t server_id, int slot, const char *owner, char *err,
                       size_t errlen);
int store_slots_renew(struct store *st, const char *owner, int ttl_s, char *err, size_t errlen);

/* One account's progress, for status and reports (strings valid during the
 * callback only). */
struct store_account_status {
	int64_t id;
	const char *src_login, *dst_login, *state, *last_error;
	int pass, pass_done;
	int64_t folders, messages, bytes, failed_messages;
	const char *retry_at;  /* when a failed or waiting account runs again, or ""
	                        * (a failed one past its error budget: never) */
	int64_t live_messages; /* this pass so far, from workers' events; -1 none yet */
	int64_t live_bytes;
	int64_t failed_folders; /* folders whose last try failed (store_folder_errors) */
	int64_t matched;        /* messages found already in the destination, mapped */
};
typedef void store_status_cb(const struct store_account_status *row, void *context);
/* Calls cb for each account of the migration (or only account_id if not 0),
 * in id order. */
int store_migration_status(struct store *st, int64_t migration_id, int64_t account_id,
                           store_status_cb *cb, void *context, char *err, size_t errlen);

/* ---- fleet.c: passes, scheduling, rates, live totals, account management ---- */

/* Starts pass `pass` (kind "bulk", "delta" or "final") for the migration's
 * accounts, or only for account_ids when not NULL: verified accounts and
 * those copied or tried before are queued; new, unverified, refused and
 * cancelled ones are left out; a running account finishes its pass first and
 * a paused one runs this pass when resumed.  The pass is recorded with a row
 * per account for its counts and timings.  *queued_r counts the accounts;
 * when it is 0 nothing is recorded. */
int store_pass_start(struct store *st, int64_t migration_id, int pass, const char *kind,
                     const int64_t *account_ids, size_t naccounts, size_t *queued_r, char *err,
                     size_t errlen);
/* 0 if the migration exists (and, with pass > 0, has that pass); else -1
 * with "migration M does not exist" or "pass N of migration M does not exist". */
int store_migration_exists(struct store *st, int64_t migration_id, int pass, char *err,
                           size_t errlen);
/* The migration's accounts by state ("2 new, 1 auth_failed") into buf, and
 * the counts of new and verified ones. */
int store_migration_states(struct store *st, int64_t migration_id, char *buf, size_t len,
                           int64_t *new_r, int64_t *verified_r, char *err, size_t errlen);
/* One warning line per server of the migration whose tls is "none" (its
 * passwords travel in clear) into buf, "" if none. */
int store_migration_cleartext(struct store *st, int64_t migration_id, char *buf, size_t len,
                              char *err, size_t errlen);
/* The highest pass started in the migration (0: none). */
int store_pass_last(struct store *st, int64_t migration_id, int *pass_r, char *err, size_t errlen);

/* Marks up to `limit` queued accounts published (of one migration, or all for
 * 0) and returns their jobs in priority order (caller frees *jobs_r).  Metered:
 * a server never has more accounts in flight (running, or published and not
 * taken within republish_s) than its max_connections, and nothing is
 * published for an account whose source or destination is inside a blackout
 * window.  A job published twice is harmless: the lease takes it once. */
int store_publish_due(struct store *st, int64_t migration_id, size_t limit, int republish_s,
                      struct store_job **jobs_r, size_t *count_r, char *err, size_t errlen);

/* The scheduler's housekeeping, for the active coordinator only: accounts
 * whose lease expired (a worker died or froze), failed accounts whose retry
 * time came while their error budget lasts, and waiting accounts (a daily cap
 * or a throttling server) whose time came go back to "queued", with the
 * reason in the state log.  *requeued_r counts them. */
int store_schedule_step(struct store *st, size_t *requeued_r, char *err, size_t errlen);
/* A worker's beat: its capacity and the accounts it runs (seen_at = now),
 * waking the scheduler when room_freed; gone removes it.  The scheduler publishes no more jobs than
 * the live workers have room for (when none has beaten lately, budgets alone decide: workers may be
 * about to start). */
int store_worker_beat(struct store *st, const char *worker, int capacity, int running,
                      bool room_freed, char *err, size_t errlen);
int store_worker_gone(struct store *st, const char *worker, char *err, size_t errlen);
/* When `worker` beat last (seconds since the epoch, with fractions) if that
 * was lately enough to count as live for the scheduler; else *seen_r = 0. */
int store_worker_seen(struct store *st, const char *worker, double *seen_r, char *err,
                      size_t errlen);
/* Jobs handed back, still queued: owed again, published at the scheduler's
 * next step (to another partition) instead of counting as in flight until
 * republished.  A worker at capacity declines a job this way, a worker that
 * could not reach PostgreSQL hands back the jobs it could not start, and the
 * scheduler marks what did not reach Kafka. */
int store_jobs_owed(struct store *st, const int64_t *account_ids, size_t count, char *err,
                    size_t errlen);

/* Scheduler wake-ups: a pass started or an account released notifies. */
int store_listen(struct store *st, char *err, size_t errlen);
/* Waits up to timeout_ms for a notification: 1 if one came, 0 if not. */
int store_wait_notify(struct store *st, int timeout_ms, char *err, size_t errlen);

/* Fleet-wide rate limits: reserves a batch of messages and bytes against the
 * server's limits; *wait_s_r is how long to wait before sending it (0: now).
 * A server that asked to slow down has its clock moved by store_rate_penalty,
 * which every worker then waits for. */
int store_rate_reserve(struct store *st, int64_t server_id, bool limited, size_t messages,
                       uint64_t bytes, double *wait_s_r, char *err, size_t errlen);
int store_rate_penalty(struct store *st, int64_t server_id, int secs, char *err, size_t errlen);

/* Passes of a migration with their totals (strings valid during the
 * callback); seconds is -1 while some account has not finished. */
struct store_pass_row {
	int number;
	const char *kind, *started_at;
	int64_t accounts, synced, messages, bytes, failed;
	int64_t failed_folders, matched;
	double seconds;
};
typedef void store_pass_cb(const struct store_pass_row *row, void *context);
int store_passes(struct store *st, int64_t migration_id, store_pass_cb *cb, void *context,
                 char *err, size_t errlen);
/* One pass, per account: its state, runs (leases taken), start, duration
 * (-1 unfinished) and what it copied. */
struct store_pass_account_row {
	int64_t account_id;
	const char *src_login, *state, *started_at;
	int runs;
	double seconds;
	int64_t folders, messages, bytes, failed;
	int64_t failed_folders, matched;
};
typedef void store_pass_account_cb(const struct store_pass_account_row *row, void *context);
int store_pass_accounts(struct store *st, int64_t migration_id, int pass, store_pass_account_cb *cb,
                        void *context, char *err, size_t errlen);

/* Live totals kept by the coordinator from workers' events (an account's
 * messages, bytes and errors so far in its current pass). */
struct store_live {
	int64_t account_id;
	int pass;
	uint64_t messages, bytes, errors;
	const char *worker, *folder;
};
int store_live_update(struct store *st, const struct store_live *rows, size_t count, char *err,
                      size_t errlen);

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
