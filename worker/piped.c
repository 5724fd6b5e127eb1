/* Fetching ahead and pipelined APPENDs (docs/DESIGN.md section 2): the next
 * batch's bodies fetched by a thread of its own while the current one is
 * appended (prefetch_*), and copy_piped, which keeps two MULTIAPPENDs on the
 * way under one intent.  The batch protocol itself is in batch.c. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Bytes an account's folder threads may be fetching ahead at once. */
#define AHEAD_BYTES ((size_t)4 << 20)

/* The next batch's bodies, fetched on the source session by a thread of its
 * own while the current batch is appended to the destination: the two
 * servers work at once instead of in turn.  Only the fetch runs there (the
 * source session and its I/O counters, PHASE_FETCH, its own error text);
 * everything else stays in the folder thread, which joins the fetch before it
 * looks at any result. */

static void *prefetch_run(void *arg)
{
	struct prefetch *pf = arg;
	int64_t t0 = monotonic_ms();

	pf->ret = src_bodies(pf->fc, pf->uids, pf->n, &pf->bodies, pf->err, sizeof(pf->err));
	if (pf->ret == 0)
		fc_alive(pf->fc);
	phase_add(pf->fc, PHASE_FETCH, t0, 0);
	return NULL;
}

/* Starts fetching pf's batch; false when no thread could be had (the batch
 * is then fetched in turn). */
bool prefetch_start(struct prefetch *pf)
{
	struct account_run *run = pf->fc->run;
	bool room;

	/* The account's folder threads fetch ahead within AHEAD_BYTES between
	 * them: the worker's memory stays bounded however many run. */
	pthread_mutex_lock(&run->lock);
	room = run->ahead_bytes + pf->bytes <= AHEAD_BYTES;
	if (room)
		run->ahead_bytes += pf->bytes;
	pthread_mutex_unlock(&run->lock);
	if (!room)
		return false;
	memset(&pf->bodies, 0, sizeof(pf->bodies));
	pf->ret = 0;
	pf->err[0] = '\0';
	pf->running = pthread_create(&pf->thread, NULL, prefetch_run, pf) == 0;
	if (!pf->running) {
		pthread_mutex_lock(&run->lock);
		run->ahead_bytes -= pf->bytes;
		pthread_mutex_unlock(&run->lock);
	}
	return pf->running;
}

/* Waits for the fetch; its result is in pf->ret, pf->bodies, pf->err. */
void prefetch_join(struct prefetch *pf)
{
	struct account_run *run = pf->fc->run;

	if (!pf->running)
		return;
	pthread_join(pf->thread, NULL);
	pf->running = false;
	pthread_mutex_lock(&run->lock);
	run->ahead_bytes -= pf->bytes;
	pthread_mutex_unlock(&run->lock);
}

/* --- pipelined APPENDs ------------------------------------------------------ */

/* Batches cut ahead: at most PIPE_DEPTH sent and unanswered, one more cut. */
#define PIPE_DEPTH 2
#define PIPE_SLOTS (PIPE_DEPTH + 1)

struct piped {
	uint32_t *uids; /* as cut, ascending; the intent names them */
	size_t n, bytes;
	bool fetched, sent;
	struct imap_batch bodies; /* freed once written */
	uint32_t *src_uid;        /* per message sent (or refused unsent) */
	size_t *len, count;       /* its bytes; how many */
	struct imap_append_result *results;
	struct imap_append_pending pending;
};

static void piped_clear(struct piped *q)
{
	imap_batch_free(&q->bodies);
	imap_append_pending_free(&q->pending);
	free(q->src_uid);
	free(q->len);
	free(q->results);
	q->src_uid = NULL;
	q->len = NULL;
	q->results = NULL;
	q->n = q->bytes = q->count = 0;
	q->fetched = q->sent = false;
}

/* The next plain batch of the window: not spooled, no message over the
 * limit.  false (nothing cut, *i unchanged) when there is none. */
static bool cut_plain(struct folder_ctx *fc, const struct imap_batch *sizes, size_t *i,
                      size_t batch_count, struct piped *q)
{
	const struct sync_config *cfg = fc->run->cfg;
	size_t at = *i;

	if (*i >= sizes->count ||
	    (cfg->max_message_bytes > 0 && sizes->msgs[*i].size > cfg->max_message_bytes))
		return false;
	if (batch_cut(sizes, i, batch_count, cfg->batch_bytes, cfg->max_message_bytes, q->uids,
	              &q->n, &q->bytes)) {
		*i = at;
		return false;
	}
	return true;
}

/* Writes q's batch as a MULTIAPPEND without waiting, and lets its bodies go
 * (what recovery needs it fetches again). */
static int piped_send(struct folder_ctx *fc, struct store_folder *cp, struct piped *q)
{
	int64_t t0 = monotonic_ms();
	int ret;

	q->count = q->bodies.count;
	q->src_uid = calloc(q->count + 1, sizeof(*q->src_uid));
	q->len = calloc(q->count + 1, sizeof(*q->len));
	q->results = calloc(q->count + 1, sizeof(*q->results));
	if (q->src_uid == NULL || q->len == NULL || q->results == NULL) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	for (size_t k = 0; k < q->count; k++) {
		q->src_uid[k] = q->bodies.msgs[k].uid;
		q->len[k] = q->bodies.msgs[k].body_len;
	}
	ret = imap_append_send(fc->dst, cp->dst_name, q->bodies.msgs, q->count, q->results,
	                       &q->pending, fc->err, sizeof(fc->err));
	phase_add(fc, PHASE_APPEND, t0, 0);
	imap_batch_free(&q->bodies);
	q->sent = ret == 0;
	return ret;
}

/* Commits the answered batch q (step (c)) with the intent of the batches
 * cut after it (next, may be empty). */
static int piped_commit(struct folder_ctx *fc, struct store_folder *cp, struct piped *q,
                        const struct store_intent *next, uint32_t *bound)
{
	struct account_run *run = fc->run;
	struct store_uidpair *pairs = calloc(q->count + 1, sizeof(*pairs));
	struct store_msg_error *errors = calloc(q->count + 1, sizeof(*errors));
	size_t npairs = 0, nerrors = 0, appended = 0;
	uint64_t bytes = 0;
	uint32_t top = 0;
	char error[STORE_ERRLEN] = "";
	int64_t t0;
	int ret;

	if (pairs == NULL || errors == NULL) {
		free(pairs);
		free(errors);
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	for (size_t k = 0; k < q->count; k++) {
		if (q->results[k].error[0] != '\0') {
			log_warn("account %" PRId64 " folder %s uid %" PRIu32 ": %s", run->acct->id,
			         cp->src_name, q->src_uid[k], q->results[k].error);
			errors[nerrors].src_uid = q->src_uid[k];
			errors[nerrors++].error = q->results[k].error;
			continue;
		}
		appended++;
		bytes += q->len[k];
		if (q->results[k].dst_uid != 0) {
			pairs[npairs].src = q->src_uid[k];
			pairs[npairs++].dst = q->results[k].dst_uid;
			top = q->results[k].dst_uid > top ? q->results[k].dst_uid : top;
		}
	}
	/* UIDPLUS was asked of the server: every stored message has its UID. */
	if (npairs == appended && top != 0 && top < UINT32_MAX)
		fc->dst_uid_floor = top + 1;
	else
		fc->dst_uid_floor = 0;
	/* The next intent's bound: above this batch's UIDs, or else the open
	 * intent's own bound, which is below every UID given since. */
	struct store_intent intent = next != NULL ? *next : (struct store_intent){0};
	intent.dst_uidnext = fc->dst_uid_floor != 0 ? fc->dst_uid_floor : *bound;
	bool with_next = intent.count > 0;
	t0 = monotonic_ms();
	ret = store_batch_commit(fc->st, run->acct->id, run->epoch, cp->id, cp->lane, pairs, npairs,
	                         errors, nerrors, q->uids[q->n - 1], appended, bytes, 0,
	                         with_next ? &intent : NULL, error, sizeof(error));
	ret = phase_add(fc, PHASE_STORE, t0, store_check(fc, ret, error));
	if (ret == 0 && with_next)
		*bound = intent.dst_uidnext;
	if (ret == 0) {
		cp->high_water = q->uids[q->n - 1];
		pthread_mutex_lock(&run->lock);
		run->stats.messages += appended;
		run->stats.bytes += bytes;
		run->stats.errors += nerrors;
		struct sync_stats totals = run->stats;
		pthread_mutex_unlock(&run->lock);
		if (run->cfg->progress != NULL)
			run->cfg->progress(run->cfg->progress_context, run->acct, run->epoch,
			                   &totals, cp->src_name);
	}
	free(pairs);
	free(errors);
	return ret;
}

/* Reads the answer of q[j]'s MULTIAPPEND, keeping those of q[j+1 .. nsent)
 * read on the way. */
static int piped_finish(struct folder_ctx *fc, struct piped *q, size_t j, size_t nsent, char *err,
                        size_t errlen)
{
	struct imap_append_pending *others[PIPE_SLOTS];
	size_t n = 0;

	for (size_t k = j + 1; k < nsent && n < PIPE_SLOTS; k++)
		others[n++] = &q[k].pending;
	return imap_append_finish(fc->dst, &q[j].pending, others, n, q[j].results, err, errlen);
}

/* The intent of every batch in q[0 .. n): their UIDs, ascending. */
static int piped_intent(struct piped *q, size_t n, uint32_t **uids_r, size_t *count_r)
{
	size_t total = 0, k = 0;

	for (size_t j = 0; j < n; j++)
		total += q[j].n;
	*uids_r = calloc(total + 1, sizeof(**uids_r));
	if (*uids_r == NULL)
		return -1;
	for (size_t j = 0; j < n; j++)
		for (size_t m = 0; m < q[j].n; m++)
			(*uids_r)[k++] = q[j].uids[m];
	*count_r = total;
	return 0;
}

/* Drops the oldest batch of q (answered and committed, or handled). */
static void piped_pop(struct piped *q, size_t *nq, size_t *nsent)
{
	uint32_t *spare = q[0].uids;

	piped_clear(&q[0]);
	memmove(&q[0], &q[1], sizeof(q[0]) * (PIPE_SLOTS - 1));
	memset(&q[PIPE_SLOTS - 1], 0, sizeof(q[0]));
	q[PIPE_SLOTS - 1].uids = spare;
	(*nq)--;
	if (*nsent > 0)
		(*nsent)--;
}

/* Reads the oldest batch's answer and commits it with the intent of every
 * batch cut after it.  0, or the failure (the intent stays as it was). */
static int piped_complete(struct folder_ctx *fc, struct store_folder *cp, struct piped *q,
                          size_t nq, size_t nsent, uint32_t *bound)
{
	struct store_intent next = {0};
	uint32_t *rest = NULL;
	int64_t t0 = monotonic_ms();
	int ret;

	ret = piped_finish(fc, q, 0, nsent, fc->err, sizeof(fc->err));
	phase_add(fc, PHASE_APPEND, t0, 0);
	if (ret != 0)
		return ret;
	fc_alive(fc);
	if (nq > 1 && piped_intent(&q[1], nq - 1, &rest, &next.count) < 0)
		return -1;
	next.uids = rest;
	ret = piped_commit(fc, cp, &q[0], &next, bound);
	free(rest);
	return ret;
}

/* After a whole MULTIAPPEND was refused (nothing of it stored, RFC 3502) or
 * a batch broke a bound: the open intent (every batch cut) is completed by
 * the recovery path, which matches by content what the batches after it
 * stored and appends the rest one by one, so that only the offending
 * message gets a message error. */
static int piped_recover(struct folder_ctx *fc, struct store_folder *cp, struct piped *q, size_t nq,
                         uint32_t bound)
{
	free(cp->intent_uids);
	cp->intent_uids = NULL;
	if (piped_intent(q, nq, &cp->intent_uids, &cp->intent_count) < 0)
		return -1;
	cp->intent_dst_uidnext = bound;
	return recover_intent(fc, cp);
}

/* Copies the plain batches of a UID window from *i on with up to PIPE_DEPTH
 * MULTIAPPENDs on the way at once: the destination appends one while the next
 * is already there, and PostgreSQL commits one while the destination works.
 * The intent always covers every batch sent and not committed plus those cut
 * after them (docs/DESIGN.md section 2), so a failure anywhere leaves an
 * intent that recovery completes.  Returns at the window's end or before a
 * batch that is not plain (*i there); 0, RUN_STOP or <0 (intent left open). */
int copy_piped(struct folder_ctx *fc, struct store_folder *cp, const struct imap_batch *sizes,
               size_t *i, size_t batch_count)
{
	struct account_run *run = fc->run;
	struct piped q[PIPE_SLOTS];
	struct prefetch pf = {.fc = fc};
	size_t nq = 0, nsent = 0, covered = 0;
	uint32_t bound = 0; /* the open intent's UID bound */
	int ret = 0;

	memset(q, 0, sizeof(q));
	for (size_t j = 0; j < PIPE_SLOTS; j++)
		if ((q[j].uids = calloc(batch_count + 1, sizeof(uint32_t))) == NULL)
			ret = -1;
	while (ret == 0) {
		/* Cut up to PIPE_SLOTS batches (the servers' rate clocks read per
		 * batch, as in copy_new). */
		while (nq < PIPE_SLOTS && !run_should_stop(run) &&
		       cut_plain(fc, sizes, i, batch_count, &q[nq])) {
			int64_t t0 = monotonic_ms();
			ret = phase_add(fc, PHASE_WAIT, t0, rate_gate(fc, q[nq].n, q[nq].bytes));
			nq++;
			if (ret != 0)
				break;
		}
		if (ret == 0 && nsent == 0 && run_should_stop(run))
			ret = RUN_STOP;
		if (ret != 0 || nq == 0)
			break;
		/* (a): one intent for all that is cut, before any of it is sent. */
		if (covered == 0) {
			char error[STORE_ERRLEN] = "";
			const char *sel = imap_session_selected(fc->dst);
			uint32_t *all;
			size_t nall;
			int64_t t0 = monotonic_ms();
			if (sel == NULL || strcmp(sel, cp->dst_name) != 0) {
				struct imap_status sel_st;
				ret = imap_folder_open(fc->dst, cp->dst_name, false, &sel_st,
				                       fc->err, sizeof(fc->err));
				if (ret == 0 && fc->dst_uid_floor == 0)
					fc->dst_uid_floor = sel_st.uidnext;
			}
			if (ret == 0 && fc->dst_uid_floor == 0) {
				struct imap_status st;
				ret = imap_folder_status(fc->dst, cp->dst_name, &st, fc->err,
				                         sizeof(fc->err));
				fc->dst_uid_floor = ret == 0 ? st.uidnext : 0;
			}
			phase_add(fc, PHASE_STATUS, t0, 0);
			if (ret != 0)
				break;
			if (piped_intent(q, nq, &all, &nall) < 0) {
				ret = -1;
				break;
			}
			bound = fc->dst_uid_floor;
			t0 = monotonic_ms();
			ret = store_intent_begin(fc->st, run->acct->id, run->epoch, cp->id,
			                         cp->lane, bound, all, nall, error, sizeof(error));
			free(all);
			ret = phase_add(fc, PHASE_STORE, t0, store_check(fc, ret, error));
			if (ret != 0)
				break;
			covered = nq;
		}
		/* Send what the intent covers, up to PIPE_DEPTH on the way. */
		while (nsent < covered && nsent < PIPE_DEPTH && ret == 0) {
			if (!q[nsent].fetched) {
				int64_t t0 = monotonic_ms();
				ret = phase_add(fc, PHASE_FETCH, t0,
				                src_bodies(fc, q[nsent].uids, q[nsent].n,
				                           &q[nsent].bodies, fc->err,
				                           sizeof(fc->err)));
				q[nsent].fetched = ret == 0;
				if (ret != 0)
					break;
				fc_alive(fc);
			}
			ret = piped_send(fc, cp, &q[nsent]);
			if (ret == 0)
				nsent++;
		}
		if (ret != 0)
			break;
		/* The next one's bodies come while the oldest is answered. */
		bool fetching = false;
		if (nsent < nq && !q[nsent].fetched) {
			pf.uids = q[nsent].uids;
			pf.n = q[nsent].n;
			pf.bytes = q[nsent].bytes;
			fetching = prefetch_start(&pf);
		}
		ret = piped_complete(fc, cp, q, nq, nsent, &bound);
		if (fetching) {
			prefetch_join(&pf);
			if (pf.ret == 0) {
				q[nsent].bodies = pf.bodies;
				q[nsent].fetched = true;
			} else {
				imap_batch_free(&pf.bodies);
			}
			memset(&pf.bodies, 0, sizeof(pf.bodies));
		}
		if (ret == IMAP_ENO && !fc->store_failed) {
			/* Refused whole: read what else is on the way, then the
			 * recovery path completes every batch cut. */
			for (size_t j = 1; j < nsent; j++) {
				char ignored[384];
				(void)piped_finish(fc, q, j, nsent, ignored, sizeof(ignored));
			}
			if (cp->lane_lo != 0) {
				/* The folder's other stream is appending: its copies,
				 * not yet committed, could be taken for this
				 * intent's.  The intent stays open for the next
				 * attempt, which re-matches it once both stopped. */
				log_info("account %" PRId64 " folder %s: %s; copied in two streams:"
				         " matched again once both have stopped",
				         run->acct->id, cp->src_name, fc->err);
				while (nq > 0)
					piped_pop(q, &nq, &nsent);
				nsent = 0;
				ret = FOLDER_AGAIN;
				break;
			}
			log_info("account %" PRId64 " folder %s: %s; appending one by one",
			         run->acct->id, cp->src_name, fc->err);
			ret = piped_recover(fc, cp, q, nq, bound);
			while (nq > 0)
				piped_pop(q, &nq, &nsent);
			nsent = covered = 0;
			continue;
		}
		if (ret != 0)
			break;
		piped_pop(q, &nq, &nsent);
		covered = nq;
	}
	/* A batch that broke a bound while fetched (IMAP_ELIMIT): the batches
	 * sent before it are answered and committed first, then it goes
	 * message by message (copy_one_by_one writes its own intents, and what
	 * its old intent named after it was never sent). */
	while (ret == IMAP_ELIMIT && !fc->store_failed && nsent > 0) {
		int r = piped_complete(fc, cp, q, nq, nsent, &bound);
		if (r != 0) {
			ret = r;
			break;
		}
		piped_pop(q, &nq, &nsent);
	}
	if (ret == IMAP_ELIMIT && !fc->store_failed && nq > 0) {
		ret = copy_one_by_one(fc, cp, q[0].uids, q[0].n, NULL);
		/* The rest of what was cut is cut again (copy_new skips what
		 * the high water passed). */
		for (*i = 0; *i < sizes->count && sizes->msgs[*i].uid <= cp->high_water; (*i)++)
			;
	}
	/* Answers still on the way are read before the session is used again
	 * (nothing is read from a session that failed); their messages are in
	 * the open intent, which recovery completes. */
	for (size_t j = 0; j < nsent && ret != 0; j++) {
		char ignored[384];
		(void)piped_finish(fc, q, j, nsent, ignored, sizeof(ignored));
	}
	for (size_t j = 0; j < PIPE_SLOTS; j++) {
		piped_clear(&q[j]);
		free(q[j].uids);
	}
	return ret;
}
