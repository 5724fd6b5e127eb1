#include "live.h"
#include "store-pass.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct live_account {
	int64_t account_id; /* 0: empty slot */
	int pass;
	int64_t epoch;
	uint64_t base[3];    /* messages, bytes, errors of earlier runs of the pass */
	uint64_t run[3];     /* the current run's totals */
	uint64_t flushed[2]; /* messages, bytes of the pass as last written (throughput) */
	char worker[64], folder[128];
	bool dirty;
};

/* Open addressing on the account id; grows at 1/2 load. */
struct live {
	struct live_account *slots;
	size_t cap, count;
	int64_t *dirty;
	size_t ndirty, dirty_cap;
};

struct live *live_create(void)
{
	struct live *live = calloc(1, sizeof(*live));

	if (live == NULL)
		return NULL;
	live->cap = 1024;
	live->slots = calloc(live->cap, sizeof(*live->slots));
	if (live->slots == NULL) {
		free(live);
		return NULL;
	}
	return live;
}

void live_destroy(struct live **live)
{
	if (*live == NULL)
		return;
	free((*live)->slots);
	free((*live)->dirty);
	free(*live);
	*live = NULL;
}

static struct live_account *slot_of(struct live_account *slots, size_t cap, int64_t id)
{
	size_t i = ((uint64_t)id * 11400714819323198485ull) & (cap - 1);

	while (slots[i].account_id != 0 && slots[i].account_id != id)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(struct live *live)
{
	size_t cap = live->cap * 2;
	struct live_account *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < live->cap; i++) {
		if (live->slots[i].account_id != 0)
			*slot_of(slots, cap, live->slots[i].account_id) = live->slots[i];
	}
	free(live->slots);
	live->slots = slots;
	live->cap = cap;
	return 0;
}

void live_fold(struct live *live, const struct queue_event *ev)
{
	const uint64_t counts[3] = {ev->messages, ev->bytes, ev->errors};
	struct live_account *a;

	if (live == NULL || ev->account_id <= 0 || ev->lease_epoch <= 0)
		return; /* events of workers before lease epochs were reported */
	if (live->count * 2 >= live->cap && grow(live) < 0)
		return;
	a = slot_of(live->slots, live->cap, ev->account_id);
	if (a->account_id == 0) {
		a->account_id = ev->account_id;
		live->count++;
	}
	if (ev->pass < a->pass || (ev->pass == a->pass && ev->lease_epoch < a->epoch))
		return; /* an older pass or run, replayed */
	if (ev->pass > a->pass) {
		memset(a->base, 0, sizeof(a->base));
		memset(a->run, 0, sizeof(a->run));
		memset(a->flushed, 0, sizeof(a->flushed));
		a->pass = ev->pass;
		a->epoch = ev->lease_epoch;
	} else if (ev->lease_epoch > a->epoch) {
		/* A new run of the same pass: the earlier runs' work stays counted. */
		for (int i = 0; i < 3; i++) {
			a->base[i] += a->run[i];
			a->run[i] = 0;
		}
		a->epoch = ev->lease_epoch;
	}
	for (int i = 0; i < 3; i++) {
		if (counts[i] > a->run[i])
			a->run[i] = counts[i];
	}
	snprintf(a->worker, sizeof(a->worker), "%s", ev->worker != NULL ? ev->worker : "");
	if (ev->folder != NULL && ev->folder[0] != '\0')
		snprintf(a->folder, sizeof(a->folder), "%s", ev->folder);
	if (!a->dirty) {
		if (live->ndirty == live->dirty_cap) {
			size_t cap = live->dirty_cap == 0 ? 256 : live->dirty_cap * 2;
			int64_t *tmp = realloc(live->dirty, cap * sizeof(*tmp));
			if (tmp == NULL)
				return;
			live->dirty = tmp;
			live->dirty_cap = cap;
		}
		live->dirty[live->ndirty++] = a->account_id;
		a->dirty = true;
	}
}

int live_flush(struct live *live, struct store *st, char *err, size_t errlen)
{
	struct store_live *rows;
	int ret;

	if (live == NULL || live->ndirty == 0)
		return 0;
	rows = calloc(live->ndirty, sizeof(*rows));
	if (rows == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < live->ndirty; i++) {
		struct live_account *a = slot_of(live->slots, live->cap, live->dirty[i]);
		uint64_t total[2] = {a->base[0] + a->run[0], a->base[1] + a->run[1]};

		/* What the pass copied since the last flush goes to this minute's
		 * throughput.  After a coordinator restart the first flush counts
		 * a running account's whole pass so far: the totals are all the
		 * events carry. */
		rows[i] = (struct store_live){
		    .new_messages = total[0] > a->flushed[0] ? total[0] - a->flushed[0] : 0,
		    .new_bytes = total[1] > a->flushed[1] ? total[1] - a->flushed[1] : 0,
		    .account_id = a->account_id,
		    .pass = a->pass,
		    .messages = a->base[0] + a->run[0],
		    .bytes = a->base[1] + a->run[1],
		    .errors = a->base[2] + a->run[2],
		    .worker = a->worker,
		    .folder = a->folder,
		};
	}
	ret = store_live_update(st, rows, live->ndirty, err, errlen);
	free(rows);
	if (ret == 0) {
		for (size_t i = 0; i < live->ndirty; i++) {
			struct live_account *a = slot_of(live->slots, live->cap, live->dirty[i]);

			a->flushed[0] = a->base[0] + a->run[0];
			a->flushed[1] = a->base[1] + a->run[1];
			a->dirty = false;
		}
		live->ndirty = 0;
	}
	return ret;
}
