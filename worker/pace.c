/* Pace of a run: the servers' fleet-wide rate limits, the account's daily
 * byte cap, waiting out a server that asks to slow down, and sleeps that the
 * watchdog does not count as stalls. */
#include "sync-private.h"

#include "log.h"
#include "pace.h"

#include <inttypes.h>

/* pace_go_fn of a run's waits: they end when the run is to stop. */
static bool run_go(void *context)
{
	return !run_should_stop(context);
}

/* Sleeps up to secs in short steps (lib/pace); false when the run is to stop. */
static bool run_sleep(struct account_run *run, double secs)
{
	return pace_sleep(secs, run_go, run) == PACE_SLEPT;
}

bool run_unpaced(const struct account_run *run)
{
	const struct store_account *acct = run->acct;

	return run->cap == 0 && acct->src.rate_messages == 0 && acct->src.rate_bytes == 0 &&
	       acct->dst.rate_messages == 0 && acct->dst.rate_bytes == 0;
}

/* run_sleep for a folder thread: a legitimate wait, which the watchdog does
 * not count as a stall. */
bool fc_sleep(struct folder_ctx *fc, double secs)
{
	bool busy = atomic_exchange(&fc->busy, false);
	bool ok = run_sleep(fc->run, secs);

	fc_alive(fc);
	atomic_store(&fc->busy, busy);
	return ok;
}

/* Before a batch: the servers' fleet-wide rate limits (and any "slow down"
 * a server asked for).  Returns 0 to go on, 1 when the run is to stop. */
int rate_gate(struct folder_ctx *fc, size_t n, uint64_t bytes)
{
	struct account_run *run = fc->run;
	const struct store_server *servers[2] = {&run->acct->src, &run->acct->dst};
	double wait = 0;

	for (int i = 0; i < 2; i++) {
		const struct store_server *srv = servers[i];
		bool limited = srv->rate_messages > 0 || srv->rate_bytes > 0;
		char error[STORE_ERRLEN] = "";
		double w = 0;
		if (store_check(fc,
		                store_rate_reserve(fc->st, srv->id, limited, n, bytes, &w, error,
		                                   sizeof(error)),
		                error) < 0)
			return -1;
		if (w > wait)
			wait = w;
	}
	if (wait <= 0)
		return 0;
	pthread_mutex_lock(&run->lock);
	run->stats.rate_wait_s += wait;
	pthread_mutex_unlock(&run->lock);
	return fc_sleep(fc, wait) ? 0 : RUN_STOP;
}

/* Keeps a batch within the account's daily byte cap: drops messages from its
 * end, and stops the run until the next UTC day when not even the first one
 * fits (a message larger than the whole cap travels alone at the start of a
 * day).  The bytes are counted as moved from here on. */
bool cap_fit(struct account_run *run, const struct imap_batch *sizes, size_t *i, size_t *n,
             size_t *bytes)
{
	bool fits;
	char why[160];

	if (run->cap == 0)
		return true;
	pthread_mutex_lock(&run->lock);
	if (time(NULL) / 86400 != run->day) { /* a new UTC day began during the run */
		run->day = time(NULL) / 86400;
		run->day_bytes = 0;
	}
	while (*n > 1 && run->day_bytes + *bytes > run->cap) {
		(*i)--;
		(*n)--;
		*bytes -= sizes->msgs[*i].size;
	}
	fits = run->day_bytes + *bytes <= run->cap || run->day_bytes == 0;
	if (fits)
		run->day_bytes += *bytes;
	pthread_mutex_unlock(&run->lock);
	if (!fits) {
		snprintf(why, sizeof(why),
		         "daily cap of %" PRIu64 " bytes reached; the rest carries over to the next"
		         " UTC day",
		         run->cap);
		run_wait(run, -1, why);
	}
	return fits;
}

/* Throttling answers a folder thread waits out before it gives the account
 * back to the scheduler for later (waiting, not failed). */
#define THROTTLE_MAX 20
#define THROTTLE_REQUEUE_S 300

/* After IMAP_ETHROTTLED: waits the server's suggested time (else 1, 2, 4 ...
 * up to 60 s; at most 600 s: pace_throttle_delay_s), and moves that server's
 * fleet-wide rate clock by as much so that every worker slows down for it.  A session the server
 * closed is reopened by the caller.  Returns 0 to retry, RUN_STOP when the run is to stop. */
int throttle_wait(struct folder_ctx *fc, int count)
{
	struct account_run *run = fc->run;
	const struct store_server *srv;
	struct imap_session *s;
	char error[STORE_ERRLEN] = "";
	int secs;

	/* Which server: the append path says; else the one whose last answer
	 * was a throttling one with a suggested wait. */
	if (!fc->throttled_dst && fc->src != NULL && fc->dst != NULL &&
	    imap_session_backoff_s(fc->src) == 0 && imap_session_backoff_s(fc->dst) > 0)
		fc->throttled_dst = true;
	srv = fc->throttled_dst ? &run->acct->dst : &run->acct->src;
	s = fc->throttled_dst ? fc->dst : fc->src;
	secs = s != NULL ? imap_session_backoff_s(s) : fc->open_backoff_s;

	secs = pace_throttle_delay_s(secs, count);
	pthread_mutex_lock(&run->lock);
	run->stats.throttled++;
	pthread_mutex_unlock(&run->lock);
	if (count > THROTTLE_MAX) {
		char why[700];
		snprintf(why, sizeof(why), "%s:%d keeps asking to slow down (%d times): %s",
		         srv->host, srv->port, count - 1, fc->err);
		run_wait(run, THROTTLE_REQUEUE_S, why);
		return RUN_STOP;
	}
	log_info("account %" PRId64 ": %s:%d asks to slow down (%s); waiting %d s", run->acct->id,
	         srv->host, srv->port, fc->err, secs);
	if (store_rate_penalty(fc->st, srv->id, secs, error, sizeof(error)) < 0)
		log_warn("account %" PRId64 ": rate clock: %s", run->acct->id, error);
	return fc_sleep(fc, secs) ? 0 : RUN_STOP;
}
