/* The scheduler loop of `mailshift-coordinator run`.  Several coordinators may
 * run; one holds the scheduler lock in PostgreSQL and acts, the others stand
 * by and take over when its connection (and so its lock) goes away. */
#ifndef MAILSHIFT_SCHEDULER_H
#define MAILSHIFT_SCHEDULER_H

#include "queue.h"
#include "store-conn.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct scheduler_config {
	const char *db_conninfo;
	const char *brokers;
	int interval_ms;             /* pause between steps */
	int republish_s;             /* a job not taken after this long is published again */
	volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
	/* If not NULL: 1 while this scheduler is the active one (/metrics). */
	volatile sig_atomic_t *active;
};

/* Publishes up to `limit` jobs owed (of one migration, or all for 0) as far
 * as the budgets and the workers' room allow, in priority order; *count_r
 * counts them.  Returns 0, or -1 with err set. */
int scheduler_publish_due(struct store *st, struct queue_producer *producer, int64_t migration_id,
                          size_t limit, int republish_s, size_t *count_r, char *err, size_t errlen);
/* One step (re-queue, publish what the budgets allow), whether or not
 * another coordinator is active: publishers are serialised in PostgreSQL.
 * Returns 0, or -1 (message logged). */
int scheduler_once(const struct scheduler_config *cfg);
/* Runs until *stop; returns 0, or -1 on a setup failure (message logged). */
int scheduler_run(const struct scheduler_config *cfg);

#endif
