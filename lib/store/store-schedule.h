/* Scheduling: what is owed to the queue and in what order
 * (lib/store/schedule.c, driven by coordinator/scheduler.c; docs/DESIGN.md
 * "5. Scheduler").  Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_SCHEDULE_H
#define MAILSHIFT_STORE_SCHEDULE_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
