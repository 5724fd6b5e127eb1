/* Each step, as the active scheduler: re-queue accounts whose lease expired,
 * failed accounts whose retry is due and waiting accounts whose wait is over;
 * then publish the jobs owed, in priority order, as far as the servers'
 * connection budgets and blackout windows allow; then fold the workers'
 * progress events into live totals.  PostgreSQL says what is owed; Kafka only
 * carries it, so a step lost half-way is repeated by the next one without
 * harm.  Between steps the scheduler sleeps until a pass starts or an account
 * is released (LISTEN/NOTIFY), or the interval passes.
 *
 * The SQL that decides what is owed and in what order (the metered
 * publishing statement, the reaper, retries, wake-ups, the election lock)
 * lives in lib/store/schedule.c (store-schedule.h). */
#include "scheduler.h"

#include "live.h"
#include "log.h"
#include "queue.h"
#include "store-schedule.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Jobs published per step at most, so one step stays short. */
#define STEP_JOBS 1000
/* Events folded per step at most. */
#define STEP_EVENTS 20000

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int scheduler_publish_due(struct store *st, struct queue_producer *producer, int64_t migration_id,
                          size_t limit, int republish_s, size_t *count_r, char *err, size_t errlen)
{
	struct store_job *jobs = NULL;
	char error[STORE_ERRLEN] = "";
	int ret = -1;

	*count_r = 0;
	if (store_publish_due(st, migration_id, limit, republish_s, &jobs, count_r, error,
	                      sizeof(error)) < 0) {
		snprintf(err, errlen, "%s", error);
		return -1;
	}
	for (size_t i = 0; i < *count_r; i++) {
		struct queue_job job = {.migration_id = jobs[i].migration_id,
		                        .account_id = jobs[i].account_id,
		                        .pass = jobs[i].pass,
		                        .attempt = jobs[i].attempt};
		char why[400];
		if (queue_job_publish(producer, &job, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "account %" PRId64 ": %s", jobs[i].account_id, why);
			goto out;
		}
	}
	if (*count_r > 0 && queue_producer_flush(producer, 30000, err, errlen) < 0)
		goto out;
	ret = 0;
out:
	/* Whatever did not surely reach the bus is owed again at the next step
	 * (should one arrive after all, the account runs once: the second job
	 * finds its lease taken). */
	if (ret < 0 && *count_r > 0) {
		int64_t *ids = malloc(*count_r * sizeof(*ids));
		for (size_t i = 0; ids != NULL && i < *count_r; i++)
			ids[i] = jobs[i].account_id;
		if (ids == NULL || store_jobs_owed(st, ids, *count_r, error, sizeof(error)) < 0)
			log_warn("scheduler: jobs not marked owed: %s",
			         ids == NULL ? "out of memory" : error);
		free(ids);
	}
	free(jobs);
	return ret;
}

/* One step; <0 when the store or the queue failed (the caller reconnects).
 * Jobs marked published but lost on the way are published again after
 * republish_s. */
static int step(struct store *st, struct queue_producer *producer, int republish_s)
{
	size_t requeued = 0, count = 0;
	char error[STORE_ERRLEN] = "";
	char err[512];

	if (store_schedule_step(st, &requeued, error, sizeof(error)) < 0) {
		log_error("scheduler: %s", error);
		return -1;
	}
	if (requeued > 0)
		log_info("scheduler: %zu accounts re-queued (lease expired, or a retry or wait is"
		         " due)",
		         requeued);
	if (scheduler_publish_due(st, producer, 0, STEP_JOBS, republish_s, &count, err,
	                          sizeof(err)) < 0) {
		log_error("scheduler: %s", err);
		return -1;
	}
	if (count > 0)
		log_info("scheduler: %zu jobs published", count);
	return 0;
}

/* Folds the events waiting on the bus into the live totals and writes the
 * accounts that changed. */
static int fold_events(struct store *st, struct queue_consumer *events, struct live *live)
{
	struct queue_event ev;
	struct queue_msg *msg = NULL;
	char error[STORE_ERRLEN] = "";
	char err[512];
	int n = 0, r;

	while (n < STEP_EVENTS &&
	       (r = queue_event_poll(events, 0, &ev, &msg, err, sizeof(err))) > 0) {
		live_fold(live, &ev);
		queue_msg_done(events, &msg);
		n++;
	}
	if (live_flush(live, st, error, sizeof(error)) < 0) {
		log_error("scheduler: live totals: %s", error);
		return -1;
	}
	return 0;
}

int scheduler_once(const struct scheduler_config *cfg)
{
	struct queue_producer *producer = NULL;
	struct store *st = NULL;
	char error[STORE_ERRLEN] = "";
	char err[512];
	int ret = -1;

	if (queue_producer_create(cfg->brokers, &producer, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (store_open(cfg->db_conninfo, &st, error, sizeof(error)) < 0)
		log_error("%s", error);
	else
		ret = step(st, producer, cfg->republish_s);
	store_close(&st);
	queue_producer_destroy(&producer);
	return ret;
}

int scheduler_run(const struct scheduler_config *cfg)
{
	struct queue_producer *producer = NULL;
	struct queue_consumer *events = NULL;
	struct live *live = NULL;
	struct store *st = NULL;
	bool active = false;
	char error[STORE_ERRLEN] = "";
	char err[512], client[64];

	if (queue_producer_create(cfg->brokers, &producer, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	snprintf(client, sizeof(client), "coordinator-%ld", (long)getpid());
	while (!*cfg->stop) {
		if (cfg->active != NULL)
			*cfg->active = active;
		if (st == NULL) {
			if (store_open(cfg->db_conninfo, &st, error, sizeof(error)) < 0 ||
			    store_actor_set(st, "scheduler", error, sizeof(error)) < 0) {
				store_close(&st);
				log_warn("scheduler: %s; retrying", error);
				sleep_ms(1000);
				continue;
			}
			active = false;
		}
		if (!active) {
			int r = store_scheduler_lock(st, error, sizeof(error));
			if (r < 0) {
				log_warn("scheduler: %s", error);
				store_close(&st);
			} else if (r == STORE_LOCK_TAKEN &&
			           store_listen(st, error, sizeof(error)) < 0) {
				log_warn("scheduler: %s", error);
				store_close(&st);
			} else if (r == STORE_LOCK_TAKEN) {
				active = true;
				log_info("scheduler: active (this coordinator schedules)");
			}
		}
		if (!active && events != NULL) {
			queue_consumer_destroy(&events);
			live_destroy(&live);
		}
		/* Only the active coordinator reads the events (the group's
		 * partitions all go to it). */
		if (active && events == NULL) {
			if (queue_event_consumer_create(cfg->brokers, "mailshift-coordinator",
			                                client, &events, err, sizeof(err)) < 0)
				log_warn("scheduler: events: %s", err);
			else
				live = live_create();
		}
		if (active && (step(st, producer, cfg->republish_s) < 0 ||
		               (events != NULL && fold_events(st, events, live) < 0))) {
			/* A broken connection also dropped the lock: start over. */
			store_close(&st);
			active = false;
		}
		if (active && store_wait_notify(st, cfg->interval_ms, error, sizeof(error)) < 0) {
			log_warn("scheduler: %s", error);
			store_close(&st);
			active = false;
		} else if (!active) {
			sleep_ms(cfg->interval_ms);
		}
	}
	if (events != NULL) {
		if (st != NULL)
			fold_events(st, events, live);
		queue_consumer_destroy(&events);
	}
	live_destroy(&live);
	store_close(&st);
	if (cfg->active != NULL)
		*cfg->active = 0;
	queue_producer_flush(producer, 5000, err, sizeof(err));
	queue_producer_destroy(&producer);
	return 0;
}
