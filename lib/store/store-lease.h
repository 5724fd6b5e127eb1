/* Leases and slots (lib/store/lease.c): the account lease whose epoch fences
 * every checkpoint write (docs/DESIGN.md, "3. Fencing"), the connection
 * slots of each server, the fleet-wide rate clocks and the workers' beats.
 * Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_LEASE_H
#define MAILSHIFT_STORE_LEASE_H

#include "store-account.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Fleet-wide rate limits: reserves a batch of messages and bytes against the
 * server's limits; *wait_s_r is how long to wait before sending it (0: now).
 * A server that asked to slow down has its clock moved by store_rate_penalty,
 * which every worker then waits for. */
int store_rate_reserve(struct store *st, int64_t server_id, bool limited, size_t messages,
                       uint64_t bytes, double *wait_s_r, char *err, size_t errlen);
int store_rate_penalty(struct store *st, int64_t server_id, int secs, char *err, size_t errlen);

#endif
