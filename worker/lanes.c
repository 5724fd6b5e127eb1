/* A large folder's first copy in two streams (issue 12).  The destination
 * writes one connection's APPENDs one after another, so a folder holding half
 * an account's messages sets the pace of the whole account while the other
 * folder threads sit idle.  Here such a folder gets a lane: the upper half of
 * its source UIDs (lane_lo..lane_hi) is copied by a thread of its own on a
 * connection pair of its own, through the same batch protocol with a cursor
 * of its own (schema 16: lane_high_water and the lane's intent), while the
 * folder's thread copies what is below lane_lo.  When both are through one
 * commit closes the lane (high_water = lane_hi).  A crash anywhere leaves two
 * cursors that the next attempt resumes, each intent re-matched first with
 * every destination UID the folder already mapped left out, so that the two
 * streams' messages never stand in for each other.
 *
 * The price: the destination's UIDs of such a folder are two interleaved runs
 * instead of the source's order (INTERNALDATE, flags and content as always).
 * --split-min 0 keeps the order; only a folder's first copy is split, later
 * passes append in order. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A lane's work, handed from the folder's thread to the lane helper. */
enum lane_job_state { JOB_POSTED, JOB_TAKEN, JOB_DONE };
struct lane_job {
	struct store_folder *lv; /* the lane's cursor */
	const char *src_name;
	uint32_t exists, uidvalidity;
	enum lane_job_state state;
	bool copying; /* got as far as copying: a failure is the folder's */
	int ret;
	char err[512];
	bool store_failed, throttled_dst;
};

/* The lane's cursor of cp: the folder's names, the lane's high water and
 * intent.  lv is the caller's (store_folder_clear). */
static int lane_view(const struct store_folder *cp, struct store_folder *lv)
{
	memset(lv, 0, sizeof(*lv));
	lv->id = cp->id;
	lv->src_name = strdup(cp->src_name);
	lv->dst_name = strdup(cp->dst_name);
	lv->src_uidvalidity = cp->src_uidvalidity;
	lv->dst_uidvalidity = cp->dst_uidvalidity;
	lv->lane_lo = cp->lane_lo;
	lv->lane_hi = cp->lane_hi;
	lv->high_water =
	    cp->lane_high_water > cp->lane_lo - 1 ? cp->lane_high_water : cp->lane_lo - 1;
	lv->intent_dst_uidnext = cp->lane_intent_dst_uidnext;
	lv->intent_count = cp->lane_intent_count;
	if (cp->lane_intent_count > 0) {
		lv->intent_uids = malloc(cp->lane_intent_count * sizeof(*lv->intent_uids));
		if (lv->intent_uids != NULL)
			memcpy(lv->intent_uids, cp->lane_intent_uids,
			       cp->lane_intent_count * sizeof(*lv->intent_uids));
	}
	lv->lane = true;
	if (lv->src_name == NULL || lv->dst_name == NULL ||
	    (cp->lane_intent_count > 0 && lv->intent_uids == NULL)) {
		store_folder_clear(lv);
		return -1;
	}
	return 0;
}

int recover_lane_intent(struct folder_ctx *fc, struct store_folder *cp)
{
	struct store_folder lv;
	int ret;

	if (cp->lane_lo == 0 || cp->lane_intent_dst_uidnext == 0)
		return 0;
	if (lane_view(cp, &lv) < 0) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	ret = recover_intent(fc, &lv);
	if (ret == 0) {
		cp->lane_high_water = lv.high_water;
		cp->lane_intent_dst_uidnext = 0;
	}
	store_folder_clear(&lv);
	return ret;
}

/* Whether cp's copy goes in two streams now: the account's largest folder
 * with work (folders_order), a first copy of at least split_min messages on
 * the fast path (pipelined APPENDs, nothing that has to see each batch or
 * each message in order: rate limits, a daily cap, filters, merged folders,
 * a POP3 maildrop), one account on the worker. */
static bool lane_wanted(struct folder_ctx *fc, const struct store_folder *cp, uint32_t exists)
{
	struct account_run *run = fc->run;
	const struct store_account *acct = run->acct;

	return run->cfg->split_min > 0 && exists >= run->cfg->split_min && exists >= 2 &&
	       run->lane_folder != NULL && strcmp(run->lane_folder, cp->src_name) == 0 &&
	       cp->high_water == 0 && !cp->rematch && cp->intent_dst_uidnext == 0 &&
	       run->lane_fc != NULL && !run->merged && !run->src_pop3 && run->cfg->sharing <= 1 &&
	       run_unpaced(run) && acct->src.max_message_bytes <= 0 && acct->src.since == NULL &&
	       fc->dst != NULL && imap_append_can_pipeline(fc->dst);
}

/* --- the lane helper ----------------------------------------------------------
 * Started with the folder threads when the account's largest folder may be
 * split (lanes_start), it logs in while that folder's thread examines it, so
 * the second stream starts without waiting for its connections; then it runs
 * the lanes posted to it (run->lane_job) until lanes_stop.  A helper that
 * finds no slot or no connection says so (lane_gone) and the folder threads
 * copy their lanes themselves. */

static void lane_run(struct folder_ctx *fc, struct lane_job *job)
{
	struct imap_status opened;
	int ret = 0;

	atomic_store(&fc->busy, true);
	fc_alive(fc);
	fc->store_failed = false;
	fc->throttled_dst = false;
	fc->dst_uid_floor = 0;
	fc->err[0] = '\0';
	if (!src_is_open(fc) || fc->dst == NULL) {
		sessions_close(fc);
		ret = sessions_open(fc);
	}
	if (ret == 0)
		ret = src_examine(fc, job->src_name, &opened);
	if (ret == 0 && opened.uidvalidity != job->uidvalidity)
		ret = -1; /* changed under us: the folder's next attempt sees it */
	if (ret == 0) {
		job->copying = true;
		ret = copy_new(fc, job->lv, job->lv->lane_hi, job->exists, NULL);
	}
	job->ret = ret;
	snprintf(job->err, sizeof(job->err), "%s", fc->err);
	job->store_failed = fc->store_failed;
	job->throttled_dst = fc->throttled_dst;
	/* A session that failed is not used for the next lane (one that saw a
	 * whole refusal is sound). */
	if (ret != 0 && ret != FOLDER_AGAIN)
		sessions_close(fc);
	atomic_store(&fc->busy, false);
}

static void *lane_helper(void *arg)
{
	struct account_run *run = arg;
	struct folder_ctx *fc = run->lane_fc;
	char error[STORE_ERRLEN] = "";
	bool ready;

	ready =
	    fc->st != NULL || store_open(run->cfg->db_conninfo, &fc->st, error, sizeof(error)) == 0;
	ready = ready && slots_take(fc) == STORE_TAKEN;
	if (ready) {
		fc_alive(fc);
		atomic_store(&fc->busy, true);
		ready = sessions_open(fc) == 0;
		atomic_store(&fc->busy, false);
	}
	pthread_mutex_lock(&run->lock);
	while (ready && !run->lane_closing) {
		struct lane_job *job = run->lane_job;
		if (job == NULL || job->state != JOB_POSTED) {
			pthread_cond_wait(&run->lane_cv, &run->lock);
			continue;
		}
		job->state = JOB_TAKEN;
		pthread_mutex_unlock(&run->lock);
		lane_run(fc, job);
		pthread_mutex_lock(&run->lock);
		job->state = JOB_DONE;
		pthread_cond_broadcast(&run->lane_cv);
	}
	/* Gone: a lane posted and not taken goes back to its folder's thread. */
	run->lane_gone = true;
	pthread_cond_broadcast(&run->lane_cv);
	pthread_mutex_unlock(&run->lock);
	sessions_close(fc);
	slots_release(fc);
	return NULL;
}

void lanes_start(struct account_run *run)
{
	bool wanted = false;

	run->lane_gone = true;
	if (run->lane_fc == NULL || run->cfg->split_min == 0 || run->merged || run->src_pop3 ||
	    run->cfg->sharing > 1)
		return;
	for (size_t i = 0; i < run->nsrc && !wanted; i++) {
		if (run->dst_names[i] == NULL || (run->todo != NULL && !run->todo[i]))
			continue;
		/* A lane an interrupted attempt left open, or the largest
		 * folder on its first copy and large enough. */
		wanted =
		    run->rows[i].lane_lo != 0 ||
		    (run->lane_folder == run->src_folders[i].name && run->rows[i].high_water == 0 &&
		     run->src_known[i] && run->src_st[i].messages >= run->cfg->split_min);
	}
	if (!wanted)
		return;
	pthread_cond_init(&run->lane_cv, NULL);
	run->lane_gone = false;
	run->lane_closing = false;
	run->lane_started = pthread_create(&run->lane_thread, NULL, lane_helper, run) == 0;
	if (!run->lane_started) {
		pthread_cond_destroy(&run->lane_cv);
		run->lane_gone = true;
	}
}

/* Asks the helper to end once it is idle (a lane it runs is finished). */
static void lane_close(struct account_run *run)
{
	pthread_mutex_lock(&run->lock);
	run->lane_closing = true;
	pthread_cond_broadcast(&run->lane_cv);
	pthread_mutex_unlock(&run->lock);
}

void lanes_stop(struct account_run *run)
{
	if (!run->lane_started)
		return;
	lane_close(run);
	pthread_join(run->lane_thread, NULL);
	pthread_cond_destroy(&run->lane_cv);
	run->lane_started = false;
}

/* Posts job to the helper: false when there is none, or it is busy. */
static bool lane_post(struct account_run *run, struct lane_job *job)
{
	bool posted = false;

	pthread_mutex_lock(&run->lock);
	if (!run->lane_gone && !run->lane_closing && run->lane_job == NULL) {
		job->state = JOB_POSTED;
		run->lane_job = job;
		pthread_cond_broadcast(&run->lane_cv);
		posted = true;
	}
	pthread_mutex_unlock(&run->lock);
	return posted;
}

/* Waits for the posted job to end; false when the helper went away before
 * taking it (the job is withdrawn: the caller copies the lane). */
static bool lane_wait(struct folder_ctx *fc, struct lane_job *job)
{
	struct account_run *run = fc->run;
	bool taken;

	/* Waiting for the lane is no stall of this thread's. */
	atomic_store(&fc->busy, false);
	pthread_mutex_lock(&run->lock);
	while (job->state == JOB_TAKEN || (job->state == JOB_POSTED && !run->lane_gone))
		pthread_cond_wait(&run->lane_cv, &run->lock);
	taken = job->state == JOB_DONE;
	run->lane_job = NULL;
	/* One split per account: the helper's connections go back once the
	 * largest folder's lane is through (a failed one is resumed by the
	 * folder's next attempt). */
	bool done = taken && job->ret == 0 && run->lane_folder != NULL &&
	            strcmp(run->lane_folder, job->lv->src_name) == 0;
	pthread_mutex_unlock(&run->lock);
	if (done)
		lane_close(run);
	atomic_store(&fc->busy, true);
	fc_alive(fc);
	return taken;
}

/* The designated folder will not be split: the helper's connections go
 * back, unless a lane left open elsewhere may still use them. */
static void lane_decline(struct account_run *run)
{
	bool open_elsewhere = false;

	for (size_t i = 0; i < run->nsrc; i++)
		open_elsewhere = open_elsewhere || run->rows[i].lane_lo != 0;
	if (!open_elsewhere && run->lane_started)
		lane_close(run);
}

/* Copies source UIDs (cp->high_water, last] where the folder's first copy
 * is split in two (a lane opened now, or one left open by an interrupted
 * attempt); else as copy_new.  0, RUN_STOP or <0 with fc->err. */
int copy_folder_new(struct folder_ctx *fc, struct store_folder *cp, uint32_t last, uint32_t exists)
{
	struct account_run *run = fc->run;
	struct store_folder lv;
	struct lane_job job = {0};
	bool posted = false, helped = false;
	char error[STORE_ERRLEN] = "";
	int ret;

	if (cp->lane_lo == 0) {
		uint32_t lo = 0;

		if (!lane_wanted(fc, cp, exists)) {
			if (run->lane_folder != NULL && strcmp(run->lane_folder, cp->src_name) == 0)
				lane_decline(run);
			return copy_new(fc, cp, last, exists, NULL);
		}
		/* The split: the UID of the middle message. */
		ret = imap_fetch_uid_at(fc->src, exists / 2 + 1, &lo, fc->err, sizeof(fc->err));
		if (ret != 0)
			return ret;
		if (lo <= 1 || lo > last) {
			lane_decline(run);
			return copy_new(fc, cp, last, exists, NULL);
		}
		ret = store_check(fc,
		                  store_lane_open(fc->st, run->acct->id, run->epoch, cp->id, lo,
		                                  last, error, sizeof(error)),
		                  error);
		if (ret != 0)
			return ret;
		cp->lane_lo = lo;
		cp->lane_hi = last;
		cp->lane_high_water = 0;
		log_info("account %" PRId64 " folder %s: %" PRIu32
		         " messages, copied in two streams"
		         " (source UIDs from %" PRIu32 " on a connection pair of their own)",
		         run->acct->id, printable(cp->src_name, (char[256]){0}, 256), exists, lo);
	}
	if (lane_view(cp, &lv) < 0) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	if (lv.high_water < lv.lane_hi) {
		job.lv = &lv;
		job.src_name = cp->src_name;
		job.exists = exists;
		job.uidvalidity = cp->src_uidvalidity;
		posted = lane_post(run, &job);
	}
	ret = copy_new(fc, cp, cp->lane_lo - 1, exists, NULL);
	if (posted) {
		helped = lane_wait(fc, &job) && job.copying;
		if (ret == 0 && helped && job.ret != 0) {
			/* The lane's failure is the folder's: its next attempt
			 * resumes both cursors. */
			snprintf(fc->err, sizeof(fc->err), "%s", job.err);
			fc->store_failed = job.store_failed;
			fc->throttled_dst = job.throttled_dst;
			ret = job.ret;
		}
	}
	/* No helper (no connection, no slot, or busy with another folder's
	 * lane): this thread copies the lane's UIDs after its own. */
	if (ret == 0 && !helped && lv.high_water < lv.lane_hi) {
		log_info("account %" PRId64 " folder %s: no connection for the second stream;"
		         " its UIDs %" PRIu32 "..%" PRIu32 " follow on this one",
		         run->acct->id, printable(cp->src_name, (char[256]){0}, 256),
		         lv.high_water + 1, lv.lane_hi);
		ret = copy_new(fc, &lv, lv.lane_hi, exists, NULL);
	}
	cp->lane_high_water = lv.high_water;
	if (ret == 0 && (cp->high_water + 1 < cp->lane_lo || lv.high_water < lv.lane_hi)) {
		snprintf(fc->err, sizeof(fc->err),
		         "split copy incomplete (through UID %" PRIu32 " and %" PRIu32 ")",
		         cp->high_water, lv.high_water);
		ret = -1;
	}
	if (ret == 0) {
		ret = store_check(fc,
		                  store_lane_close(fc->st, run->acct->id, run->epoch, cp->id, error,
		                                   sizeof(error)),
		                  error);
		if (ret == 0) {
			cp->high_water =
			    cp->lane_hi > cp->high_water ? cp->lane_hi : cp->high_water;
			cp->lane_lo = cp->lane_hi = cp->lane_high_water = 0;
		}
	}
	store_folder_clear(&lv);
	/* What arrived after the split. */
	if (ret == 0 && cp->high_water < last)
		ret = copy_new(fc, cp, last, exists, NULL);
	return ret;
}
