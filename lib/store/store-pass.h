/* Passes and reports (lib/store/pass.c): a pass started for a migration's
 * accounts, and what status, passes and wait show; live totals from
 * workers' events.  Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_PASS_H
#define MAILSHIFT_STORE_PASS_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* The accounts of pass `pass` whose run of it failed (failed, even with a
 * retry to come) or whose credentials were refused (auth_failed,
 * verify_failed: (*refused_r)[i]), of those in only[0..nonly) when only is
 * not NULL; synced ones never.  Caller frees both arrays. */
int store_pass_failed(struct store *st, int64_t migration_id, int pass, const int64_t *only,
                      size_t nonly, int64_t **ids_r, bool **refused_r, size_t *count_r, char *err,
                      size_t errlen);
/* The highest pass started in the migration (0: none). */
int store_pass_last(struct store *st, int64_t migration_id, int *pass_r, char *err, size_t errlen);

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
	int64_t filtered;       /* messages the source profile's filters left out */
	const char *updated_at; /* the last change of the account's row, RFC 3339 UTC */
	const char *live_worker, *live_folder; /* of the live totals, "" none */
};
typedef void store_status_cb(const struct store_account_status *row, void *context);
/* Calls cb for each account of the migration (or only account_id if not 0),
 * in id order: what `status` prints and the API lists. */
int store_migration_status(struct store *st, int64_t migration_id, int64_t account_id,
                           store_status_cb *cb, void *context, char *err, size_t errlen);
/* The same for a page of accounts: only those in state (NULL: any) whose
 * source login holds q (any case; NULL: any), with ids above after, at most
 * limit (0: all). */
struct store_status_filter {
	int64_t account_id;
	const char *state, *q;
	int64_t after;
	int limit;
};
int store_migration_status_page(struct store *st, int64_t migration_id,
                                const struct store_status_filter *f, store_status_cb *cb,
                                void *context, char *err, size_t errlen);

/* The folders of a migration (or of account_id if not 0) whose last try
 * failed, by account and name (strings valid during the callback). */
typedef void store_folder_error_cb(int64_t account_id, const char *src_name, const char *error,
                                   void *context);
int store_folder_errors(struct store *st, int64_t migration_id, int64_t account_id,
                        store_folder_error_cb *cb, void *context, char *err, size_t errlen);

/* Passes of a migration with their totals (strings valid during the
 * callback; times RFC 3339 UTC); seconds is -1 while some account is not
 * synced.  `passes` prints them, the API renders them. */
struct store_pass_row {
	int number;
	const char *kind, *started_at;
	const char *finished_at; /* when the last account finished, "" until all did */
	const char *states;      /* JSON object: the pass's accounts by state */
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
	const char *src_login, *state, *started_at; /* "" not started */
	const char *queued_at, *finished_at;        /* "" not finished */
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
	/* Copied since the previous update: added to the migration's
	 * throughput of the current minute. */
	uint64_t new_messages, new_bytes;
};
int store_live_update(struct store *st, const struct store_live *rows, size_t count, char *err,
                      size_t errlen);

#endif
