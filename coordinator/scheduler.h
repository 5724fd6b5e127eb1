/* The scheduler loop of `mailshift-coordinator run`.  Several coordinators may
 * run; one holds the scheduler lock in PostgreSQL and acts, the others stand
 * by and take over when its connection (and so its lock) goes away. */
#ifndef MAILSHIFT_SCHEDULER_H
#define MAILSHIFT_SCHEDULER_H

#include <signal.h>

struct scheduler_config {
	const char *db_conninfo;
	const char *brokers;
	int interval_ms;	   /* pause between steps */
	int republish_s;	   /* a job not taken after this long is published again */
	volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
};

/* One step (re-queue, publish what the budgets allow), whether or not
 * another coordinator is active: publishers are serialised in PostgreSQL.
 * Returns 0, or -1 (message logged). */
int scheduler_once(const struct scheduler_config *cfg);
/* Runs until *stop; returns 0, or -1 on a setup failure (message logged). */
int scheduler_run(const struct scheduler_config *cfg);

#endif
