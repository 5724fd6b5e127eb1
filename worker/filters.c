/* The source profile's filters (its since date, its max_message_size) over
 * the sizes copy_new reads for each window of new UIDs. */
#include "sync-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* The source profile's filters over a window's sizes (and dates): messages
 * older than its since date or larger than its max_message_size are taken
 * out of it (the window's end moves the high water past them), counted once
 * each, and those left out for their size named with the reason.  0 or <0. */
int filter_window(struct folder_ctx *fc, struct store_folder *cp, struct imap_batch *sizes,
                  int64_t since)
{
	const struct store_server *src = &fc->run->acct->src;
	struct store_msg_error *skips = calloc(sizes->count + 1, sizeof(*skips));
	char(*why)[160] = calloc(sizes->count + 1, sizeof(*why));
	char error[STORE_ERRLEN] = "";
	size_t keep = 0, nskips = 0;
	uint32_t counted = 0, top = 0;
	int ret = 0;

	if (skips == NULL || why == NULL) {
		free(skips);
		free(why);
		return -1;
	}
	for (size_t k = 0; k < sizes->count; k++) {
		struct imap_msg *m = &sizes->msgs[k];
		int64_t date;
		bool big = src->max_message_bytes > 0 && (int64_t)m->size > src->max_message_bytes;
		/* A date it cannot read is no reason to leave a message out. */
		bool old = !big && since > 0 && internaldate_epoch(m->internaldate, &date) == 0 &&
		           date < since;

		if (!big && !old) {
			if (keep != k)
				sizes->msgs[keep] = *m;
			keep++;
			continue;
		}
		sizes->bytes -= m->size <= sizes->bytes ? m->size : sizes->bytes;
		counted += m->uid > cp->filtered_through;
		top = m->uid;
		if (big) {
			snprintf(why[nskips], sizeof(why[nskips]),
			         "skipped: %" PRIu32 " bytes, larger than the source's"
			         " max_message_size of %" PRId64 " bytes",
			         m->size, src->max_message_bytes);
			skips[nskips].src_uid = m->uid;
			skips[nskips].error = why[nskips];
			nskips++;
		}
	}
	sizes->count = keep;
	if (top > cp->filtered_through) {
		ret = store_check(fc,
		                  store_folder_filtered(fc->st, fc->run->acct->id, fc->run->epoch,
		                                        cp->id, top, counted, skips, nskips, error,
		                                        sizeof(error)),
		                  error);
		if (ret == 0)
			cp->filtered_through = top;
	}
	free(skips);
	free(why);
	return ret;
}
