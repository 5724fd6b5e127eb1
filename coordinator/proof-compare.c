/* One folder compared message by message (see proof-compare.h). */
#include "proof-compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[] = {
    "missing", "duplicate", "extra", "flags", "internal_date_replaced", "keywords_dropped", "size",
};

const char *proof_kind_name(enum proof_kind kind)
{
	return kind_names[kind];
}

void proof_result_free(struct proof_result *r)
{
	free(r->diffs);
	memset(r, 0, sizeof(*r));
}

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

bool proof_date_parse(const char *s, int64_t *t_r)
{
	int d, y, hh, mm, ss, zone, mon = -1;
	char m[4], sign;

	while (*s == ' ')
		s++;
	if (sscanf(s, "%d-%3c-%d %d:%d:%d %c%4d", &d, m, &y, &hh, &mm, &ss, &sign, &zone) != 8)
		return false;
	m[3] = '\0';
	for (int i = 0; i < 12; i++)
		if (strcasecmp(m, months[i]) == 0)
			mon = i + 1;
	if (mon < 0 || (sign != '+' && sign != '-'))
		return false;
	int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = days_from_civil(y, mon, d) * 86400 + hh * 3600 + mm * 60 + ss -
	       (sign == '+' ? off : -off);
	return true;
}

/* Flag words, sorted case-insensitively, \Recent left out (a session's view,
 * not the message's). */
struct words {
	char buf[256];
	char *w[128];
	size_t n;
};

static int word_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static void words_split(const char *flags, struct words *ws)
{
	char *save = NULL;

	snprintf(ws->buf, sizeof(ws->buf), "%s", flags);
	ws->n = 0;
	for (char *t = strtok_r(ws->buf, " ", &save); t != NULL && ws->n < 128;
	     t = strtok_r(NULL, " ", &save))
		if (strcasecmp(t, "\\Recent") != 0)
			ws->w[ws->n++] = t;
	qsort(ws->w, ws->n, sizeof(ws->w[0]), word_cmp);
}

static bool words_has(const struct words *ws, const char *w)
{
	return bsearch(&w, ws->w, ws->n, sizeof(ws->w[0]), word_cmp) != NULL;
}

/* The words of a not in b, space separated, into out. */
static void words_minus(const struct words *a, const struct words *b, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < a->n && len < outlen; i++)
		if (!words_has(b, a->w[i]))
			len += (size_t)snprintf(out + len, outlen - len, "%s%s", len > 0 ? " " : "",
			                        a->w[i]);
}

/* Messages sorted by identity, for lookups by hash: each entry carries its
 * hash, so the sort needs no context (several proofs may run at once). */
struct hash_entry {
	unsigned char hash[PROOF_HASH_LEN];
	size_t i;
};
struct by_hash {
	struct hash_entry *e;
	size_t n;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct hash_entry *x = a, *y = b;
	int c = memcmp(x->hash, y->hash, PROOF_HASH_LEN);
	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

static int by_hash_init(struct by_hash *h, const struct proof_msg *msgs, size_t n)
{
	h->n = n;
	h->e = calloc(n + 1, sizeof(*h->e));
	if (h->e == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		memcpy(h->e[i].hash, msgs[i].hash, PROOF_HASH_LEN);
		h->e[i].i = i;
	}
	qsort(h->e, n, sizeof(*h->e), entry_cmp);
	return 0;
}

/* First position in the index whose message has hash, or h->n. */
static size_t by_hash_first(const struct by_hash *h, const unsigned char *hash)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(h->e[mid].hash, hash, PROOF_HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < h->n && memcmp(h->e[lo].hash, hash, PROOF_HASH_LEN) == 0 ? lo : h->n;
}

static size_t uid_find(const struct proof_msg *msgs, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && msgs[lo].uid == uid ? lo : n;
}

static uint32_t map_find(const struct proof_map *map, size_t n, uint32_t src)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (map[mid].src < src)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && map[lo].src == src ? map[lo].dst : 0;
}

static const struct proof_note *note_find(const struct proof_note *notes, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (notes[mid].src_uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && notes[lo].src_uid == uid ? &notes[lo] : NULL;
}

static struct proof_diff *diff_add(struct proof_result *r, size_t *cap, enum proof_kind kind,
                                   uint32_t src_uid, uint32_t dst_uid)
{
	struct proof_diff *d;

	if (r->count == *cap) {
		size_t ncap = *cap == 0 ? 16 : *cap * 2;
		struct proof_diff *nd = realloc(r->diffs, ncap * sizeof(*nd));
		if (nd == NULL)
			return NULL;
		r->diffs = nd;
		*cap = ncap;
	}
	d = &r->diffs[r->count++];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->src_uid = src_uid;
	d->dst_uid = dst_uid;
	return d;
}

/* The differences of one matched pair. */
static int pair_compare(struct proof_result *r, size_t *cap, const struct proof_msg *s,
                        const struct proof_msg *d, const struct proof_note *dropped)
{
	struct words sw = {0}, dw = {0};
	char gone[256], added[256];
	int64_t ts, td;
	struct proof_diff *x;
	bool changed = false;

	if (s->size != d->size) {
		if ((x = diff_add(r, cap, PROOF_SIZE, s->uid, d->uid)) == NULL)
			return -1;
		snprintf(x->src, sizeof(x->src), "%u", s->size);
		snprintf(x->dst, sizeof(x->dst), "%u", d->size);
		snprintf(x->detail, sizeof(x->detail),
		         "same content but %u bytes on the source, %u on the destination"
		         " (line endings rewritten)",
		         s->size, d->size);
		changed = true;
	}
	words_split(s->flags, &sw);
	words_split(d->flags, &dw);
	words_minus(&sw, &dw, gone, sizeof(gone));
	words_minus(&dw, &sw, added, sizeof(added));
	if (gone[0] != '\0' || added[0] != '\0') {
		bool all_dropped = dropped != NULL && dropped->keywords != NULL && added[0] == '\0';
		if (all_dropped) {
			struct words kw = {0};
			words_split(dropped->keywords, &kw);
			for (size_t i = 0; i < sw.n && all_dropped; i++)
				if (!words_has(&dw, sw.w[i]) && !words_has(&kw, sw.w[i]))
					all_dropped = false;
		}
		if ((x = diff_add(r, cap, all_dropped ? PROOF_KEYWORDS : PROOF_FLAGS, s->uid,
		                  d->uid)) == NULL)
			return -1;
		snprintf(x->src, sizeof(x->src), "%s", s->flags);
		snprintf(x->dst, sizeof(x->dst), "%s", d->flags);
		if (all_dropped)
			snprintf(
			    x->detail, sizeof(x->detail),
			    "copied without the keywords %s: the destination refused them (%s)",
			    gone, dropped->error != NULL ? dropped->error : "");
		else
			snprintf(x->detail, sizeof(x->detail), "%s%s%s%s%s",
			         gone[0] != '\0' ? "not on the destination: " : "", gone,
			         gone[0] != '\0' && added[0] != '\0' ? "; " : "",
			         added[0] != '\0' ? "only on the destination: " : "", added);
		changed = true;
	}
	if (strcmp(s->date, d->date) != 0 &&
	    (!proof_date_parse(s->date, &ts) || !proof_date_parse(d->date, &td) || ts != td)) {
		if ((x = diff_add(r, cap, PROOF_DATE_REPLACED, s->uid, d->uid)) == NULL)
			return -1;
		snprintf(x->src, sizeof(x->src), "%s", s->date);
		snprintf(x->dst, sizeof(x->dst), "%s", d->date);
		snprintf(x->detail, sizeof(x->detail),
		         "the destination holds another internal date (received date)");
		changed = true;
	}
	r->changed += changed;
	return 0;
}

int proof_compare(const struct proof_msg *src, size_t nsrc, const struct proof_msg *dst,
                  size_t ndst, const struct proof_map *map, size_t nmap,
                  const struct proof_note *errors, size_t nerrors, const struct proof_note *dropped,
                  size_t ndropped, struct proof_result *r)
{
	struct by_hash dh = {0}, sh = {0};
	bool *taken = calloc(ndst + 1, sizeof(*taken));
	size_t *pair = calloc(nsrc + 1, sizeof(*pair)); /* src index -> dst index, or ndst */
	size_t cap = 0;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	if (taken == NULL || pair == NULL || by_hash_init(&dh, dst, ndst) < 0 ||
	    by_hash_init(&sh, src, nsrc) < 0)
		goto out;
	/* The UID map first: a mapped copy that still has its identity is that
	 * message's, even when the source holds the same bytes twice. */
	for (size_t i = 0; i < nsrc; i++) {
		uint32_t du = map_find(map, nmap, src[i].uid);
		size_t j = du != 0 ? uid_find(dst, ndst, du) : ndst;
		pair[i] = ndst;
		if (j < ndst && !taken[j] &&
		    memcmp(dst[j].hash, src[i].hash, PROOF_HASH_LEN) == 0) {
			taken[j] = true;
			pair[i] = j;
		}
	}
	for (size_t i = 0; i < nsrc; i++) {
		if (pair[i] != ndst)
			continue;
		for (size_t k = by_hash_first(&dh, src[i].hash);
		     k < ndst && memcmp(dh.e[k].hash, src[i].hash, PROOF_HASH_LEN) == 0; k++) {
			if (!taken[dh.e[k].i]) {
				taken[dh.e[k].i] = true;
				pair[i] = dh.e[k].i;
				break;
			}
		}
	}
	for (size_t i = 0; i < nsrc; i++) {
		if (pair[i] != ndst) {
			r->matched++;
			if (pair_compare(r, &cap, &src[i], &dst[pair[i]],
			                 note_find(dropped, ndropped, src[i].uid)) < 0)
				goto out;
			continue;
		}
		const struct proof_note *e = note_find(errors, nerrors, src[i].uid);
		struct proof_diff *x = diff_add(r, &cap, PROOF_MISSING, src[i].uid, 0);
		if (x == NULL)
			goto out;
		snprintf(x->src, sizeof(x->src), "%u bytes, %s", src[i].size, src[i].date);
		snprintf(x->detail, sizeof(x->detail), "%s%s",
		         e != NULL ? "not copied: " : "not on the destination",
		         e != NULL && e->error != NULL ? e->error : "");
		r->missing++;
	}
	for (size_t j = 0; j < ndst; j++) {
		if (taken[j])
			continue;
		size_t k = by_hash_first(&sh, dst[j].hash);
		struct proof_diff *x = diff_add(r, &cap, k < nsrc ? PROOF_DUPLICATE : PROOF_EXTRA,
		                                k < nsrc ? src[sh.e[k].i].uid : 0, dst[j].uid);
		if (x == NULL)
			goto out;
		snprintf(x->dst, sizeof(x->dst), "%u bytes, %s", dst[j].size, dst[j].date);
		snprintf(x->detail, sizeof(x->detail), "%s",
		         k < nsrc ? "a second copy of a source message"
		                  : "on the destination only (not from the source)");
		r->extra++;
	}
	ret = 0;
out:
	if (ret < 0)
		proof_result_free(r);
	free(dh.e);
	free(sh.e);
	free(taken);
	free(pair);
	return ret;
}
