/* The shared state of an account run: its outcome (fail, wait, stop), the
 * lease heartbeat thread with the watchdog, the destination write guard, and
 * the connection slots of the folder threads. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void run_fail(struct account_run *run, enum sync_outcome outcome, const char *error)
{
	pthread_mutex_lock(&run->lock);
	/* The first failure wins; a lost lease overrides everything. */
	if (run->outcome == SYNC_DONE || outcome == SYNC_LEASE_LOST) {
		run->outcome = outcome;
		snprintf(run->error, sizeof(run->error), "%s", error);
	}
	pthread_mutex_unlock(&run->lock);
}

/* Stops the run at its next checkpoint as "waiting" (not an error): run again
 * after wait_s seconds, or at the next UTC midnight for -1. */
void run_wait(struct account_run *run, int wait_s, const char *why)
{
	run_fail(run, SYNC_WAITING, why);
	pthread_mutex_lock(&run->lock);
	if (run->outcome == SYNC_WAITING && (run->wait_s == 0 || wait_s < run->wait_s))
		run->wait_s = wait_s;
	pthread_mutex_unlock(&run->lock);
}

bool run_should_stop(struct account_run *run)
{
	bool stop;

	pthread_mutex_lock(&run->lock);
	stop = run->outcome == SYNC_LEASE_LOST || run->outcome == SYNC_AUTH_FAILED ||
	       run->outcome == SYNC_STOPPED || run->outcome == SYNC_WAITING;
	pthread_mutex_unlock(&run->lock);
	return stop || *run->cfg->stop;
}

int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The folder thread made progress: a command completed, a batch committed,
 * or it waits for a legitimate reason (rate limit, throttling, a slot). */
const char *const run_phase_names[PHASE_COUNT] = {
    "connect", "list", "status", "fetch", "append", "store", "flags", "wait",
};

int phase_add(struct folder_ctx *fc, enum run_phase phase, int64_t t0, int ret)
{
	fc->phase_ms[phase] += monotonic_ms() - t0;
	return ret;
}

void fc_alive(struct folder_ctx *fc)
{
	atomic_store(&fc->progress_ms, monotonic_ms());
}

/* A name from a source server for logs and reasons: control characters (a
 * source can list a name holding CR LF) shown as '?'. */
const char *printable(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in != '\0' && n + 1 < outlen; in++)
		out[n++] = (unsigned char)*in < 0x20 || *in == 0x7f ? '?' : *in;
	out[n] = '\0';
	return out;
}

/* The write guard of every destination session: false once the lease may
 * have expired, as far as this process can tell.  The deadline is set from the
 * local clock read *before* each renewal, minus a quarter of the TTL, so it is
 * always earlier than the expiry PostgreSQL recorded. */
bool lease_may_write(void *context)
{
	struct account_run *run = context;
	bool ok;

	pthread_mutex_lock(&run->lock);
	ok = monotonic_ms() < run->lease_deadline_ms && run->outcome != SYNC_LEASE_LOST;
	pthread_mutex_unlock(&run->lock);
	return ok;
}

/* The watchdog, from the heartbeat thread: a folder thread busy on a folder
 * with no progress (no byte moved on its sessions, no completed command, no
 * commit) for the stall timeout is abandoned: its IMAP waits are cancelled
 * (it then reconnects and re-matches its batch from the intent row).  Returns
 * true while some thread is stalled: the lease is then not renewed, so that
 * an account stuck for good goes to another worker.  Legitimate waits (rate
 * limits, throttling, a connection slot) are not busy. */
static bool run_stalled(struct account_run *run)
{
	int64_t now = monotonic_ms(), limit = (int64_t)run->cfg->stall_timeout_s * 1000;
	bool stalled = false;

	if (limit <= 0 || run->fcs == NULL)
		return false;
	for (int i = 0; i < run->nfcs; i++) {
		struct folder_ctx *fc = &run->fcs[i];
		int64_t last = atomic_load(&fc->progress_ms), io = atomic_load(&fc->last_io_ms);

		if (io > last)
			last = io;
		if (!atomic_load(&fc->busy) || now - last < limit) {
			fc->stalled = false;
			continue;
		}
		stalled = true;
		if (!fc->stalled)
			log_warn(
			    "account %" PRId64 ": folder thread %d made no progress for %" PRId64
			    " s (worker option --stall-timeout %d): cancelling its connections;"
			    " the lease is renewed again once it moves",
			    run->acct->id, i, (now - last) / 1000, run->cfg->stall_timeout_s);
		fc->stalled = true;
		atomic_store(&fc->cancel_mine, 1);
	}
	return stalled;
}

/* Heartbeat: renews the lease every TTL/4 on its own connection, whatever the
 * folder threads are doing (a long APPEND of a huge message included), as
 * long as none of them is stalled (run_stalled, looked at more often when the
 * stall timeout is short). */
static void *heartbeat_thread(void *arg)
{
	struct account_run *run = arg;
	int64_t ttl_ms = (int64_t)run->cfg->lease_ttl_s * 1000, period_ms = ttl_ms / 4;
	int64_t renewed_ms = monotonic_ms();
	struct store *st = NULL;
	char error[STORE_ERRLEN] = "";

	if (run->cfg->stall_timeout_s > 0 && run->cfg->stall_timeout_s * 1000 / 4 < period_ms)
		period_ms = run->cfg->stall_timeout_s * 1000 / 4;
	if (period_ms < 250)
		period_ms = 250;
	pthread_mutex_lock(&run->lock);
	while (!run->finished) {
		struct timespec until;
		int64_t t;
		int ret;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(period_ms % 1000) * 1000000L;
		until.tv_sec += period_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&run->wake, &run->lock, &until);
		if (run->finished)
			break;
		pthread_mutex_unlock(&run->lock);
		t = monotonic_ms();
		if (run_stalled(run) || t - renewed_ms < ttl_ms / 4 - 50) {
			pthread_mutex_lock(&run->lock);
			continue;
		}
		renewed_ms = t;
		const char *stop_why = NULL;
		ret =
		    st != NULL || store_open(run->cfg->db_conninfo, &st, error, sizeof(error)) == 0
		        ? store_lease_renew(st, run->acct->id, run->epoch, run->cfg->lease_ttl_s,
		                            &stop_why, error, sizeof(error))
		        : -1;
		if (ret == STORE_LEASE_LOST)
			run_fail(run, SYNC_LEASE_LOST, error);
		else if (ret == 0 && stop_why != NULL)
			run_fail(run, SYNC_STOPPED, stop_why);
		if (ret == 0 && store_slots_renew(st, run->slot_owner, run->cfg->lease_ttl_s, error,
		                                  sizeof(error)) < 0)
			log_warn("account %" PRId64 ": slot renewal: %s", run->acct->id, error);
		else if (ret < 0) {
			/* PostgreSQL unreachable: the deadline runs out and writes stop;
			 * reconnect and try again at the next beat. */
			log_warn("account %" PRId64 ": lease renewal: %s", run->acct->id, error);
			store_close(&st);
		}
		pthread_mutex_lock(&run->lock);
		if (ret == 0)
			run->lease_deadline_ms = t + ttl_ms - ttl_ms / 4;
	}
	pthread_mutex_unlock(&run->lock);
	store_close(&st);
	return NULL;
}

int run_heartbeat_start(struct account_run *run, pthread_t *thread_r)
{
	return pthread_create(thread_r, NULL, heartbeat_thread, run) != 0 ? -1 : 0;
}

void run_heartbeat_stop(struct account_run *run, pthread_t thread, bool *started)
{
	if (!*started)
		return;
	pthread_mutex_lock(&run->lock);
	run->finished = true;
	pthread_cond_signal(&run->wake);
	pthread_mutex_unlock(&run->lock);
	pthread_join(thread, NULL);
	*started = false;
}

/* Maps a store result to an outcome recorded in the run; returns ret.  error
 * is the buffer the store call wrote its text into (read here, after the
 * call). */
int store_check(struct folder_ctx *fc, int ret, const char *error)
{
	const char *msg = error[0] != '\0' ? error : "store failure";

	if (ret < 0)
		fc->store_failed = true;
	if (ret == STORE_LEASE_LOST)
		run_fail(fc->run, SYNC_LEASE_LOST, msg);
	else if (ret < 0)
		snprintf(fc->err, sizeof(fc->err), "%s", msg);
	else
		fc_alive(fc);
	return ret;
}

/* Takes one source and one destination connection slot for this thread's
 * sessions, unless held: STORE_TAKEN held, STORE_BUSY the budget of a server is used
 * up (nothing is held then), <0 store error. */
int slots_take(struct folder_ctx *fc)
{
	struct account_run *run = fc->run;
	char error[STORE_ERRLEN] = "";
	int ret;

	if (fc->src_slot == 0) {
		ret = store_slot_take(fc->st, run->acct->src.id, run->slot_owner,
		                      run->cfg->lease_ttl_s, &fc->src_slot, error, sizeof(error));
		if (ret != 0) {
			if (ret < 0)
				snprintf(fc->err, sizeof(fc->err), "%s", error);
			return ret;
		}
	}
	if (fc->dst_slot == 0) {
		ret = store_slot_take(fc->st, run->acct->dst.id, run->slot_owner,
		                      run->cfg->lease_ttl_s, &fc->dst_slot, error, sizeof(error));
		if (ret != 0) {
			if (ret < 0)
				snprintf(fc->err, sizeof(fc->err), "%s", error);
			store_slot_release(fc->st, run->acct->src.id, fc->src_slot, run->slot_owner,
			                   error, sizeof(error));
			fc->src_slot = 0;
			return ret;
		}
	}
	return STORE_TAKEN;
}

void slots_release(struct folder_ctx *fc)
{
	char error[STORE_ERRLEN] = "";

	if (fc->st == NULL)
		return;
	if (fc->src_slot != 0)
		store_slot_release(fc->st, fc->run->acct->src.id, fc->src_slot, fc->run->slot_owner,
		                   error, sizeof(error));
	if (fc->dst_slot != 0)
		store_slot_release(fc->st, fc->run->acct->dst.id, fc->dst_slot, fc->run->slot_owner,
		                   error, sizeof(error));
	fc->src_slot = fc->dst_slot = 0;
}
