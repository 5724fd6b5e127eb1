/* Flag sync of already copied messages: CHANGEDSINCE the checkpoint's
 * HIGHESTMODSEQ (RFC 7162) where the source has CONDSTORE, else a full
 * compare; applied with one UID STORE per distinct flag set through the UID
 * map. */
#include "sync-private.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct flag_update {
	uint32_t dst;
	const char *flags;
};

static int flag_update_cmp(const void *a, const void *b)
{
	const struct flag_update *x = a, *y = b;
	int c = strcmp(x->flags, y->flags);

	return c != 0 ? c : (x->dst < y->dst ? -1 : x->dst > y->dst);
}

/* Applies updates with one UID STORE per distinct flag set, all pipelined. */
static int flags_apply(struct folder_ctx *fc, struct flag_update *ups, size_t n)
{
	uint32_t *uids = calloc(n + 1, sizeof(*uids));
	struct imap_flag_store *stores = calloc(n + 1, sizeof(*stores));
	size_t nstores = 0, i = 0;
	int ret = 0;

	if (uids == NULL || stores == NULL) {
		free(uids);
		free(stores);
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	qsort(ups, n, sizeof(*ups), flag_update_cmp);
	while (i < n) {
		size_t j = i;
		stores[nstores].uids = &uids[i];
		stores[nstores].flags = ups[i].flags;
		while (j < n && strcmp(ups[j].flags, ups[i].flags) == 0) {
			uids[j] = ups[j].dst;
			j++;
		}
		/* Sorted by flags, then UID: each set's UIDs ascend. */
		for (size_t k = i + 1; k < j; k++)
			assert(uids[k - 1] <= uids[k]);
		stores[nstores++].count = j - i;
		i = j;
	}
	if (run_should_stop(fc->run))
		ret = RUN_STOP;
	else
		ret = imap_store_flags_many(fc->dst, stores, nstores, fc->err, sizeof(fc->err));
	if (ret == 0)
		fc_alive(fc);
	free(uids);
	free(stores);
	return ret;
}

/* The message with this UID in a batch fetched in UID order, or NULL. */
static const struct imap_msg *batch_find(const struct imap_batch *batch, uint32_t uid)
{
	size_t lo = 0, hi = batch->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (batch->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < batch->count && batch->msgs[lo].uid == uid ? &batch->msgs[lo] : NULL;
}

/* Carries flag changes of already copied messages (UIDs <= upto) to the
 * destination.  changedsince != 0: only what changed since that modseq;
 * else every message is compared with its destination copy. */
int sync_flags(struct folder_ctx *fc, struct store_folder *cp, uint32_t upto, uint64_t changedsince)
{
	const struct sync_config *cfg = fc->run->cfg;
	struct imap_status dst_st;
	struct store_uid_note *drops = NULL;
	size_t ndrops = 0, kd = 0;
	bool dst_open = false;
	char error[STORE_ERRLEN] = "";
	int ret;

	/* Keywords the destination refused at the copy (keywords.c) are not
	 * asked for again: the source's flags are compared without them. */
	ret = store_check(
	    fc, store_folder_notes(fc->st, cp->id, true, &drops, &ndrops, error, sizeof(error)),
	    error);

	for (uint64_t lo = 1, next; lo <= upto && ret == 0; lo = next) {
		uint32_t hi = upto - lo >= cfg->window ? (uint32_t)lo + cfg->window - 1 : upto;
		struct imap_batch src = {0}, dst = {0};
		uint32_t *src_uids = NULL, *dst_uids = NULL;
		struct flag_update *ups = NULL;
		size_t nups = 0;

		next = (uint64_t)hi + 1;
		if (run_should_stop(fc->run)) {
			ret = RUN_STOP;
			break;
		}
		ret = imap_fetch_flags(fc->src, (uint32_t)lo, hi, changedsince, &src, fc->err,
		                       sizeof(fc->err));
		if (ret == 0)
			fc_alive(fc);
		/* An empty window: on to the next source UID the map holds (only
		 * mapped messages have flags to carry), without a round trip. */
		if (ret == 0 && src.count == 0 && hi < upto) {
			uint32_t mapped = 0;
			ret = store_check(fc,
			                  store_uidmap_next(fc->st, cp->id, hi + 1, &mapped, error,
			                                    sizeof(error)),
			                  error);
			if (ret == 0)
				next = mapped == 0 || mapped > upto ? (uint64_t)upto + 1 : mapped;
		}
		if (ret != 0 || src.count == 0)
			goto next;
		src_uids = calloc(src.count, sizeof(*src_uids));
		dst_uids = calloc(src.count, sizeof(*dst_uids));
		ups = calloc(src.count, sizeof(*ups));
		if (src_uids == NULL || dst_uids == NULL || ups == NULL) {
			ret = -1;
			goto next;
		}
		for (size_t i = 0; i < src.count; i++)
			src_uids[i] = src.msgs[i].uid;
		ret = store_check(fc,
		                  store_uidmap_lookup(fc->st, cp->id, src_uids, src.count, dst_uids,
		                                      error, sizeof(error)),
		                  error);
		if (ret < 0)
			goto next;
		if (!dst_open) {
			/* Selected read-write already when this pass appended. */
			const char *sel = imap_session_selected(fc->dst);
			ret = sel != NULL && strcmp(sel, cp->dst_name) == 0
			          ? 0
			          : imap_folder_open(fc->dst, cp->dst_name, false, &dst_st, fc->err,
			                             sizeof(fc->err));
			if (ret < 0)
				goto next;
			dst_open = true;
		}
		if (changedsince == 0) {
			/* Full compare: the destination flags of the mapped range. */
			uint32_t dlo = UINT32_MAX, dhi = 0;
			for (size_t i = 0; i < src.count; i++) {
				if (dst_uids[i] == 0)
					continue;
				dlo = dst_uids[i] < dlo ? dst_uids[i] : dlo;
				dhi = dst_uids[i] > dhi ? dst_uids[i] : dhi;
			}
			if (dhi > 0) {
				ret = imap_fetch_flags(fc->dst, dlo, dhi, 0, &dst, fc->err,
				                       sizeof(fc->err));
				if (ret < 0)
					goto next;
			}
		}
		for (size_t i = 0; i < src.count; i++) {
			if (dst_uids[i] == 0)
				continue;
			/* Both ascending by source UID. */
			while (kd < ndrops && drops[kd].src_uid < src.msgs[i].uid)
				kd++;
			if (kd < ndrops && drops[kd].src_uid == src.msgs[i].uid)
				keywords_strip(src.msgs[i].flags, drops[kd].keywords);
			if (changedsince == 0) {
				char a[512], b[512];
				const struct imap_msg *d = batch_find(&dst, dst_uids[i]);
				if (d == NULL)
					continue; /* gone from the destination */
				flags_normalize(src.msgs[i].flags, a, sizeof(a));
				flags_normalize(d->flags, b, sizeof(b));
				if (strcmp(a, b) == 0)
					continue;
			}
			ups[nups].dst = dst_uids[i];
			ups[nups++].flags = src.msgs[i].flags;
		}
		if (nups > 0)
			ret = flags_apply(fc, ups, nups);
		if (ret == 0) {
			pthread_mutex_lock(&fc->run->lock);
			fc->run->stats.flags_updated += nups;
			pthread_mutex_unlock(&fc->run->lock);
		}
	next:
		imap_batch_free(&src);
		imap_batch_free(&dst);
		free(src_uids);
		free(dst_uids);
		free(ups);
	}
	store_uid_notes_free(&drops, ndrops);
	return ret;
}
