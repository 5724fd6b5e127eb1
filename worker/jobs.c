/* The worker's job loop: the beat (this worker's room, for the scheduler),
 * jobs handed back after PostgreSQL was unreachable, jobs declined when
 * full, the lease take, one thread per account and the shutdown wait.
 *
 * The loop's thread only polls Kafka (so the consumer group never times out
 * during long copies) and hands each leased account to an account thread. */
#include "worker-private.h"

#include "account.h"
#include "account_state.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A run whose secrets did not decrypt goes back to waiting for this long
 * (a worker with the right key takes it meanwhile). */
#define KEY_FAILED_WAIT_S 60
/* Seconds a live worker's beat is watched for at start when another
 * process may use the same id: it beats every BEAT_S. */
#define ID_WATCH_S (3 * BEAT_S)
/* Lease attempts, a second apart, when PostgreSQL does not answer. */
#define LEASE_TAKE_ATTEMPTS 15
/* Jobs remembered for handing back; beyond that the scheduler's republish
 * (REPUBLISH_S) brings them back. */
#define OWED_MAX 1024

struct account_job {
	struct worker *w;
	struct queue_job job;
	struct store *st;
	struct store_account acct;
	int64_t epoch;
};

/* The loop's own state between polls. */
struct job_loop {
	int beat_running; /* the load last beaten, -1: none yet */
	time_t beat_at, last_work;
	/* Jobs not started because PostgreSQL was unreachable: handed back as
	 * soon as it answers again (else they would wait for the republish). */
	int64_t owed[OWED_MAX];
	size_t nowed;
};

static void event_send(struct worker *w, const struct account_job *aj, int kind,
                       const struct sync_stats *stats, const char *detail)
{
	struct queue_event ev = {
	    .migration_id = aj->acct.migration_id,
	    .account_id = aj->acct.id,
	    .pass = aj->job.pass,
	    .kind = kind,
	    .folder = "",
	    .messages = stats != NULL ? stats->messages : 0,
	    .bytes = stats != NULL ? stats->bytes : 0,
	    .errors = stats != NULL ? stats->errors : 0,
	    .worker = w->id,
	    .detail = detail != NULL ? detail : "",
	    .at_ms = (int64_t)time(NULL) * 1000,
	    .lease_epoch = aj->epoch,
	};
	char err[256];

	if (w->producer != NULL && queue_event_publish(w->producer, &ev, err, sizeof(err)) < 0)
		log_warn("event not published: %s", err);
}

/* After each committed batch: the run's totals so far, for the coordinator's
 * live view. */
void worker_progress_send(void *context, const struct store_account *acct, int64_t epoch,
                          const struct sync_stats *totals, const char *folder)
{
	struct worker *w = context;
	struct queue_event ev = {
	    .migration_id = acct->migration_id,
	    .account_id = acct->id,
	    .pass = acct->pass,
	    .kind = QUEUE_EVENT_PROGRESS,
	    .folder = folder,
	    .messages = totals->messages,
	    .bytes = totals->bytes,
	    .errors = totals->errors,
	    .worker = w->id,
	    .at_ms = (int64_t)time(NULL) * 1000,
	    .lease_epoch = epoch,
	};
	char err[256];

	if (w->producer != NULL && queue_event_publish(w->producer, &ev, err, sizeof(err)) < 0)
		log_warn("event not published: %s", err);
}

/* The reason of a synced pass: what it copied, what it found already there,
 * and the folders that failed, with the servers' words ("synced with
 * errors"). */
static void done_reason(int pass, const struct sync_stats *stats, double secs, char *buf,
                        size_t buflen)
{
	int n = snprintf(buf, buflen,
	                 "pass %d: %" PRIu64 " messages (%" PRIu64 " bytes) copied, %" PRIu64
	                 " already in the destination (matched), %" PRIu64 " flag updates, %" PRIu64
	                 " message errors, %.2f s (%" PRIu64 " slow-down answers waited out, %.1f s"
	                 " waited for rate limits)",
	                 pass, stats->messages, stats->bytes, stats->matched, stats->flags_updated,
	                 stats->errors, secs, stats->throttled, stats->rate_wait_s);

	if (stats->dav_contacts + stats->dav_events + stats->dav_failed > 0 && n > 0 &&
	    (size_t)n < buflen)
		n += snprintf(buf + n, buflen - (size_t)n,
		              "; %" PRIu64 " contacts and %" PRIu64 " events copied, %" PRIu64
		              " refused",
		              stats->dav_contacts, stats->dav_events, stats->dav_failed);
	if (stats->folders_failed > 0 && n > 0 && (size_t)n < buflen)
		snprintf(buf + n, buflen - (size_t)n,
		         "; with errors: %" PRIu64 " folders failed: %s", stats->folders_failed,
		         stats->folder_errors);
}

static void *account_thread(void *arg)
{
	struct account_job *aj = arg;
	struct worker *w = aj->w;
	struct sync_stats stats = {0};
	enum sync_outcome outcome;
	/* The state the run leaves the account in; none when the lease is lost. */
	enum account_state state = ACCOUNT_STATE_FAILED;
	bool release = true;
	char err[768], reason[1024], error[STORE_ERRLEN] = "";
	struct timespec t0, t1;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	log_info("account %" PRId64 " (%s): pass %d started", aj->acct.id, aj->acct.src_login,
	         aj->job.pass);
	event_send(w, aj, QUEUE_EVENT_ACCOUNT_STARTED, NULL, NULL);
	err[0] = '\0';
	/* The accounts this worker copies now share its folder threads. */
	struct sync_config cfg = w->sync;
	pthread_mutex_lock(&w->lock);
	cfg.sharing = w->running;
	pthread_mutex_unlock(&w->lock);
	outcome = sync_account(&cfg, aj->st, &aj->acct, aj->epoch, &stats, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	switch (outcome) {
	case SYNC_DONE:
		state = ACCOUNT_STATE_SYNCED;
		done_reason(aj->job.pass, &stats, secs, reason, sizeof(reason));
		break;
	case SYNC_AUTH_FAILED:
		state = ACCOUNT_STATE_AUTH_FAILED;
		snprintf(reason, sizeof(reason), "%s", err);
		break;
	case SYNC_STOPPED:
		/* Stays paused or cancelled if that is why (the store keeps an
		 * operator's state); else queued for another worker. */
		state = ACCOUNT_STATE_QUEUED;
		snprintf(reason, sizeof(reason), "%s; checkpointed",
		         *w->sync.stop ? "worker stopping" : err);
		break;
	case SYNC_WAITING:
		/* Not an error: a daily cap or a throttling server. */
		state = ACCOUNT_STATE_WAITING;
		snprintf(reason, sizeof(reason), "%s; checkpointed", err);
		break;
	case SYNC_LEASE_LOST:
		release = false;
		break;
	case SYNC_FAILED:
		state = ACCOUNT_STATE_FAILED;
		snprintf(reason, sizeof(reason), "%s", err);
		break;
	case SYNC_KEY_FAILED:
		if (w->key_checked) {
			/* The key decrypts the database's key check, so the key is
			 * right and this account's stored secret is damaged: a
			 * failure of the account, which passwd repairs. */
			state = ACCOUNT_STATE_FAILED;
			snprintf(reason, sizeof(reason),
			         "%s although this worker's key decrypts the database's key"
			         " check: the account's stored secret is damaged; set it again"
			         " with passwd",
			         err);
			break;
		}
		/* No key check to prove this worker's key: it may be the wrong
		 * one, so wait without spending the error budget. */
		state = ACCOUNT_STATE_WAITING;
		stats.wait_s = KEY_FAILED_WAIT_S;
		snprintf(reason, sizeof(reason),
		         "worker %s: %s with this worker's key: nothing done, error budget"
		         " untouched; check the workers' key files",
		         w->id, err);
		break;
	}
	if (release) {
		if ((state == ACCOUNT_STATE_WAITING
		         ? store_lease_wait(aj->st, aj->acct.id, aj->epoch, stats.wait_s, reason,
		                            error, sizeof(error))
		         : store_lease_release(aj->st, aj->acct.id, aj->epoch,
		                               account_state_name(state), reason, error,
		                               sizeof(error))) < 0)
			log_warn("account %" PRId64 ": lease release: %s", aj->acct.id, error);
		log_info("account %" PRId64 " (%s): %s: %s", aj->acct.id, aj->acct.src_login,
		         account_state_name(state), reason);
	} else {
		log_warn("account %" PRId64 ": %s; stopped without writing", aj->acct.id, err);
	}
	atomic_fetch_add(&w->counters.runs, 1);
	if (release && state == ACCOUNT_STATE_FAILED)
		atomic_fetch_add(&w->counters.runs_failed, 1);
	atomic_fetch_add(&w->counters.messages, stats.messages);
	atomic_fetch_add(&w->counters.bytes, stats.bytes);
	atomic_fetch_add(&w->counters.errors, stats.errors + stats.folders_failed);
	event_send(w, aj,
	           outcome == SYNC_DONE ? QUEUE_EVENT_ACCOUNT_DONE : QUEUE_EVENT_ACCOUNT_FAILED,
	           &stats, release ? account_state_name(state) : NULL);
	store_account_clear(&aj->acct);
	store_close(&aj->st);
	free(aj);
	pthread_mutex_lock(&w->lock);
	w->running--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Takes the lease and starts the account thread.  Returns 0 when the job was
 * handled (started or dropped), <0 when the store could not be reached. */
static int job_start(struct worker *w, const struct queue_job *job)
{
	struct account_job *aj = calloc(1, sizeof(*aj));
	char error[STORE_ERRLEN] = "";
	char why[512] = "";
	pthread_t tid;
	int ret;

	if (aj == NULL)
		return -1;
	aj->w = w;
	aj->job = *job;
	/* PostgreSQL may be restarting: retry for a while before leaving the job
	 * to the scheduler, which only re-publishes it much later. */
	for (int attempt = 0;; attempt++) {
		ret = store_open(w->sync.db_conninfo, &aj->st, error, sizeof(error));
		if (ret == 0) {
			ret = store_lease_take(aj->st, job->account_id, job->pass, w->id,
			                       w->sync.lease_ttl_s, &aj->epoch, &aj->acct, error,
			                       sizeof(error));
			if (ret >= 0)
				break;
			/* The message lives in the store being closed. */
			snprintf(why, sizeof(why), "%s", error);
			store_close(&aj->st);
		} else {
			snprintf(why, sizeof(why), "%s", error);
		}
		if (attempt >= LEASE_TAKE_ATTEMPTS || *w->sync.stop) {
			log_error("account %" PRId64 ": lease: %s", job->account_id, why);
			free(aj);
			return -1;
		}
		log_warn("account %" PRId64 ": lease: %s; retrying", job->account_id, why);
		sleep(1);
	}
	if (ret == STORE_BUSY) {
		log_info("job for account %" PRId64 " pass %d dropped: leased elsewhere or"
		         " nothing to do",
		         job->account_id, job->pass);
		store_close(&aj->st);
		free(aj);
		return 0;
	}
	pthread_mutex_lock(&w->lock);
	w->running++;
	pthread_mutex_unlock(&w->lock);
	if (pthread_create(&tid, NULL, account_thread, aj) != 0) {
		store_lease_release(aj->st, aj->acct.id, aj->epoch,
		                    account_state_name(ACCOUNT_STATE_QUEUED), "no thread", error,
		                    sizeof(error));
		store_account_clear(&aj->acct);
		store_close(&aj->st);
		free(aj);
		pthread_mutex_lock(&w->lock);
		w->running--;
		pthread_mutex_unlock(&w->lock);
		return -1;
	}
	pthread_detach(tid);
	return 0;
}

/* Start-up check: no other live process beats under this worker id (two
 * workers with one id would share one row of capacity, halving the fleet's
 * room).  A fresh beat is watched for ID_WATCH_S: one that moves is another
 * process; one that does not is a worker that just died. */
int worker_id_check(struct store *st, const char *id)
{
	double seen = 0, again = 0;
	char error[STORE_ERRLEN] = "";

	if (store_worker_seen(st, id, &seen, error, sizeof(error)) < 0) {
		log_error("%s", error);
		return -1;
	}
	if (seen == 0)
		return 0;
	log_info("worker id %s beat %.0f s ago: watching whether another worker uses it", id,
	         (double)time(NULL) - seen);
	sleep(ID_WATCH_S);
	if (store_worker_seen(st, id, &again, error, sizeof(error)) < 0) {
		log_error("%s", error);
		return -1;
	}
	if (again > seen) {
		log_error("worker id %s is in use by another live worker (it beats every %d s):"
		          " give each worker its own --id, or none (the default is host-pid-time);"
		          " not started",
		          id, BEAT_S);
		return -1;
	}
	return 0;
}

/* The beat: this worker's room, for the scheduler's metering; every BEAT_S
 * and at each change of the load.  The beat connection is reopened at the
 * next beat after a failure. */
static void job_loop_beat(struct worker *w, struct job_loop *l, int running)
{
	char error[STORE_ERRLEN] = "";

	if (running == l->beat_running && time(NULL) - l->beat_at < BEAT_S)
		return;
	if (w->beat_st == NULL &&
	    store_open(w->sync.db_conninfo, &w->beat_st, error, sizeof(error)) < 0)
		log_warn("beat: %s", error);
	else if (store_worker_beat(w->beat_st, w->id, w->capacity, running,
	                           l->beat_running >= 0 && running < l->beat_running, error,
	                           sizeof(error)) < 0) {
		log_warn("beat: %s", error);
		store_close(&w->beat_st);
	} else {
		l->beat_running = running;
		atomic_store(&w->beat_ok_at, (long)time(NULL));
	}
	l->beat_at = time(NULL);
}

/* Hands back the jobs not started while PostgreSQL was unreachable, once the
 * beat connection works again. */
static void job_loop_hand_back(struct worker *w, struct job_loop *l)
{
	char error[STORE_ERRLEN] = "";

	if (l->nowed == 0 || w->beat_st == NULL)
		return;
	if (store_jobs_owed(w->beat_st, l->owed, l->nowed, error, sizeof(error)) < 0) {
		log_warn("hand back: %s", error);
		store_close(&w->beat_st);
		return;
	}
	for (size_t i = 0; i < l->nowed; i++)
		log_info("account %" PRId64 ": job handed back (not started"
		         " while PostgreSQL was unreachable)",
		         l->owed[i]);
	l->nowed = 0;
}

/* Full: hands the job back rather than hold it while another worker may be
 * idle; it is published again, to another partition.  True when declined
 * (the caller marks the message done), false to start it after all (the
 * decline could not be written). */
static bool job_loop_decline(struct worker *w, const struct queue_job *job, int running)
{
	char error[STORE_ERRLEN] = "";

	if (running < w->capacity || w->beat_st == NULL)
		return false;
	if (store_jobs_owed(w->beat_st, &job->account_id, 1, error, sizeof(error)) < 0) {
		log_warn("account %" PRId64 ": decline: %s", job->account_id, error);
		store_close(&w->beat_st);
		return false;
	}
	log_debug("account %" PRId64 ": declined, %d of %d running", job->account_id, running,
	          w->capacity);
	return true;
}

void worker_jobs_run(struct worker *w, struct queue_consumer *consumer, long idle_exit)
{
	struct job_loop loop = {.beat_running = -1}, *l = &loop;
	char err[512];
	int ret;

	l->last_work = time(NULL);
	while (!*w->sync.stop) {
		struct queue_job job;
		struct queue_msg *msg = NULL;
		int running;

		pthread_mutex_lock(&w->lock);
		running = w->running;
		pthread_mutex_unlock(&w->lock);
		job_loop_beat(w, l, running);
		job_loop_hand_back(w, l);
		/* Idle time counts from the group assignment (the first join takes
		 * seconds), never while accounts run. */
		if (running > 0 || queue_consumer_assigned(consumer) == 0)
			l->last_work = time(NULL);
		else if (idle_exit > 0 && time(NULL) - l->last_work >= idle_exit) {
			log_info("idle for %ld s: exiting", idle_exit);
			break;
		}
		ret = queue_job_poll(consumer, 100, &job, &msg, err, sizeof(err));
		if (ret < 0) {
			log_error("kafka: %s", err);
			continue;
		}
		if (ret == 0)
			continue;
		l->last_work = time(NULL);
		/* Polling goes on either way, so the group never sees this worker
		 * as gone. */
		if (job_loop_decline(w, &job, running)) {
			queue_msg_done(consumer, &msg);
			continue;
		}
		/* Once the lease is taken ownership is in PostgreSQL: the offset
		 * may be stored.  A job not started is handed back later. */
		if (job_start(w, &job) < 0) {
			log_warn("account %" PRId64 ": job not started; it is handed back once"
			         " PostgreSQL answers",
			         job.account_id);
			if (l->nowed < OWED_MAX)
				l->owed[l->nowed++] = job.account_id;
			store_close(&w->beat_st);
		}
		queue_msg_done(consumer, &msg);
	}
}

/* Adds ms to a CLOCK_REALTIME deadline. */
static struct timespec deadline_in(int64_t ms)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* After SIGTERM: waits for the account threads, which checkpoint at their
 * next batch boundary and release their leases.  Shortly before the bound
 * (the last quarter, at most 2 s) every IMAP wait is cancelled, so threads
 * blocked on a server return; whatever still runs at the bound is left:
 * returns false, and the caller exits at once.  Exiting is safe at any
 * moment: an open batch is re-matched from its intent row, and the lease
 * expires for another worker.  *left_ms_r: what is left of the bound (for
 * flushing the last events). */
bool worker_shutdown_wait(struct worker *w, long bound_s, int *left_ms_r)
{
	int64_t bound_ms = (int64_t)bound_s * 1000;
	int64_t grace_ms = bound_ms / 4 < 2000 ? bound_ms / 4 : 2000;
	struct timespec cancel_at = deadline_in(bound_ms - grace_ms), end = deadline_in(bound_ms);
	bool done;

	pthread_mutex_lock(&w->lock);
	if (w->running > 0)
		log_info("stopping: %d accounts checkpoint (at most %ld s)", w->running, bound_s);
	while (w->running > 0 && pthread_cond_timedwait(&w->cond, &w->lock, &cancel_at) == 0)
		;
	if (w->running > 0) {
		log_warn("stopping: %d accounts still busy; cancelling their IMAP waits",
		         w->running);
		atomic_store(w->cancel_all, 1);
	}
	while (w->running > 0 && pthread_cond_timedwait(&w->cond, &w->lock, &end) == 0)
		;
	done = w->running == 0;
	{
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int64_t left = ((int64_t)end.tv_sec - now.tv_sec) * 1000 +
		               (end.tv_nsec - now.tv_nsec) / 1000000;
		*left_ms_r = left < 100 ? 100 : (int)left;
	}
	if (!done)
		log_warn("stopping: %d accounts did not end within %ld s (worker option"
		         " --shutdown-timeout): exiting anyway; their leases expire for another"
		         " worker",
		         w->running, bound_s);
	pthread_mutex_unlock(&w->lock);
	return done;
}
