/* mailshift-worker: takes jobs from Kafka, leases the account in PostgreSQL and
 * runs its pass.  Holds no state of its own: kill it at any moment and another
 * worker resumes from the last checkpoint.
 *
 * The main thread only polls Kafka (so the consumer group never times out
 * during long copies) and hands each leased account to an account thread; it
 * pauses the partitions while every account slot is busy. */
#include "account.h"
#include "account_state.h"
#include "log.h"
#include "queue.h"
#include "secret.h"
#include "store-lease.h"
#include "store-schedule.h"
#include "sync.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Seconds between a worker's beats (and at each change of its load). */
#define BEAT_S 2

static volatile sig_atomic_t stop_requested;
/* Set shortly before the shutdown bound: every IMAP wait of every account
 * ends at once (lib/imap's process-wide cancel). */
static atomic_int cancel_all;

/* Seconds a live worker's beat is watched for at start when another
 * process may use the same id: it beats every BEAT_S. */
#define ID_WATCH_S (3 * BEAT_S)
/* A run whose secrets did not decrypt goes back to waiting for this long
 * (a worker with the right key takes it meanwhile). */
#define KEY_FAILED_WAIT_S 60

/* Lease attempts, a second apart, when PostgreSQL does not answer. */
#define LEASE_TAKE_ATTEMPTS 15
/* Jobs remembered for handing back; beyond that the scheduler's republish
 * (REPUBLISH_S) brings them back. */
#define OWED_MAX 1024

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct worker {
	struct sync_config sync;
	char id[128];
	struct queue_producer *producer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running; /* account threads alive */
	int capacity;
	bool key_checked; /* the key decrypted the database's key check at start */
};

struct account_job {
	struct worker *w;
	struct queue_job job;
	struct store *st;
	struct store_account acct;
	int64_t epoch;
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
static void progress_send(void *context, const struct store_account *acct, int64_t epoch,
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
	outcome = sync_account(&w->sync, aj->st, &aj->acct, aj->epoch, &stats, err, sizeof(err));
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
		         stop_requested ? "worker stopping" : err);
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
		if (attempt >= LEASE_TAKE_ATTEMPTS || stop_requested) {
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
static int worker_id_check(struct store *st, const char *id)
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

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: mailshift-worker [options]\n"
	    "  --db CONNINFO          PostgreSQL (env MAILSHIFT_DB)\n"
	    "  --brokers LIST         Kafka bootstrap servers (env MAILSHIFT_BROKERS)\n"
	    "  --brokers-file PATH    file holding the bootstrap list (env "
	    "MAILSHIFT_BROKERS_FILE)\n"
	    "  --key-file PATH        secret key file (env MAILSHIFT_KEY_FILE, or\n"
	    "                         MAILSHIFT_SECRET_KEY holding the key)\n"
	    "  --ca-file PATH         extra CA certificates for every IMAP server\n"
	    "  --accounts N           accounts copied at once (default 4)\n"
	    "  --folders N            parallel folders per account (default: from the\n"
	    "                         servers' connection budgets, half the smaller one,\n"
	    "                         at most 4)\n"
	    "  --batch-count N        messages per append batch (default 100)\n"
	    "  --batch-mb N           megabytes per batch (default 8)\n"
	    "  --exit-when-idle SECS  exit after SECS without work (default: run forever)\n"
	    "  --lease-ttl SECS       account lease lifetime, renewed while copying (default 60)\n"
	    "  --io-timeout SECS      IMAP connect and read timeout (default 60)\n"
	    "  --stall-timeout SECS   a folder thread without progress this long is abandoned\n"
	    "                         and its account's lease no longer renewed (default 120,\n"
	    "                         0: never)\n"
	    "  --shutdown-timeout SECS  SIGTERM: exit within SECS whatever the accounts are\n"
	    "                         doing (default 10)\n"
	    "  --max-folders N        folders per account; more is an account error (default "
	    "10000)\n"
	    "  --max-message-mb N     larger messages get a message error (default 256)\n"
	    "  --id NAME              worker id, unique in the fleet (default host-pid-time)\n"
	    "environment: MAILSHIFT_DB_TIMEOUT, MAILSHIFT_DB_STATEMENT_TIMEOUT (seconds: "
	    "PostgreSQL\n"
	    "connect and statement bounds, default 10 and 60), MAILSHIFT_KEY_FILE_PERMISSIVE=1\n"
	    "(only warn about a key file others can read)\n");
}

static int parse_int(const char *s, const char *what, long min, long max, long *v_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "mailshift-worker: %s: must be an integer %ld..%ld\n", what, min,
		        max);
		return -1;
	}
	*v_r = v;
	return 0;
}

/* The bounds on faults: --io-timeout (T), --stall-timeout (S),
 * --shutdown-timeout (D), --max-folders (F), --max-message-mb (M). */
static int fault_option(struct sync_config *cfg, int c, const char *arg, long *shutdown_s)
{
	long v;

	switch (c) {
	case 'T':
		if (parse_int(arg, "--io-timeout", 1, 3600, &v) < 0)
			return -1;
		cfg->io_timeout_s = (int)v;
		break;
	case 'S':
		if (parse_int(arg, "--stall-timeout", 0, 86400, &v) < 0)
			return -1;
		cfg->stall_timeout_s = (int)v;
		break;
	case 'D':
		if (parse_int(arg, "--shutdown-timeout", 1, 3600, shutdown_s) < 0)
			return -1;
		break;
	case 'F':
		if (parse_int(arg, "--max-folders", 1, 10000000, &v) < 0)
			return -1;
		cfg->max_folders = (int)v;
		break;
	case 'M':
		if (parse_int(arg, "--max-message-mb", 1, 1 << 20, &v) < 0)
			return -1;
		cfg->max_message_bytes = (uint64_t)v << 20;
		break;
	}
	return 0;
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
static bool shutdown_wait(struct worker *w, long bound_s, int *left_ms_r)
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
		atomic_store(&cancel_all, 1);
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"brokers", required_argument, NULL, 'b'},
	    {"brokers-file", required_argument, NULL, 'B'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"ca-file", required_argument, NULL, 'c'},
	    {"accounts", required_argument, NULL, 'a'},
	    {"folders", required_argument, NULL, 'f'},
	    {"batch-count", required_argument, NULL, 'n'},
	    {"batch-mb", required_argument, NULL, 'm'},
	    {"exit-when-idle", required_argument, NULL, 'x'},
	    {"id", required_argument, NULL, 'i'},
	    {"lease-ttl", required_argument, NULL, 'l'},
	    {"io-timeout", required_argument, NULL, 'T'},
	    {"stall-timeout", required_argument, NULL, 'S'},
	    {"shutdown-timeout", required_argument, NULL, 'D'},
	    {"max-folders", required_argument, NULL, 'F'},
	    {"max-message-mb", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *db = getenv("MAILSHIFT_DB"), *brokers_file = getenv("MAILSHIFT_BROKERS_FILE");
	const char *key_file = getenv("MAILSHIFT_KEY_FILE"), *id = NULL;
	char *brokers =
	    getenv("MAILSHIFT_BROKERS") != NULL ? strdup(getenv("MAILSHIFT_BROKERS")) : NULL;
	struct worker w;
	struct secret_key *key = NULL;
	struct queue_consumer *consumer = NULL;
	struct store *st = NULL, *beat_st = NULL;
	long idle_exit = 0, shutdown_s = 10, v;
	int flush_ms = 5000;
	int beat_running = -1;
	/* Jobs not started because PostgreSQL was unreachable: handed back as
	 * soon as it answers again (else they would wait for the republish). */
	int64_t owed[OWED_MAX];
	size_t nowed = 0;
	time_t last_work, beat_at = 0;
	char err[512];
	char error[STORE_ERRLEN] = "";
	int c, ret = 1;

	/* Two malloc arenas: fetch threads come and go per batch, and an arena
	 * per thread would keep their freed batches resident (peak RSS). */
	mallopt(M_ARENA_MAX, 2);
	memset(&w, 0, sizeof(w));
	w.capacity = 4;
	w.sync.folder_threads = 0; /* from the budgets (sync_account) */
	w.sync.batch_count = 100;
	w.sync.batch_bytes = 8u << 20;
	w.sync.window = 5000;
	w.sync.lease_ttl_s = 60;
	w.sync.stop = &stop_requested;
	w.sync.cancel = &cancel_all;
	w.sync.stall_timeout_s = 120;
	w.sync.max_folders = 10000;
	w.sync.max_message_bytes = (uint64_t)256 << 20;
	w.sync.progress = progress_send;
	w.sync.progress_context = &w;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'b':
			free(brokers);
			brokers = strdup(optarg);
			break;
		case 'B':
			brokers_file = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'c':
			w.sync.ca_file = optarg;
			break;
		case 'a':
			if (parse_int(optarg, "--accounts", 1, 1000, &v) < 0)
				return 2;
			w.capacity = (int)v;
			break;
		case 'f':
			if (parse_int(optarg, "--folders", 1, 64, &v) < 0)
				return 2;
			w.sync.folder_threads = (int)v;
			break;
		case 'n':
			if (parse_int(optarg, "--batch-count", 1, 10000, &v) < 0)
				return 2;
			w.sync.batch_count = (size_t)v;
			break;
		case 'm':
			if (parse_int(optarg, "--batch-mb", 1, 1024, &v) < 0)
				return 2;
			w.sync.batch_bytes = (size_t)v << 20;
			break;
		case 'x':
			if (parse_int(optarg, "--exit-when-idle", 1, 86400, &idle_exit) < 0)
				return 2;
			break;
		case 'i':
			id = optarg;
			break;
		case 'l':
			if (parse_int(optarg, "--lease-ttl", 2, 3600, &v) < 0)
				return 2;
			w.sync.lease_ttl_s = (int)v;
			break;
		case 'T':
		case 'S':
		case 'D':
		case 'F':
		case 'M':
			if (fault_option(&w.sync, c, optarg, &shutdown_s) < 0)
				return 2;
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	log_init("worker");
	if (db == NULL) {
		log_error("no database: give --db or MAILSHIFT_DB");
		return 2;
	}
	if (brokers == NULL && brokers_file != NULL &&
	    queue_brokers_from_file(brokers_file, &brokers, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	if (brokers == NULL) {
		log_error("no Kafka brokers: give --brokers or --brokers-file");
		return 2;
	}
	if (worker_protect() < 0)
		goto out;
	w.sync.db_conninfo = db;
	if (id != NULL)
		snprintf(w.id, sizeof(w.id), "%s", id);
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
	if (store_open(db, &st, error, sizeof(error)) < 0 ||
	    store_schema_apply(st, error, sizeof(error)) < 0) {
		log_error("%s", error);
		goto out;
	}
	/* A key that cannot decrypt the database's key check would fail every
	 * account it took: refuse to take any. */
	ret = account_key_open(st, key_file, false, &key, err, sizeof(err));
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
	if (queue_producer_create(brokers, &w.producer, err, sizeof(err)) < 0 ||
	    queue_consumer_create(brokers, "mailshift-workers", w.id, &consumer, err, sizeof(err)) <
	        0) {
		log_error("%s", err);
		goto out;
	}
	if (w.sync.folder_threads > 0)
		log_info("worker %s ready: %d accounts at once, %d folders each", w.id, w.capacity,
		         w.sync.folder_threads);
	else
		log_info("worker %s ready: %d accounts at once, folders each from the servers'"
		         " budgets",
		         w.id, w.capacity);
	last_work = time(NULL);
	while (!stop_requested) {
		struct queue_job job;
		struct queue_msg *msg = NULL;
		int running;

		pthread_mutex_lock(&w.lock);
		running = w.running;
		pthread_mutex_unlock(&w.lock);
		/* The beat: this worker's room, for the scheduler's metering. */
		if (running != beat_running || time(NULL) - beat_at >= BEAT_S) {
			if (beat_st == NULL && store_open(db, &beat_st, error, sizeof(error)) < 0)
				log_warn("beat: %s", error);
			else if (store_worker_beat(beat_st, w.id, w.capacity, running,
			                           beat_running >= 0 && running < beat_running,
			                           error, sizeof(error)) < 0) {
				log_warn("beat: %s", error);
				store_close(&beat_st);
			} else {
				beat_running = running;
			}
			beat_at = time(NULL);
		}
		if (nowed > 0 && beat_st != NULL) {
			if (store_jobs_owed(beat_st, owed, nowed, error, sizeof(error)) < 0) {
				log_warn("hand back: %s", error);
				store_close(&beat_st);
			} else {
				for (size_t i = 0; i < nowed; i++)
					log_info("account %" PRId64 ": job handed back (not started"
					         " while PostgreSQL was unreachable)",
					         owed[i]);
				nowed = 0;
			}
		}
		/* Idle time counts from the group assignment (the first join takes
		 * seconds), never while accounts run. */
		if (running > 0 || queue_consumer_assigned(consumer) == 0)
			last_work = time(NULL);
		else if (idle_exit > 0 && time(NULL) - last_work >= idle_exit) {
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
		last_work = time(NULL);
		/* Full: hand the job back rather than hold it while another
		 * worker may be idle; it is published again, to another
		 * partition.  Polling goes on either way, so the group never
		 * sees this worker as gone. */
		if (running >= w.capacity && beat_st != NULL) {
			if (store_jobs_owed(beat_st, &job.account_id, 1, error, sizeof(error)) <
			    0) {
				log_warn("account %" PRId64 ": decline: %s", job.account_id, error);
				store_close(&beat_st);
			} else {
				log_debug("account %" PRId64 ": declined, %d of %d running",
				          job.account_id, running, w.capacity);
				queue_msg_done(consumer, &msg);
				continue;
			}
		}
		/* Once the lease is taken ownership is in PostgreSQL: the offset
		 * may be stored.  A job not started is handed back later. */
		if (job_start(&w, &job) < 0) {
			log_warn("account %" PRId64 ": job not started; it is handed back once"
			         " PostgreSQL answers",
			         job.account_id);
			if (nowed < OWED_MAX)
				owed[nowed++] = job.account_id;
			store_close(&beat_st);
		}
		queue_msg_done(consumer, &msg);
	}
	ret = 0;
	/* SIGTERM: account threads checkpoint and release their leases, within
	 * the shutdown bound. */
	if (!shutdown_wait(&w, shutdown_s, &flush_ms)) {
		if (beat_st != NULL)
			store_worker_gone(beat_st, w.id, error, sizeof(error));
		fflush(NULL);
		/* Threads still run and use the producer and the key: no
		 * cleanup, no atexit handlers. */
		_exit(0);
	}
	if (beat_st != NULL && store_worker_gone(beat_st, w.id, error, sizeof(error)) < 0)
		log_warn("beat: %s", error);
out:
	store_close(&beat_st);
	queue_consumer_destroy(&consumer);
	if (w.producer != NULL) {
		queue_producer_flush(w.producer, flush_ms, err, sizeof(err));
		queue_producer_destroy(&w.producer);
	}
	store_close(&st);
	secret_key_destroy(&key);
	free(brokers);
	return ret;
}
