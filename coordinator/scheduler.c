/* Each step, as the active scheduler: re-queue accounts whose lease expired
 * (the worker died, froze or lost PostgreSQL), then publish the jobs owed, in
 * priority order.  PostgreSQL says what is owed; Kafka only carries it, so a
 * step lost half-way is repeated by the next one without harm.
 * (Connection budgets, blackout windows and retries with backoff come next.) */
#include "scheduler.h"

#include "log.h"
#include "queue.h"
#include "store.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Jobs published per step at most, so one step stays short. */
#define STEP_JOBS 1000

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* One step; <0 when the store or the queue failed (the caller reconnects). */
static int step(struct store *st, struct queue_producer *producer, int republish_s)
{
	struct store_job *jobs = NULL;
	size_t reaped = 0, count = 0;
	const char *error;
	char err[512];
	int ret = -1;

	if (store_schedule_step(st, STEP_JOBS, republish_s, &reaped, &jobs, &count, &error) < 0) {
		log_error("scheduler: %s", error);
		return -1;
	}
	if (reaped > 0)
		log_info("scheduler: %zu accounts re-queued (lease expired, or a retry is due)",
			 reaped);
	for (size_t i = 0; i < count; i++) {
		struct queue_job job = {.migration_id = jobs[i].migration_id,
					.account_id = jobs[i].account_id,
					.pass = jobs[i].pass};
		if (queue_job_publish(producer, &job, err, sizeof(err)) < 0) {
			/* Marked published already: republished after republish_s. */
			log_error("scheduler: account %" PRId64 ": %s", jobs[i].account_id, err);
			goto out;
		}
	}
	if (count > 0) {
		if (queue_producer_flush(producer, 10000, err, sizeof(err)) < 0) {
			log_error("scheduler: %s", err);
			goto out;
		}
		log_info("scheduler: %zu jobs published", count);
	}
	ret = 0;
out:
	free(jobs);
	return ret;
}

int scheduler_run(const struct scheduler_config *cfg)
{
	struct queue_producer *producer = NULL;
	struct store *st = NULL;
	bool active = false;
	const char *error;
	char err[512];

	if (queue_producer_create(cfg->brokers, &producer, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	while (!*cfg->stop) {
		if (st == NULL) {
			if (store_open(cfg->db_conninfo, &st, &error) < 0) {
				log_warn("scheduler: %s; retrying", error);
				sleep_ms(1000);
				continue;
			}
			active = false;
		}
		if (!active) {
			int r = store_scheduler_lock(st, &error);
			if (r < 0) {
				log_warn("scheduler: %s", error);
				store_close(&st);
			} else if (r == 1) {
				active = true;
				log_info("scheduler: active (this coordinator schedules)");
			}
		}
		if (active && step(st, producer, cfg->republish_s) < 0) {
			/* A broken connection also dropped the lock: start over. */
			store_close(&st);
			active = false;
		}
		sleep_ms(cfg->interval_ms);
	}
	store_close(&st);
	queue_producer_flush(producer, 5000, err, sizeof(err));
	queue_producer_destroy(&producer);
	return 0;
}
