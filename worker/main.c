/* mailshift-worker: takes jobs from Kafka, leases the account in PostgreSQL and
 * runs its pass.  Holds no state of its own: kill it at any moment and another
 * worker resumes from the last checkpoint.
 *
 * main only wires: options, configuration, start-up checks, then the job
 * loop (jobs.c) until SIGTERM, and the bounded shutdown. */
#include "worker-private.h"

#include "account.h"
#include "config.h"
#include "log.h"
#include "secret.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
/* Set shortly before the shutdown bound: every IMAP wait of every account
 * ends at once (lib/imap's process-wide cancel). */
static atomic_int cancel_all;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Start-up protection of the secrets this process will hold: no core file. */
static int worker_protect(void)
{
	char err[256];

	if (secret_process_protect(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* The spool directory is the only place the worker writes: checked at
 * start, not at the first large message hours later. */
static int tmpdir_check(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0) {
		log_error("--tmpdir %s (MAILSHIFT_TMPDIR): not a writable directory: %s", dir,
		          errno != 0 ? strerror(errno) : "not a directory");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct worker w;
	struct worker_options o;
	struct secret_key *key = NULL;
	struct queue_consumer *consumer = NULL;
	struct worker_health *health = NULL;
	struct store *st = NULL;
	int flush_ms = 5000;
	char err[512];
	char error[STORE_ERRLEN] = "";
	int ret = 1;

	/* Two malloc arenas: fetch threads come and go per batch, and an arena
	 * per thread would keep their freed batches resident (peak RSS). */
	mallopt(M_ARENA_MAX, 2);
	memset(&w, 0, sizeof(w));
	w.sync.stop = &stop_requested;
	w.sync.cancel = &cancel_all;
	w.cancel_all = &cancel_all;
	w.sync.progress = worker_progress_send;
	w.sync.progress_context = &w;
	if (worker_options_parse(argc, argv, &w, &o, &ret) < 0) {
		free(o.brokers);
		return ret;
	}
	log_init("worker");
	if (config_env_check(err, sizeof(err)) < 0) {
		log_error("%s", err);
		ret = 2;
		goto out;
	}
	errno = 0;
	if (tmpdir_check(w.sync.tmpdir) < 0) {
		ret = 2;
		goto out;
	}
	if (o.db == NULL) {
		log_error("no database: give --db or MAILSHIFT_DB");
		ret = 2;
		goto out;
	}
	if (o.brokers == NULL && o.brokers_file != NULL &&
	    queue_brokers_from_file(o.brokers_file, &o.brokers, err, sizeof(err)) < 0) {
		log_error("%s", err);
		ret = 2;
		goto out;
	}
	if (o.brokers == NULL) {
		log_error("no Kafka brokers: give --brokers or --brokers-file");
		ret = 2;
		goto out;
	}
	if (worker_protect() < 0)
		goto out;
	w.sync.db_conninfo = o.db;
	if (o.id != NULL)
		snprintf(w.id, sizeof(w.id), "%s", o.id);
	else {
		char host[64] = "worker";
		gethostname(host, sizeof(host) - 1);
		snprintf(w.id, sizeof(w.id), "%s-%ld-%ld", host, (long)getpid(), (long)time(NULL));
	}
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (store_open(o.db, &st, error, sizeof(error)) < 0 ||
	    store_schema_apply(st, error, sizeof(error)) < 0) {
		log_error("%s", error);
		goto out;
	}
	/* A key that cannot decrypt the database's key check would fail every
	 * account it took: refuse to take any. */
	ret = account_key_open(st, o.key_file, false, &key, err, sizeof(err));
	if (ret < 0) {
		log_error("%s", err);
		ret = 1;
		goto out;
	}
	w.key_checked = ret == ACCOUNT_KEY_CHECKED;
	ret = 1;
	w.sync.key = key;
	if (worker_id_check(st, w.id) < 0)
		goto out;
	store_close(&st);
	if (queue_producer_create(o.brokers, &w.producer, err, sizeof(err)) < 0 ||
	    queue_consumer_create(o.brokers, "mailshift-workers", w.id, &consumer, err,
	                          sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (o.listen != NULL &&
	    worker_health_start(&w, consumer, o.listen, &health, err, sizeof(err)) < 0) {
		log_error("%s", err);
		ret = 2;
		goto out;
	}
	if (w.sync.folder_threads > 0)
		log_info("worker %s ready: %d accounts at once, %d folders each", w.id, w.capacity,
		         w.sync.folder_threads);
	else
		log_info("worker %s ready: %d accounts at once, folders each from the servers'"
		         " budgets",
		         w.id, w.capacity);
	worker_jobs_run(&w, consumer, o.idle_exit);
	ret = 0;
	/* SIGTERM: account threads checkpoint and release their leases, within
	 * the shutdown bound. */
	if (!worker_shutdown_wait(&w, o.shutdown_s, &flush_ms)) {
		if (w.beat_st != NULL)
			store_worker_gone(w.beat_st, w.id, error, sizeof(error));
		fflush(NULL);
		/* Threads still run and use the producer and the key: no
		 * cleanup, no atexit handlers. */
		_exit(0);
	}
	if (w.beat_st != NULL && store_worker_gone(w.beat_st, w.id, error, sizeof(error)) < 0)
		log_warn("beat: %s", error);
out:
	worker_health_stop(&health);
	store_close(&w.beat_st);
	queue_consumer_destroy(&consumer);
	if (w.producer != NULL) {
		queue_producer_flush(w.producer, flush_ms, err, sizeof(err));
		queue_producer_destroy(&w.producer);
	}
	store_close(&st);
	secret_key_destroy(&key);
	free(o.brokers);
	return ret;
}
