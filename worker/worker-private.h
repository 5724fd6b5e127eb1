/* What the worker's files share:
 *   main.c     wiring: options, configuration, start-up checks, the job loop
 *   options.c  the command line and its usage
 *   jobs.c     the job loop: beat, hand-back, decline, lease take, account
 *              threads, the shutdown wait
 *   health.c   the health listener: /healthz, /readyz, /metrics
 * The account copy itself is sync.h. */
#ifndef MAILSHIFT_WORKER_PRIVATE_H
#define MAILSHIFT_WORKER_PRIVATE_H

#include "queue.h"
#include "store-checkpoint.h"
#include "store-conn.h"
#include "store-lease.h"
#include "store-schedule.h"
#include "sync.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Seconds between a worker's beats (and at each change of its load). */
#define BEAT_S 2

struct worker {
	struct sync_config sync; /* sync.stop ends the job loop */
	char id[128];
	struct queue_producer *producer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running; /* account threads alive */
	int capacity;
	bool key_checked;        /* the key decrypted the database's key check at start */
	atomic_int *cancel_all;  /* what sync.cancel points to, set at the shutdown bound */
	struct store *beat_st;   /* the loop's connection (beats, hand-back); NULL when down */
	_Atomic long beat_ok_at; /* time() of the last beat PostgreSQL took, 0: none */
	/* Since start, for /metrics: ended runs and what they copied. */
	struct {
		atomic_ullong runs, runs_failed, messages, bytes, errors;
	} counters;
};

/* The options that are not the worker's configuration; brokers is owned
 * (free it). */
struct worker_options {
	const char *db, *brokers_file, *key_file, *id;
	const char *listen; /* health listener ADDR:PORT, NULL: none */
	char *brokers;
	long idle_exit;  /* --exit-when-idle, 0: never */
	long shutdown_s; /* --shutdown-timeout */
};

/* Defaults and environment into w (its sync configuration and capacity) and
 * o, then the command line.  0 to go on; -1 to exit with *exit_r (2 for a
 * bad option, 0 after --help), the error or usage printed. */
int worker_options_parse(int argc, char **argv, struct worker *w, struct worker_options *o,
                         int *exit_r);

/* sync_config.progress: publishes the run's totals so far; context is the
 * struct worker. */
void worker_progress_send(void *context, const struct store_account *acct, int64_t epoch,
                          const struct sync_stats *totals, const char *folder);

/* Start-up check: no other live process beats under this worker id.  -1 with
 * the error logged. */
int worker_id_check(struct store *st, const char *id);

/* The job loop, until *w->sync.stop or idle_exit seconds without work (0:
 * never).  Beats through w->beat_st, which it opens. */
void worker_jobs_run(struct worker *w, struct queue_consumer *consumer, long idle_exit);

/* After the loop: waits up to bound_s for the account threads to checkpoint;
 * false when some still run (the caller then exits at once).  *left_ms_r:
 * what is left of the bound. */
bool worker_shutdown_wait(struct worker *w, long bound_s, int *left_ms_r);

/* The health listener on spec (ADDR:PORT): /healthz, /readyz (the beat
 * recent, the consumer in its group, not stopping), /metrics.  -1 with err
 * naming --listen when it cannot listen. */
struct worker_health;
int worker_health_start(struct worker *w, struct queue_consumer *consumer, const char *spec,
                        struct worker_health **h_r, char *err, size_t errlen);
void worker_health_stop(struct worker_health **h);

#endif
