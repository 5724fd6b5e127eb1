/* Reading the source: IMAP, or a POP3 maildrop seen as one IMAP folder.
 *
 * The batch protocol (batch.c, piped.c) counts in source UIDs.  A POP3
 * maildrop has none, so it is shown to it as a folder "INBOX" whose messages
 * carry the pseudo UIDs lib/store gives their unique-ids (store-pop3.h):
 *   STATUS/EXAMINE  UIDVALIDITY 1 (pseudo UIDs are never given twice, so
 *                   they never need a new validity), UIDNEXT the highest
 *                   pseudo UID + 1, MESSAGES the maildrop's count, no
 *                   HIGHESTMODSEQ (the folder is looked at on every pass:
 *                   one UIDL and one LIST say what is new);
 *   sizes           LIST's octets (and, for a date filter, the Date header
 *                   read with TOP n 0);
 *   bodies          RETR, byte for byte; INTERNALDATE from the Date header,
 *                   or the time the unique-id was first seen; flags none,
 *                   or \Seen when the profile says pop3_seen;
 *   flags           none to follow (sync_flags is not run).
 * A RETR answered -ERR is the message's own fault, handled like a message
 * that broke a bound (IMAP_ELIMIT): its batch goes again message by message
 * and, refused again, it becomes a message error with the server's words.
 * Nothing here ever changes the maildrop (pop3.h: no DELE, no QUIT). */
#include "sync-private.h"

#include "pop3.h"
#include "store-pop3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* What the batch protocol asks of a source.  Each returns 0 or <0 with the
 * reason in fc->err (bodies: in err), like the lib/imap call it stands for. */
struct source_ops {
	int (*open)(struct folder_ctx *fc, int *backoff_s_r);
	void (*close)(struct folder_ctx *fc);
	bool (*is_open)(const struct folder_ctx *fc);
	int (*list)(struct folder_ctx *fc, struct imap_folder **folders_r, size_t *count_r);
	int (*status_many)(struct folder_ctx *fc, struct imap_status_req *reqs, size_t n);
	int (*status)(struct folder_ctx *fc, const char *name, struct imap_status *st_r);
	int (*examine)(struct folder_ctx *fc, const char *name, struct imap_status *st_r);
	int (*sizes)(struct folder_ctx *fc, uint32_t lo, uint32_t hi, bool dates,
	             struct imap_batch *batch_r);
	int (*bodies)(struct folder_ctx *fc, const uint32_t *uids, size_t n,
	              struct imap_batch *batch_r, char *err, size_t errlen);
	int (*fetch)(struct folder_ctx *fc, const uint32_t *uids, size_t n, bool spool,
	             struct imap_batch *batch_r, FILE **spool_r);
	int (*window_next)(struct folder_ctx *fc, uint32_t exists, uint32_t hi, uint32_t last,
	                   uint64_t *next_r);
	bool flags; /* the source has flags to follow */
};

/* IMAP: lib/imap on fc->src. */

static int imap_src_open(struct folder_ctx *fc, int *backoff_s_r)
{
	return imap_session_open_backoff(&fc->src_ep, &fc->src, backoff_s_r, fc->err,
	                                 sizeof(fc->err));
}

static void imap_src_close(struct folder_ctx *fc)
{
	imap_session_close(&fc->src);
}

static bool imap_src_is_open(const struct folder_ctx *fc)
{
	return fc->src != NULL;
}

static int imap_src_list(struct folder_ctx *fc, struct imap_folder **folders_r, size_t *count_r)
{
	return imap_folders_list(fc->src, fc->run->acct->src.prefix, folders_r, count_r, fc->err,
	                         sizeof(fc->err));
}

static int imap_src_status_many(struct folder_ctx *fc, struct imap_status_req *reqs, size_t n)
{
	return imap_status_many(fc->src, reqs, n, fc->err, sizeof(fc->err));
}

static int imap_src_status(struct folder_ctx *fc, const char *name, struct imap_status *st_r)
{
	return imap_folder_status(fc->src, name, st_r, fc->err, sizeof(fc->err));
}

static int imap_src_examine(struct folder_ctx *fc, const char *name, struct imap_status *st_r)
{
	return imap_folder_open(fc->src, name, true, st_r, fc->err, sizeof(fc->err));
}

static int imap_src_sizes(struct folder_ctx *fc, uint32_t lo, uint32_t hi, bool dates,
                          struct imap_batch *batch_r)
{
	return dates ? imap_fetch_sizes_dates(fc->src, lo, hi, batch_r, fc->err, sizeof(fc->err))
	             : imap_fetch_sizes(fc->src, lo, hi, batch_r, fc->err, sizeof(fc->err));
}

static int imap_src_bodies(struct folder_ctx *fc, const uint32_t *uids, size_t n,
                           struct imap_batch *batch_r, char *err, size_t errlen)
{
	return imap_fetch_bodies(fc->src, uids, n, batch_r, err, errlen);
}

static int imap_src_fetch(struct folder_ctx *fc, const uint32_t *uids, size_t n, bool spool,
                          struct imap_batch *batch_r, FILE **spool_r)
{
	return fetch_batch(fc, fc->src, uids, n, spool, batch_r, spool_r);
}

static int imap_src_window_next(struct folder_ctx *fc, uint32_t exists, uint32_t hi, uint32_t last,
                                uint64_t *next_r)
{
	return window_next(fc, fc->src, exists, hi, last, next_r);
}

static const struct source_ops imap_source = {
    .open = imap_src_open,
    .close = imap_src_close,
    .is_open = imap_src_is_open,
    .list = imap_src_list,
    .status_many = imap_src_status_many,
    .status = imap_src_status,
    .examine = imap_src_examine,
    .sizes = imap_src_sizes,
    .bodies = imap_src_bodies,
    .fetch = imap_src_fetch,
    .window_next = imap_src_window_next,
    .flags = true,
};

/* POP3: the maildrop as this session listed it, by pseudo UID. */

struct pop3_msg {
	uint32_t uid, msgno, size;
	int64_t first_seen;
};

struct pop3_view {
	struct pop3_session *s;
	struct pop3_msg *m; /* ascending by uid */
	size_t count;
};

/* The one folder a maildrop is. */
#define POP3_FOLDER "INBOX"

static int pop3_msg_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct pop3_msg *)a)->uid, y = ((const struct pop3_msg *)b)->uid;

	return x < y ? -1 : x > y;
}

static void pop3_src_close(struct folder_ctx *fc)
{
	if (fc->pop3 == NULL)
		return;
	pop3_session_close(&fc->pop3->s);
	free(fc->pop3->m);
	free(fc->pop3);
	fc->pop3 = NULL;
}

/* Logs in, lists the maildrop (UIDL, LIST) and gives its unique-ids their
 * pseudo UIDs.  No throttling in POP3: *backoff_s_r stays 0. */
static int pop3_src_open(struct folder_ctx *fc, int *backoff_s_r)
{
	struct pop3_view *v = calloc(1, sizeof(*v));
	struct pop3_entry *e = NULL;
	const char **uidls = NULL;
	uint32_t *uids = NULL;
	int64_t *seen = NULL;
	size_t n = 0;
	char error[STORE_ERRLEN] = "";
	int ret;

	*backoff_s_r = 0;
	if (v == NULL) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	fc->pop3 = v;
	ret = pop3_session_open(&fc->src_ep, &v->s, fc->err, sizeof(fc->err));
	if (ret == 0)
		ret = pop3_list(v->s, &e, &n, fc->err, sizeof(fc->err));
	/* A server without UIDL cannot be copied incrementally, nor safely. */
	if (ret == IMAP_ENO)
		ret = IMAP_EPROTO;
	if (ret < 0)
		goto out;
	fc_alive(fc);
	uidls = calloc(n + 1, sizeof(*uidls));
	uids = calloc(n + 1, sizeof(*uids));
	seen = calloc(n + 1, sizeof(*seen));
	v->m = calloc(n + 1, sizeof(*v->m));
	if (uidls == NULL || uids == NULL || seen == NULL || v->m == NULL) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		uidls[i] = e[i].uidl;
	int64_t t0 = monotonic_ms();
	ret = store_check(fc,
	                  store_pop3_uids(fc->st, fc->run->acct->id, fc->run->epoch, uidls, n, uids,
	                                  seen, error, sizeof(error)),
	                  error);
	phase_add(fc, PHASE_STORE, t0, 0);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		v->m[i].uid = uids[i];
		v->m[i].msgno = e[i].msgno;
		v->m[i].size = e[i].size;
		v->m[i].first_seen = seen[i];
	}
	v->count = n;
	qsort(v->m, n, sizeof(*v->m), pop3_msg_cmp);
out:
	free(e);
	free(uidls);
	free(uids);
	free(seen);
	if (ret < 0)
		pop3_src_close(fc);
	return ret;
}

static bool pop3_src_is_open(const struct folder_ctx *fc)
{
	return fc->pop3 != NULL;
}

static int pop3_src_list(struct folder_ctx *fc, struct imap_folder **folders_r, size_t *count_r)
{
	struct imap_folder *f = calloc(1, sizeof(*f));

	*folders_r = NULL;
	*count_r = 0;
	if (f == NULL || (f->name = strdup(POP3_FOLDER)) == NULL) {
		free(f);
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	f->delimiter = '/';
	*folders_r = f;
	*count_r = 1;
	return 0;
}

static void pop3_view_status(const struct pop3_view *v, struct imap_status *st_r)
{
	memset(st_r, 0, sizeof(*st_r));
	st_r->uidvalidity = 1;
	st_r->uidnext = v->count > 0 ? v->m[v->count - 1].uid + 1 : 1;
	st_r->messages = (uint32_t)v->count;
}

static int pop3_src_status(struct folder_ctx *fc, const char *name, struct imap_status *st_r)
{
	if (strcasecmp(name, POP3_FOLDER) != 0) {
		snprintf(fc->err, sizeof(fc->err), "a POP3 maildrop has no folder other than %s",
		         POP3_FOLDER);
		return IMAP_ENO;
	}
	pop3_view_status(fc->pop3, st_r);
	return 0;
}

static int pop3_src_status_many(struct folder_ctx *fc, struct imap_status_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		reqs[i].ret = pop3_src_status(fc, reqs[i].name, &reqs[i].st);
		if (reqs[i].ret < 0)
			snprintf(reqs[i].err, sizeof(reqs[i].err), "%s", fc->err);
	}
	return 0;
}

/* The maildrop's messages with UIDs in [lo, hi]: their index range. */
static void pop3_range(const struct pop3_view *v, uint32_t lo, uint32_t hi, size_t *from_r,
                       size_t *to_r)
{
	size_t a = 0, b = v->count;

	while (a < b) { /* the first with uid >= lo */
		size_t mid = a + (b - a) / 2;
		if (v->m[mid].uid < lo)
			a = mid + 1;
		else
			b = mid;
	}
	*from_r = a;
	while (a < v->count && v->m[a].uid <= hi)
		a++;
	*to_r = a;
}

static const struct pop3_msg *pop3_find(const struct pop3_view *v, uint32_t uid)
{
	size_t from, to;

	pop3_range(v, uid, uid, &from, &to);
	return from < to ? &v->m[from] : NULL;
}

/* The INTERNALDATE a POP3 message gets: its Date header (head: its first
 * len bytes), else the time its unique-id was first seen. */
static void pop3_date(const struct pop3_msg *pm, const char *head, size_t len, char *out,
                      size_t outlen)
{
	if (head == NULL || header_date(head, len, out, outlen) < 0)
		epoch_internaldate(pm->first_seen, out, outlen);
}

static void pop3_flags(const struct folder_ctx *fc, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", fc->run->acct->src.pop3_seen ? "\\Seen" : "");
}

static int pop3_src_sizes(struct folder_ctx *fc, uint32_t lo, uint32_t hi, bool dates,
                          struct imap_batch *batch_r)
{
	struct pop3_view *v = fc->pop3;
	size_t from, to;

	memset(batch_r, 0, sizeof(*batch_r));
	pop3_range(v, lo, hi, &from, &to);
	batch_r->msgs = calloc(to - from + 1, sizeof(*batch_r->msgs));
	if (batch_r->msgs == NULL) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		return -1;
	}
	for (size_t k = from; k < to; k++) {
		struct imap_msg *m = &batch_r->msgs[batch_r->count++];
		m->uid = v->m[k].uid;
		m->size = v->m[k].size;
		batch_r->bytes += m->size;
		if (!dates)
			continue;
		char *head = NULL;
		size_t len = 0;
		int ret = pop3_top(v->s, v->m[k].msgno, v->m[k].size, &head, &len, fc->err,
		                   sizeof(fc->err));
		if (ret == IMAP_ENO) {
			/* A message TOP cannot show is left to RETR, which
			 * says why. */
			ret = 0;
		}
		if (ret < 0) {
			imap_batch_free(batch_r);
			return ret;
		}
		pop3_date(&v->m[k], head, len, m->internaldate, sizeof(m->internaldate));
		free(head);
		fc_alive(fc);
	}
	return 0;
}

/* RETR of each UID into one block (what imap_batch_free frees: the message
 * array, the bytes right after it).  A UID no longer in the maildrop is left
 * out, as an expunged one would be. */
static int pop3_src_bodies(struct folder_ctx *fc, const uint32_t *uids, size_t n,
                           struct imap_batch *batch_r, char *err, size_t errlen)
{
	struct pop3_view *v = fc->pop3;
	char **bodies = calloc(n + 1, sizeof(*bodies));
	size_t *lens = calloc(n + 1, sizeof(*lens));
	const struct pop3_msg **found = calloc(n + 1, sizeof(*found));
	size_t total = 0, got = 0;
	int ret = 0;

	memset(batch_r, 0, sizeof(*batch_r));
	if (bodies == NULL || lens == NULL || found == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		const struct pop3_msg *pm = pop3_find(v, uids[i]);
		if (pm == NULL)
			continue;
		ret =
		    pop3_retr(v->s, pm->msgno, pm->size, -1, &bodies[got], &lens[got], err, errlen);
		if (ret == IMAP_ENO)
			ret = IMAP_ELIMIT; /* the message's own fault: see above */
		if (ret == 0) {
			found[got] = pm;
			total += lens[got++];
			fc_alive(fc);
		}
	}
	if (ret < 0)
		goto out;
	char *block = malloc((got + 1) * sizeof(struct imap_msg) + total + 1);
	if (block == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto out;
	}
	struct imap_msg *msgs = (struct imap_msg *)(void *)block;
	char *bytes = block + (got + 1) * sizeof(struct imap_msg);
	memset(msgs, 0, (got + 1) * sizeof(struct imap_msg));
	for (size_t i = 0; i < got; i++) {
		memcpy(bytes, bodies[i], lens[i]);
		msgs[i].uid = found[i]->uid;
		msgs[i].size = found[i]->size;
		msgs[i].body = bytes;
		msgs[i].body_len = lens[i];
		msgs[i].body_fd = -1;
		pop3_flags(fc, msgs[i].flags, sizeof(msgs[i].flags));
		pop3_date(found[i], bytes, lens[i], msgs[i].internaldate,
		          sizeof(msgs[i].internaldate));
		bytes += lens[i];
	}
	batch_r->msgs = msgs;
	batch_r->count = got;
	batch_r->bytes = total;
out:
	for (size_t i = 0; bodies != NULL && i < n; i++)
		free(bodies[i]);
	free(bodies);
	free(lens);
	free(found);
	return ret;
}

/* A message's header read back from its spool file, for its date. */
static void spool_date(int fd, const struct pop3_msg *pm, char *out, size_t outlen)
{
	char head[65536];
	ssize_t n = pread(fd, head, sizeof(head), 0);

	pop3_date(pm, n > 0 ? head : NULL, n > 0 ? (size_t)n : 0, out, outlen);
}

static int pop3_src_fetch(struct folder_ctx *fc, const uint32_t *uids, size_t n, bool spool,
                          struct imap_batch *batch_r, FILE **spool_r)
{
	const struct pop3_msg *pm;
	struct imap_batch b = {0};
	FILE *f = NULL;
	int ret;

	*spool_r = NULL;
	if (!spool)
		return pop3_src_bodies(fc, uids, n, batch_r, fc->err, sizeof(fc->err));
	/* One message too large for a batch's bytes: RETR into a file. */
	b.msgs = calloc(1, sizeof(*b.msgs));
	pm = pop3_find(fc->pop3, uids[0]);
	if (pm != NULL && b.msgs != NULL && (f = tmpfile()) == NULL)
		snprintf(fc->err, sizeof(fc->err), "cannot create a spool file: %s",
		         strerror(errno));
	if (b.msgs == NULL || (pm != NULL && f == NULL)) {
		if (b.msgs == NULL)
			snprintf(fc->err, sizeof(fc->err), "out of memory");
		free(b.msgs);
		return -1;
	}
	if (pm != NULL) {
		struct imap_msg *m = &b.msgs[0];
		size_t len = 0;
		ret = pop3_retr(fc->pop3->s, pm->msgno, pm->size, fileno(f), NULL, &len, fc->err,
		                sizeof(fc->err));
		if (ret == IMAP_ENO)
			ret = IMAP_ELIMIT; /* the message's own fault: see above */
		if (ret < 0) {
			fclose(f);
			free(b.msgs);
			return ret;
		}
		m->uid = pm->uid;
		m->size = pm->size;
		m->spooled = true;
		m->body_fd = fileno(f);
		m->body_len = len;
		pop3_flags(fc, m->flags, sizeof(m->flags));
		spool_date(m->body_fd, pm, m->internaldate, sizeof(m->internaldate));
		b.count = 1;
		b.bytes = len;
		fc_alive(fc);
	}
	*batch_r = b;
	*spool_r = f;
	return 0;
}

/* After an empty window: the next pseudo UID above hi, from the listing. */
static int pop3_src_window_next(struct folder_ctx *fc, uint32_t exists, uint32_t hi, uint32_t last,
                                uint64_t *next_r)
{
	size_t from, to;

	(void)exists;
	*next_r = (uint64_t)last + 1;
	if (hi >= last)
		return 0;
	pop3_range(fc->pop3, hi + 1, last, &from, &to);
	if (from < to)
		*next_r = fc->pop3->m[from].uid;
	return 0;
}

static const struct source_ops pop3_source = {
    .open = pop3_src_open,
    .close = pop3_src_close,
    .is_open = pop3_src_is_open,
    .list = pop3_src_list,
    .status_many = pop3_src_status_many,
    .status = pop3_src_status,
    .examine = pop3_src_status,
    .sizes = pop3_src_sizes,
    .bodies = pop3_src_bodies,
    .fetch = pop3_src_fetch,
    .window_next = pop3_src_window_next,
    .flags = false,
};

static const struct source_ops *ops(const struct folder_ctx *fc)
{
	return fc->run->src_pop3 ? &pop3_source : &imap_source;
}

int src_open(struct folder_ctx *fc, int *backoff_s_r)
{
	return ops(fc)->open(fc, backoff_s_r);
}

void src_close(struct folder_ctx *fc)
{
	ops(fc)->close(fc);
}

bool src_is_open(const struct folder_ctx *fc)
{
	return ops(fc)->is_open(fc);
}

bool src_has_flags(const struct folder_ctx *fc)
{
	return ops(fc)->flags;
}

int src_list(struct folder_ctx *fc, struct imap_folder **folders_r, size_t *count_r)
{
	return ops(fc)->list(fc, folders_r, count_r);
}

int src_status_many(struct folder_ctx *fc, struct imap_status_req *reqs, size_t n)
{
	return ops(fc)->status_many(fc, reqs, n);
}

int src_status(struct folder_ctx *fc, const char *name, struct imap_status *st_r)
{
	return ops(fc)->status(fc, name, st_r);
}

int src_examine(struct folder_ctx *fc, const char *name, struct imap_status *st_r)
{
	return ops(fc)->examine(fc, name, st_r);
}

int src_sizes(struct folder_ctx *fc, uint32_t lo, uint32_t hi, bool dates,
              struct imap_batch *batch_r)
{
	return ops(fc)->sizes(fc, lo, hi, dates, batch_r);
}

int src_bodies(struct folder_ctx *fc, const uint32_t *uids, size_t n, struct imap_batch *batch_r,
               char *err, size_t errlen)
{
	return ops(fc)->bodies(fc, uids, n, batch_r, err, errlen);
}

int src_fetch(struct folder_ctx *fc, const uint32_t *uids, size_t n, bool spool,
              struct imap_batch *batch_r, FILE **spool_r)
{
	return ops(fc)->fetch(fc, uids, n, spool, batch_r, spool_r);
}

int src_window_next(struct folder_ctx *fc, uint32_t exists, uint32_t hi, uint32_t last,
                    uint64_t *next_r)
{
	return ops(fc)->window_next(fc, exists, hi, last, next_r);
}
