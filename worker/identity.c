/* Message identity and the destination index used to re-match.
 *
 * Identity is the SHA-256 of the message bytes without CRs: the copy never
 * changes a byte, so an exact match is always possible and no header is ever
 * added.  The index (dst_index_build) holds the destination folder's
 * messages by hash; recovery and re-matching take from it (dst_index_take)
 * before appending anything. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int entry_cmp(const void *a, const void *b)
{
	const struct dst_entry *x = a, *y = b;
	int c = memcmp(x->hash, y->hash, HASH_LEN);

	if (c != 0)
		return c;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Takes an unused destination message with this hash; 0 if none. */
uint32_t dst_index_take(struct dst_index *idx, const unsigned char hash[HASH_LEN])
{
	size_t lo = 0, hi = idx->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (memcmp(idx->entries[mid].hash, hash, HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < idx->count && memcmp(idx->entries[lo].hash, hash, HASH_LEN) == 0; lo++) {
		if (!idx->entries[lo].used) {
			idx->entries[lo].used = true;
			return idx->entries[lo].uid;
		}
	}
	return 0;
}

void dst_index_free(struct dst_index *idx)
{
	free(idx->entries);
	free(idx->own);
	memset(idx, 0, sizeof(*idx));
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Remembers a destination UID this run appended while matching by index.
 * When they follow next_uid without a gap nobody else wrote meanwhile: the
 * index then covers them as they are (mapped, so never matched again). */
int dst_index_own(struct dst_index *idx, const uint32_t *uids, size_t n)
{
	if (idx->nown + n > idx->own_cap) {
		size_t cap = (idx->nown + n) * 2;
		uint32_t *own = realloc(idx->own, cap * sizeof(*own));
		if (own == NULL)
			return -1;
		idx->own = own;
		idx->own_cap = cap;
	}
	memcpy(idx->own + idx->nown, uids, n * sizeof(*uids));
	idx->nown += n;
	qsort(idx->own, idx->nown, sizeof(*idx->own), uid_cmp);
	if (idx->nown > 0 && idx->own[0] == idx->next_uid &&
	    idx->own[idx->nown - 1] - idx->own[0] + 1 == idx->nown) {
		idx->next_uid = idx->own[idx->nown - 1] + 1;
		idx->nown = 0;
	}
	return 0;
}

/* Builds an index of the destination folder's messages with UID >= from, by
 * content; the folder is examined (read-only) on the destination session. */
int dst_index_build(struct folder_ctx *fc, const char *dst_name, uint32_t from,
                    struct dst_index *idx_r)
{
	const struct sync_config *cfg = fc->run->cfg;
	struct imap_status st;
	struct dst_index idx = {0};
	size_t cap = 0;
	int ret;

	ret = imap_folder_open(fc->dst, dst_name, true, &st, fc->err, sizeof(fc->err));
	if (ret < 0)
		return ret;
	for (uint64_t lo = from, next; st.uidnext > 0 && lo < st.uidnext; lo = next) {
		uint32_t hi = st.uidnext - 1 - lo >= cfg->window ? (uint32_t)lo + cfg->window - 1
		                                                 : st.uidnext - 1;
		struct imap_batch sizes;
		size_t i = 0;

		if (run_should_stop(fc->run)) {
			ret = 1;
			goto fail;
		}
		next = (uint64_t)hi + 1;
		ret = imap_fetch_sizes(fc->dst, (uint32_t)lo, hi, &sizes, fc->err, sizeof(fc->err));
		if (ret < 0)
			goto fail;
		fc_alive(fc);
		if (sizes.count == 0) {
			imap_batch_free(&sizes);
			ret = window_next(fc, fc->dst, st.messages, hi, st.uidnext - 1, &next);
			if (ret != 0)
				goto fail;
			continue;
		}
		while (i < sizes.count && ret == 0) {
			uint32_t uids[512];
			size_t n, bytes;
			struct imap_batch bodies;
			FILE *spool_file = NULL;
			bool spool =
			    batch_cut(&sizes, &i, 512, cfg->batch_bytes, 0, uids, &n, &bytes);

			ret = fetch_batch(fc, fc->dst, uids, n, spool, &bodies, &spool_file);
			if (ret < 0)
				break;
			fc_alive(fc);
			if (idx.count + bodies.count > cap) {
				size_t ncap = (cap + bodies.count) * 2;
				struct dst_entry *e = realloc(idx.entries, ncap * sizeof(*e));
				if (e == NULL) {
					imap_batch_free(&bodies);
					ret = -1;
					break;
				}
				idx.entries = e;
				cap = ncap;
			}
			for (size_t k = 0; k < bodies.count && ret == 0; k++) {
				struct dst_entry *e = &idx.entries[idx.count++];
				ret = hash_msg(&bodies.msgs[k], e->hash);
				e->uid = bodies.msgs[k].uid;
				e->used = false;
			}
			imap_batch_free(&bodies);
			if (spool_file != NULL)
				fclose(spool_file);
		}
		imap_batch_free(&sizes);
		if (ret < 0)
			goto fail;
	}
	if (idx.count > 0)
		qsort(idx.entries, idx.count, sizeof(*idx.entries), entry_cmp);
	idx.next_uid = st.uidnext;
	*idx_r = idx;
	return 0;
fail:
	dst_index_free(&idx);
	return ret;
}

/* Another writer may have appended to the destination folder since the index
 * was built (the old run of an account removed and added back, finishing the
 * batch it had under way): before a batch is matched, what arrived since is
 * indexed too, so that nothing it stored is appended a second time.  Costs a
 * STATUS per batch, and only while matching by index. */
int dst_index_refresh(struct folder_ctx *fc, const char *dst_name, struct dst_index *idx)
{
	struct imap_status st;
	struct dst_index more = {0};
	struct dst_entry *e;
	size_t foreign = 0;
	int ret;

	if (idx->no_refresh)
		return 0;
	ret = imap_folder_status(fc->dst, dst_name, &st, fc->err, sizeof(fc->err));
	if (ret < 0 || st.uidnext <= idx->next_uid)
		return ret;
	ret = dst_index_build(fc, dst_name, idx->next_uid, &more);
	if (ret != 0)
		return ret;
	e = realloc(idx->entries, (idx->count + more.count + 1) * sizeof(*e));
	if (e == NULL) {
		dst_index_free(&more);
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	idx->entries = e;
	for (size_t i = 0; i < more.count; i++) {
		more.entries[i].used =
		    idx->nown > 0 && bsearch(&more.entries[i].uid, idx->own, idx->nown,
		                             sizeof(*idx->own), uid_cmp) != NULL;
		foreign += !more.entries[i].used;
		idx->entries[idx->count++] = more.entries[i];
	}
	qsort(idx->entries, idx->count, sizeof(*idx->entries), entry_cmp);
	if (foreign > 0)
		log_info("account %" PRId64 ": %zu messages appeared in destination folder %s"
		         " while matching by content: indexed too",
		         fc->run->acct->id, foreign, dst_name);
	idx->next_uid = more.next_uid;
	idx->nown = 0;
	dst_index_free(&more);
	return 0;
}

/* Merged folders: the destination messages another source folder's copies
 * are not this folder's to match by content (a message in both source
 * folders gets its own copy from each).  0 or <0. */
int dst_index_claimed(struct folder_ctx *fc, const struct store_folder *cp, bool own,
                      struct dst_index *idx)
{
	uint32_t *starts, *lens;
	size_t n;
	char error[STORE_ERRLEN] = "";
	int ret = store_check(fc,
	                      store_uidmap_claimed(fc->st, fc->run->acct->id, own ? 0 : cp->id,
	                                           cp->dst_name, &starts, &lens, &n, error,
	                                           sizeof(error)),
	                      error);

	if (ret < 0)
		return ret;
	for (size_t e = 0; e < idx->count; e++)
		for (size_t k = 0; k < n && !idx->entries[e].used; k++)
			idx->entries[e].used = idx->entries[e].uid >= starts[k] &&
			                       idx->entries[e].uid - starts[k] < lens[k];
	free(starts);
	free(lens);
	return 0;
}
