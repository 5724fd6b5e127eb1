/* Copy of one account for one pass: folders discovered and mapped, then each
 * folder synced incrementally with the crash-safe batch protocol of
 * docs/DESIGN.md ("2. Copy of a folder: the batch protocol").  Runs in the
 * calling thread plus up to `folder_threads` helper threads, each with its own
 * IMAP sessions and store connection. */
#ifndef MAILSHIFT_SYNC_H
#define MAILSHIFT_SYNC_H

#include "secret.h"
#include "store-account.h"

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct sync_stats;

struct sync_config {
	const char *db_conninfo;
	const struct secret_key *key;
	int sharing;        /* accounts the worker copies at once now (>= 1): with
	                     * folder_threads 0 they share WORKER_FOLDER_THREADS */
	int folder_threads; /* parallel folders per account (within max_connections);
	                     * 0: from the servers' budgets */
	size_t batch_count; /* messages per APPEND batch */
	size_t batch_bytes; /* bytes per batch (bounds the memory of a folder thread) */
	uint32_t window;    /* UIDs per metadata window */
	/* A folder's first copy with at least this many messages goes in two
	 * streams (lanes.c); 0: never (the destination's UIDs then keep the
	 * source's order). */
	uint32_t split_min;
	int lease_ttl_s;
	const char *ca_file;         /* extra CA file for every server, or NULL */
	const char *tmpdir;          /* large messages are spooled here, nowhere else */
	volatile sig_atomic_t *stop; /* set by SIGTERM: checkpoint and return */
	/* Process-wide: when non-zero every IMAP wait of every session ends at
	 * once (shutdown past its grace time); NULL = none. */
	const atomic_int *cancel;
	int io_timeout_s;           /* IMAP read/connect timeout, 0 = the library's default */
	int stall_timeout_s;        /* a folder thread without progress this long is
	                             * abandoned, and the lease no longer renewed for it */
	int max_folders;            /* folders per account; more is an account error */
	uint64_t max_message_bytes; /* larger messages get a message error, 0 = no limit */
	/* Called after each committed batch with the run's totals so far and
	 * the folder, from any folder thread (NULL: not called). */
	void (*progress)(void *context, const struct store_account *acct, int64_t epoch,
	                 const struct sync_stats *totals, const char *folder);
	void *progress_context;
};

/* Result of an account run. */
enum sync_outcome {
	SYNC_DONE,        /* every folder synced, or recorded as failed (stats say how
	                   * many), message errors recorded */
	SYNC_AUTH_FAILED, /* credentials refused: account state auth_failed */
	SYNC_FAILED,      /* could not finish; error says why */
	SYNC_LEASE_LOST,  /* another worker owns the account now: write nothing more */
	SYNC_STOPPED,     /* asked to stop; progress is checkpointed */
	SYNC_WAITING,     /* a daily byte cap was reached, or a server keeps
	                   * throttling: checkpointed, run again after wait_s */
	SYNC_KEY_FAILED,  /* a secret does not decrypt with this worker's key:
	                   * nothing done; not the account's fault, so no error
	                   * budget is spent */
};

struct sync_stats {
	uint64_t messages, bytes, errors, flags_updated, folders;
	uint64_t matched;           /* found already in the destination by content: mapped */
	uint64_t folders_failed;    /* folders recorded with an error, the rest went on */
	char folder_errors[512];    /* "name: error; ..." of the first failed folders */
	uint64_t throttled;         /* "slow down" answers waited out (not errors) */
	double rate_wait_s;         /* time spent waiting for rate limits */
	uint64_t folders_unchanged; /* found unchanged by STATUS: not opened */
	/* Where the run's time went, summed over its folder threads (ms), and
	 * its round trips to each server (imap_io_stats). */
	int64_t phase_ms[8];
	uint64_t rt_src, rt_dst;
	int wait_s; /* SYNC_WAITING: seconds, -1 = next UTC midnight */
	/* Contacts and calendars (worker/dav.c): objects copied, and refused
	 * objects plus collections that could not be had. */
	uint64_t dav_contacts, dav_events, dav_failed;
};

/* Runs the pass of an account whose lease (epoch) the caller holds. st is the
 * caller's store connection (used by this thread). */
enum sync_outcome sync_account(const struct sync_config *cfg, struct store *st,
                               const struct store_account *acct, int64_t epoch,
                               struct sync_stats *stats_r, char *err, size_t errlen);

#endif
