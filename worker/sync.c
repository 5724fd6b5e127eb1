/* One account, one pass.
 *
 * Per folder (source opened read-only, bodies fetched with BODY.PEEK):
 *   1. STATUS compares UIDVALIDITY, UIDNEXT, MESSAGES and HIGHESTMODSEQ with the
 *      checkpoint: unchanged means nothing to do, in one round trip.
 *   2. An open intent (a batch whose APPEND may or may not have landed) is
 *      re-matched first: destination messages at or above the recorded UIDNEXT
 *      are paired with the batch by content hash; only the rest is appended.
 *   3. New UIDs above the high-water mark are copied in batches bounded by
 *      count and bytes: intent -> APPEND -> commit (UID map runs, high water).
 *   4. Flag changes on already copied messages: CHANGEDSINCE the checkpoint's
 *      HIGHESTMODSEQ (RFC 7162) where the source has CONDSTORE, else a full
 *      compare; applied with UID STORE through the UID map.
 * A changed source UIDVALIDITY clears the map and re-matches the whole folder
 * by content before anything is appended, so nothing is copied twice.
 *
 * Identity is the SHA-256 of the message bytes: the copy never changes a byte,
 * so an exact match is always possible and no header is ever added.
 *
 * This file walks the folders: sync_account (credentials, heartbeat, slots,
 * folder list, threads), the folder threads with their sessions and retries,
 * and sync_folder (steps 1-4 above).  The steps live in batch.c (2, 3),
 * identity.c (matching by content), flags.c (4), with folders.c, sessions.c
 * (the logins), pace.c and run.c; sync-private.h lists them. */
#include "sync-private.h"

#include "log.h"
#include "pace.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Before matching a folder without a checkpoint against what its destination
 * holds: another run may still be finishing a batch into it (the old run of
 * an account removed and added back learns of that only at its next fenced
 * write, its APPENDs under way land meanwhile).  Waits until the destination's
 * UIDNEXT holds still for DST_QUIET_S seconds, at most DST_QUIET_MAX_S.  0, 1
 * to stop, <0. */
#define DST_QUIET_S 2
#define DST_QUIET_MAX_S 30
static int dst_wait_quiet(struct folder_ctx *fc, const char *dst_name, uint32_t uidnext)
{
	int64_t start = monotonic_ms(), still = start;
	struct imap_status st;
	int ret;

	while (monotonic_ms() - still < DST_QUIET_S * 1000 &&
	       monotonic_ms() - start < DST_QUIET_MAX_S * 1000) {
		if (!fc_sleep(fc, 0.5))
			return RUN_STOP;
		ret = imap_folder_status(fc->dst, dst_name, &st, fc->err, sizeof(fc->err));
		if (ret < 0)
			return ret;
		if (st.uidnext != uidnext) {
			uidnext = st.uidnext;
			still = monotonic_ms();
		}
	}
	return 0;
}

/* Brings one folder up to date.  known, known_dst: its source and
 * destination STATUS when folders_triage asked them moments ago (NULL: asked
 * here). */
static int sync_folder(struct folder_ctx *fc, const struct imap_folder *folder,
                       const char *dst_name, const struct imap_status *known,
                       const struct imap_status *known_dst)
{
	struct account_run *run = fc->run;
	struct store_folder cp = {0};
	struct imap_status st, opened, dst_st;
	struct dst_index idx = {0};
	uint32_t copied_before;
	char error[STORE_ERRLEN] = "";
	int64_t t0 = monotonic_ms();
	int ret = 0;

	fc->dst_uid_floor = 0;
	if (known != NULL)
		st = *known;
	else
		ret = phase_add(fc, PHASE_STATUS, t0, src_status(fc, folder->name, &st));
	if (ret < 0)
		return ret;
	fc_alive(fc);
	/* Never a checkpoint from invalid data (RFC 3501 2.3.1.1: UIDVALIDITY
	 * and UIDNEXT are non-zero): a UIDVALIDITY 0 stored now and 1 later
	 * would look like a change; a missing UIDNEXT would copy nothing and
	 * pass for synced. */
	if (st.uidvalidity == 0 || st.uidnext == 0) {
		snprintf(fc->err, sizeof(fc->err),
		         "STATUS: the source server's answer is invalid: %s is 0 or missing",
		         st.uidvalidity == 0 ? "UIDVALIDITY" : "UIDNEXT");
		return IMAP_EPROTO;
	}
	t0 = monotonic_ms();
	ret = store_check(fc,
	                  store_folder_get(fc->st, run->acct->id, run->epoch, folder->name,
	                                   dst_name, &cp, error, sizeof(error)),
	                  error);
	phase_add(fc, PHASE_STORE, t0, 0);
	if (ret < 0)
		return ret;
	/* The destination's UIDVALIDITY too: a folder deleted and created
	 * again there (or a server rebuilt) makes the UID map point at nothing,
	 * or at other messages; it is then re-matched like a source change. */
	bool dst_known = false, dst_changed = false;
	if (cp.src_uidvalidity == st.uidvalidity && cp.dst_uidvalidity != 0) {
		t0 = monotonic_ms();
		if (known_dst != NULL)
			dst_st = *known_dst;
		else
			ret = phase_add(fc, PHASE_STATUS, t0,
			                imap_folder_status(fc->dst, dst_name, &dst_st, fc->err,
			                                   sizeof(fc->err)));
		if (ret < 0)
			goto out;
		dst_known = true;
		dst_changed = dst_st.uidvalidity != cp.dst_uidvalidity;
	}
	if (cp.src_uidvalidity != st.uidvalidity || dst_changed) {
		bool rematch = cp.src_uidvalidity != 0;
		char shown[256];
		if (!dst_known) {
			ret = imap_folder_status(fc->dst, dst_name, &dst_st, fc->err,
			                         sizeof(fc->err));
			if (ret < 0)
				goto out;
		}
		printable(folder->name, shown, sizeof(shown));
		if (dst_changed)
			log_warn("account %" PRId64 " folder %s: destination UIDVALIDITY changed"
			         " (%" PRIu32 " -> %" PRIu32 "): re-matching by content",
			         run->acct->id, shown, cp.dst_uidvalidity, dst_st.uidvalidity);
		else if (rematch)
			log_warn("account %" PRId64 " folder %s: source UIDVALIDITY changed"
			         " (%" PRIu32 " -> %" PRIu32 "): re-matching by content",
			         run->acct->id, shown, cp.src_uidvalidity, st.uidvalidity);
		/* No checkpoint, but the destination folder holds messages: a
		 * re-run of an import, an account removed and added back, a copy
		 * by another tool.  Match by content before appending anything. */
		if (!rematch && dst_st.messages > 0) {
			rematch = true;
			log_info("account %" PRId64 " folder %s: no checkpoint and %" PRIu32
			         " messages already in the destination: matching by content first",
			         run->acct->id, shown, dst_st.messages);
			ret = dst_wait_quiet(fc, dst_name, dst_st.uidnext);
			if (ret != 0)
				goto out;
		}
		ret = store_check(fc,
		                  store_folder_reset(fc->st, run->acct->id, run->epoch, cp.id,
		                                     st.uidvalidity, dst_st.uidvalidity, rematch,
		                                     error, sizeof(error)),
		                  error);
		if (ret < 0)
			goto out;
		cp.src_uidvalidity = st.uidvalidity;
		cp.high_water = 0;
		cp.highest_modseq = 0;
		cp.src_uidnext = 0;
		cp.intent_dst_uidnext = 0;
		cp.rematch = rematch;
	}
	if (!cp.rematch && cp.intent_dst_uidnext == 0 && cp.lane_lo == 0 &&
	    cp.src_uidnext == st.uidnext && cp.src_messages == st.messages &&
	    st.highestmodseq != 0 && cp.highest_modseq == st.highestmodseq) {
		log_debug("account %" PRId64 " folder %s unchanged", run->acct->id, folder->name);
		goto out;
	}
	t0 = monotonic_ms();
	ret = phase_add(fc, PHASE_STATUS, t0, src_examine(fc, folder->name, &opened));
	if (ret < 0)
		goto out;
	fc_alive(fc);
	if (opened.uidvalidity != st.uidvalidity) {
		snprintf(fc->err, sizeof(fc->err),
		         "EXAMINE: UIDVALIDITY %" PRIu32 " differs from STATUS's %" PRIu32
		         " in the same pass",
		         opened.uidvalidity, st.uidvalidity);
		ret = IMAP_EPROTO;
		goto out;
	}
	copied_before = cp.high_water;
	if (cp.intent_dst_uidnext != 0) {
		ret = recover_intent(fc, &cp);
		if (ret != 0)
			goto out;
	}
	ret = recover_lane_intent(fc, &cp);
	if (ret != 0)
		goto out;
	if (cp.rematch) {
		ret = dst_index_build(fc, cp.dst_name, 1, &idx);
		if (ret == 0 && run->merged)
			ret = dst_index_claimed(fc, &cp, false, &idx);
		if (ret != 0)
			goto out;
	}
	if (st.uidnext > 1) {
		ret = cp.rematch ? copy_new(fc, &cp, st.uidnext - 1, opened.messages, &idx)
		                 : copy_folder_new(fc, &cp, st.uidnext - 1, opened.messages);
		if (ret != 0)
			goto out;
	}
	if (copied_before > 0 && !cp.rematch && src_has_flags(fc)) {
		uint64_t since = st.highestmodseq != 0 ? cp.highest_modseq : 0;
		t0 = monotonic_ms();
		ret = phase_add(fc, PHASE_FLAGS, t0, sync_flags(fc, &cp, copied_before, since));
		if (ret != 0)
			goto out;
	}
	t0 = monotonic_ms();
	ret = store_check(fc,
	                  store_folder_synced(fc->st, run->acct->id, run->epoch, cp.id, st.uidnext,
	                                      st.messages, st.highestmodseq, error, sizeof(error)),
	                  error);
	phase_add(fc, PHASE_STORE, t0, 0);
	if (ret == 0) {
		pthread_mutex_lock(&run->lock);
		run->stats.folders++;
		pthread_mutex_unlock(&run->lock);
	}
out:
	dst_index_free(&idx);
	store_folder_clear(&cp);
	return ret;
}

/* Default folder threads of one account, at most (sync_config.folder_threads 0). */
#define AUTO_FOLDER_THREADS 4
/* Default folder threads of a worker, shared by the accounts it copies at once. */
#define WORKER_FOLDER_THREADS 8

/* Connections and LIST of an account: attempts when the connection drops. */
#define PREPARE_ATTEMPTS 4

/* Number of attempts per folder when the connection drops (reset, timeout,
 * BYE): each attempt reconnects and resumes from the checkpoint, re-matching
 * the open intent first. */
#define FOLDER_ATTEMPTS 4

static void folder_thread_run(struct folder_ctx *fc);

/* A folder thread: folders until none is left, then its connections and
 * their budget slots go back at once (not when the whole account ends). */
static void *folder_thread(void *arg)
{
	struct folder_ctx *fc = arg;

	folder_thread_run(fc);
	sessions_close(fc);
	slots_release(fc);
	return NULL;
}

/* Whether a failure of sync_folder is the folder's own (the server refused
 * or garbled something about this folder: recorded, the account goes on) or
 * the account's (PostgreSQL, or no connection after every attempt). */
static bool folder_own_error(const struct folder_ctx *fc, int ret)
{
	return ret < 0 && !fc->store_failed && ret != IMAP_ENET && ret != IMAP_ETHROTTLED &&
	       ret != IMAP_EAUTH && src_is_open(fc) && fc->dst != NULL;
}

static void folder_thread_run(struct folder_ctx *fc)
{
	struct account_run *run = fc->run;
	char error[STORE_ERRLEN] = "";

	if (fc->st == NULL &&
	    store_open(run->cfg->db_conninfo, &fc->st, error, sizeof(error)) < 0) {
		run_fail(run, SYNC_FAILED, error);
		return;
	}
	/* A helper thread without a slot of both servers' budgets just does not
	 * run: the account goes on with fewer parallel folders. */
	if (slots_take(fc) != STORE_TAKEN)
		return;
	for (;;) {
		size_t i;
		int ret = -1;

		pthread_mutex_lock(&run->lock);
		i = run->next_folder++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->nsrc || run_should_stop(run))
			break;
		if (run->order != NULL)
			i = run->order[i];
		if (run->dst_names[i] == NULL || (run->todo != NULL && !run->todo[i]))
			continue;
		fc_alive(fc);
		atomic_store(&fc->busy, true);
		int throttles = 0;
		/* The triage's STATUS serves the first try only. */
		const struct imap_status *known =
		    run->src_known != NULL && run->src_known[i] ? &run->src_st[i] : NULL;
		const struct imap_status *known_dst =
		    run->dst_known != NULL && run->dst_known[i] ? &run->dst_st[i] : NULL;
		uint64_t rt_src = fc->src_io.round_trips, rt_dst = fc->dst_io.round_trips;
		int64_t started = monotonic_ms();
		for (int attempt = 0; attempt < FOLDER_ATTEMPTS && !run_should_stop(run);) {
			ret = 0;
			fc->store_failed = false;
			if (!src_is_open(fc) || fc->dst == NULL) {
				sessions_close(fc);
				ret = sessions_open(fc);
				if (ret == IMAP_EAUTH) {
					atomic_store(&fc->busy, false);
					return;
				}
			}
			if (ret == 0) {
				fc->throttled_dst = false;
				ret = sync_folder(fc, &run->src_folders[i], run->dst_names[i],
				                  known, known_dst);
				known = known_dst = NULL;
			}
			if (ret == IMAP_ETHROTTLED) {
				/* Not an error, and not an attempt: wait as asked. */
				int64_t t0 = monotonic_ms();
				if (phase_add(fc, PHASE_WAIT, t0, throttle_wait(fc, ++throttles)) !=
				    0)
					break;
				continue;
			}
			attempt++;
			if (ret < 0 && (!src_is_open(fc) || fc->dst == NULL)) {
				/* Could not connect: the next attempt retries, after
				 * 1, 2, 4 s (a server restarting, a dropped link). */
				if (attempt < FOLDER_ATTEMPTS && !fc_sleep(fc, 1 << (attempt - 1)))
					break;
				continue;
			}
			if (ret == FOLDER_AGAIN && !fc->store_failed && attempt < FOLDER_ATTEMPTS)
				continue;
			/* The store failure flag, not the value, tells a failure of
			 * PostgreSQL (-1 like many others) from the servers'. */
			if (fc->store_failed || ret != IMAP_ENET || run_should_stop(run))
				break;
			log_warn("account %" PRId64 " folder %s: %s; reconnecting", run->acct->id,
			         printable(run->src_folders[i].name, (char[256]){0}, 256), fc->err);
			sessions_close(fc);
		}
		atomic_store(&fc->busy, false);
		log_debug("account %" PRId64 " folder %s: %.3f s, round trips: source %" PRIu64
		          ", destination %" PRIu64,
		          run->acct->id, printable(run->src_folders[i].name, (char[256]){0}, 256),
		          (double)(monotonic_ms() - started) / 1000.0,
		          fc->src_io.round_trips - rt_src, fc->dst_io.round_trips - rt_dst);
		if (ret == RUN_STOP || run_should_stop(run))
			break;
		if (folder_own_error(fc, ret)) {
			char why[600];
			snprintf(why, sizeof(why), "%s", fc->err);
			if (folder_failed(fc, run->src_folders[i].name, run->dst_names[i], why) < 0)
				break;
			/* The session may be broken (invalid data, a bound broken):
			 * the next folder starts on new ones.  A refusal (NO) or an
			 * argument never sent leaves it usable. */
			if (ret != IMAP_ENO && ret != IMAP_EARG)
				sessions_close(fc);
		} else if (ret < 0) {
			char msg[768];
			snprintf(msg, sizeof(msg), "folder %s: %s",
			         printable(run->src_folders[i].name, (char[256]){0}, 256), fc->err);
			run_fail(run, SYNC_FAILED, msg);
		}
	}
	return;
}

/* Sums the folder threads' phase times and round trips into run->stats and
 * logs them: where one account's time went, per pass. */
static void run_cost_log(struct account_run *run)
{
	char line[512];
	size_t len = 0;
	uint64_t changed;

	for (int i = 0; i < run->nfcs; i++) {
		for (int p = 0; p < PHASE_COUNT; p++)
			run->stats.phase_ms[p] += run->fcs[i].phase_ms[p];
		run->stats.rt_src += run->fcs[i].src_io.round_trips;
		run->stats.rt_dst += run->fcs[i].dst_io.round_trips;
	}
	line[0] = '\0';
	for (int p = 0; p < PHASE_COUNT; p++)
		if (run->stats.phase_ms[p] > 0)
			len += (size_t)snprintf(
			    line + len, len < sizeof(line) ? sizeof(line) - len : 0, " %s %.3f",
			    run_phase_names[p], (double)run->stats.phase_ms[p] / 1000.0);
	changed = 0;
	for (size_t i = 0; i < run->nsrc && run->todo != NULL; i++)
		changed += run->dst_names[i] != NULL && run->todo[i];
	log_info(
	    "account %" PRId64 ": %zu listed, %" PRIu64 " unchanged; round trips: source %" PRIu64
	    ", destination %" PRIu64 " (%.1f per folder with work); thread time (s):%s",
	    run->acct->id, run->nsrc, run->stats.folders_unchanged, run->stats.rt_src,
	    run->stats.rt_dst,
	    changed > 0 ? (double)(run->stats.rt_src + run->stats.rt_dst) / (double)changed : 0.0,
	    line);
}

_Static_assert(PACE_TAKEN == STORE_TAKEN && PACE_BUSY == STORE_BUSY, "lib/pace results");

/* pace_take_fn: one try for both slots of a folder thread (slots_take). */
static int slots_try(void *context)
{
	return slots_take(context);
}

/* pace_go_fn of the account's first slot wait: says once that it waits; the
 * wait ends when the run is to stop. */
struct slot_wait {
	struct account_run *run;
	bool logged;
};

static bool slots_wait_go(void *context)
{
	struct slot_wait *sw = context;
	const struct store_account *acct = sw->run->acct;

	if (run_should_stop(sw->run))
		return false;
	if (!sw->logged)
		log_info("account %" PRId64 ": waiting for a connection slot (%s:%d allows %d,"
		         " %s:%d allows %d across the fleet)",
		         acct->id, acct->src.host, acct->src.port, acct->src.max_connections,
		         acct->dst.host, acct->dst.port, acct->dst.max_connections);
	sw->logged = true;
	return true;
}

enum sync_outcome sync_account(const struct sync_config *cfg, struct store *st,
                               const struct store_account *acct, int64_t epoch,
                               struct sync_stats *stats_r, char *err, size_t errlen)
{
	struct account_run run;
	struct slot_wait slot_wait = {.run = &run};
	struct folder_ctx *fcs = NULL;
	pthread_t *threads = NULL, heartbeat;
	bool heartbeat_started = false;
	int nthreads = 1, started = 0, ret;

	memset(&run, 0, sizeof(run));
	pthread_mutex_init(&run.lock, NULL);
	run.cfg = cfg;
	run.acct = acct;
	run.epoch = epoch;
	run.outcome = SYNC_DONE;
	run.src_pop3 = acct->src.protocol != NULL && strcmp(acct->src.protocol, "pop3") == 0;
	/* The tighter of the two servers' daily caps, with what today moved. */
	run.cap = (uint64_t)acct->src.account_daily_bytes;
	if (acct->dst.account_daily_bytes > 0 &&
	    (run.cap == 0 || (uint64_t)acct->dst.account_daily_bytes < run.cap))
		run.cap = (uint64_t)acct->dst.account_daily_bytes;
	run.day_bytes = acct->day_bytes > 0 ? (uint64_t)acct->day_bytes : 0;
	run.day = time(NULL) / 86400;
	/* The lease was taken just before this call. */
	run.lease_deadline_ms = monotonic_ms() + (int64_t)cfg->lease_ttl_s * 1000 * 3 / 4;
	pthread_cond_init(&run.wake, NULL);
	if ((ret = account_creds_open(acct, cfg->key, cfg->ca_file, &run.creds, err, errlen)) < 0) {
		run.outcome = ret == ACCOUNT_KEY_FAILED ? SYNC_KEY_FAILED : SYNC_FAILED;
		goto out;
	}
	/* Folder threads: within both servers' connection budgets; by default
	 * half the smaller budget (room for a second account at once), at most
	 * AUTO_FOLDER_THREADS. */
	nthreads = cfg->folder_threads;
	if (nthreads <= 0) {
		int budget = acct->src.max_connections;
		if (acct->dst.max_connections > 0 &&
		    (budget <= 0 || acct->dst.max_connections < budget))
			budget = acct->dst.max_connections;
		nthreads = budget > 0 ? budget / 2 : AUTO_FOLDER_THREADS;
		if (nthreads > AUTO_FOLDER_THREADS)
			nthreads = AUTO_FOLDER_THREADS;
		/* A worker copying several accounts at once keeps its servers
		 * no busier than one with WORKER_FOLDER_THREADS threads: more
		 * connections only add contention on the destination. */
		if (cfg->sharing > 1 && nthreads > WORKER_FOLDER_THREADS / cfg->sharing)
			nthreads = WORKER_FOLDER_THREADS / cfg->sharing;
	}
	if (acct->src.max_connections > 0 && nthreads > acct->src.max_connections)
		nthreads = acct->src.max_connections;
	if (acct->dst.max_connections > 0 && nthreads > acct->dst.max_connections)
		nthreads = acct->dst.max_connections;
	if (nthreads < 1)
		nthreads = 1;
	/* One more for a large folder's second stream (lanes.c). */
	fcs = calloc((size_t)nthreads + 1, sizeof(*fcs));
	threads = calloc((size_t)nthreads, sizeof(*threads));
	if (fcs == NULL || threads == NULL) {
		snprintf(err, errlen, "out of memory");
		run.outcome = SYNC_FAILED;
		goto out;
	}
	for (int i = 0; i <= nthreads; i++)
		fcs[i].run = &run;
	fcs[0].st = st;
	run.fcs = fcs;
	run.nfcs = nthreads + 1;
	run.lane_fc = &fcs[nthreads];
	if (run_heartbeat_start(&run, &heartbeat) < 0) {
		snprintf(err, errlen, "cannot start the lease heartbeat");
		run.outcome = SYNC_FAILED;
		goto out;
	}
	heartbeat_started = true;
	snprintf(run.slot_owner, sizeof(run.slot_owner), "%" PRId64 ":%" PRId64, acct->id, epoch);
	/* The account's first connections wait for the servers' budgets. */
	ret = pace_slot_wait(slots_try, &fcs[0], -1, slots_wait_go, &slot_wait);
	if (ret == STORE_BUSY) {
		run_fail(&run, SYNC_STOPPED, "stopped while waiting for a connection slot");
		goto join;
	}
	/* The first connections and the folder list, waiting out any server
	 * that asks to slow down, and retrying in place a connection that drops
	 * (reset, timeout, BYE) at login or LIST: 1, 2, 4 s, before the account
	 * counts as failed. */
	atomic_store(&fcs[0].busy, true);
	fc_alive(&fcs[0]);
	for (int throttles = 1, drops = 0; ret == 0;) {
		fcs[0].store_failed = false;
		ret = sessions_open(&fcs[0]);
		int64_t t0 = monotonic_ms();
		if (ret == 0)
			ret = phase_add(&fcs[0], PHASE_LIST, t0, folders_prepare(&fcs[0]));
		if (ret == IMAP_ENET && !fcs[0].store_failed && ++drops < PREPARE_ATTEMPTS &&
		    !run_should_stop(&run)) {
			log_warn("account %" PRId64 ": %s; trying again in %d s", acct->id,
			         fcs[0].err, 1 << (drops - 1));
			sessions_close(&fcs[0]);
			ret = fc_sleep(&fcs[0], 1 << (drops - 1)) ? 0 : RUN_STOP;
			continue;
		}
		if (ret != IMAP_ETHROTTLED)
			break;
		/* Wait first: the sessions hold the server's suggested time. */
		ret = throttle_wait(&fcs[0], throttles++);
		sessions_close(&fcs[0]);
		if (ret != 0)
			goto join;
	}
	atomic_store(&fcs[0].busy, false);
	if (ret != 0) {
		if (ret < 0 && run.outcome == SYNC_DONE)
			run_fail(&run, SYNC_FAILED, fcs[0].err);
		goto join;
	}
	folders_triage(&fcs[0]);
	folders_order(&run);
	lanes_start(&run);
	/* As many folder threads as folders with work, up to the budget. */
	size_t todo = 0;
	for (size_t i = 0; i < run.nsrc; i++)
		todo += run.dst_names[i] != NULL && run.todo[i];
	for (int i = 1; i < nthreads && (size_t)i < todo && !run.merged; i++) {
		if (pthread_create(&threads[i], NULL, folder_thread, &fcs[i]) != 0)
			break;
		started = i;
	}
	folder_thread(&fcs[0]);
join:
	for (int i = 1; i <= started; i++)
		pthread_join(threads[i], NULL);
	lanes_stop(&run);
	for (int i = 0; i <= nthreads; i++) {
		sessions_close(&fcs[i]);
		slots_release(&fcs[i]);
		if (i > 0)
			store_close(&fcs[i].st);
	}
	/* Contacts and calendars once the mail is done, still under the lease. */
	if (run.outcome == SYNC_DONE && !*cfg->stop && dav_wanted(acct))
		(void)dav_copy(&run, st);
	run_heartbeat_stop(&run, heartbeat, &heartbeat_started);
	run_cost_log(&run);
	if (run.outcome == SYNC_DONE && *cfg->stop)
		run.outcome = SYNC_STOPPED;
	if (run.outcome != SYNC_DONE)
		snprintf(err, errlen, "%s", run.error[0] != '\0' ? run.error : "stopped");
out:
	account_creds_close(&run.creds);
	imap_folders_free(&run.src_folders, run.nsrc);
	imap_folders_free(&run.dst_folders, run.ndst);
	if (run.dst_names != NULL)
		for (size_t i = 0; i < run.nsrc; i++)
			free(run.dst_names[i]);
	free(run.dst_names);
	folders_state_free(&run);
	imap_rules_free(&run.rules);
	free(fcs);
	free(threads);
	run_heartbeat_stop(&run, heartbeat, &heartbeat_started);
	pthread_cond_destroy(&run.wake);
	pthread_mutex_destroy(&run.lock);
	*stats_r = run.stats;
	stats_r->wait_s = run.wait_s;
	return run.outcome;
}
