/* A message the destination refused while it carries keywords: appended
 * again with the keywords the destination takes, so that one refused keyword
 * (too long, too many, not allowed in the folder) does not lose the whole
 * message.  What was dropped is recorded per message (keywords_dropped),
 * shown by status and named by the proof. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* APPENDs tried per refused message at most: a message refused for another
 * reason (its size) costs this many more. */
#define KEYWORD_TRIES 5
#define KEYWORDS_MAX 64

struct flag_words {
	char buf[256];
	char *sys[KEYWORDS_MAX], *kw[KEYWORDS_MAX];
	size_t nsys, nkw;
	bool keep[KEYWORDS_MAX];
};

/* Splits flags into system flags (RFC 3501 2.3.2: "\" and an atom, always
 * kept) and keywords. */
static void words_split(const char *flags, struct flag_words *w)
{
	char *save = NULL;

	memset(w, 0, sizeof(*w));
	snprintf(w->buf, sizeof(w->buf), "%s", flags);
	for (char *t = strtok_r(w->buf, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (t[0] == '\\' && w->nsys < KEYWORDS_MAX) {
			w->sys[w->nsys++] = t;
		} else if (t[0] != '\\' && w->nkw < KEYWORDS_MAX) {
			w->keep[w->nkw] = true;
			w->kw[w->nkw++] = t;
		}
	}
}

/* The system flags and the keywords kept (keep) or dropped (!keep). */
static void words_join(const struct flag_words *w, bool sys, bool kept, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; sys && i < w->nsys && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", len > 0 ? " " : "",
		                        w->sys[i]);
	for (size_t i = 0; i < w->nkw && len < outlen; i++)
		if (w->keep[i] == kept)
			len += (size_t)snprintf(out + len, outlen - len, "%s%s", len > 0 ? " " : "",
			                        w->kw[i]);
}

/* Drops the longest keyword still kept (a length limit rules out the
 * longest first); false when none is left. */
static bool drop_longest(struct flag_words *w)
{
	size_t best = w->nkw;

	for (size_t i = 0; i < w->nkw; i++)
		if (w->keep[i] && (best == w->nkw || strlen(w->kw[i]) >= strlen(w->kw[best])))
			best = i;
	if (best == w->nkw)
		return false;
	w->keep[best] = false;
	return true;
}

int keywords_fallback(struct folder_ctx *fc, const char *dst_name, const struct imap_msg *m,
                      struct imap_append_result *res, struct store_uid_note *note)
{
	struct flag_words w;
	struct imap_msg copy = *m;
	struct imap_append_result r;
	char refused[sizeof(res->error)];
	bool changed = false;
	int ret;

	memset(note, 0, sizeof(*note));
	words_split(m->flags, &w);
	if (w.nkw == 0)
		return 0;
	snprintf(refused, sizeof(refused), "%s", res->error);
	/* First what the folder's PERMANENTFLAGS rule out (RFC 3501 7.1: no
	 * "\*", the keyword not listed): those cannot be stored anyway. */
	for (size_t i = 0; i < w.nkw; i++)
		if (!imap_session_keyword_permitted(fc->dst, w.kw[i])) {
			w.keep[i] = false;
			changed = true;
		}
	if (!changed)
		drop_longest(&w);
	for (int tries = 0; tries < KEYWORD_TRIES; tries++) {
		char dropped[256];
		words_join(&w, true, true, copy.flags, sizeof(copy.flags));
		memset(&r, 0, sizeof(r));
		ret = imap_append_batch(fc->dst, dst_name, &copy, 1, &r, fc->err, sizeof(fc->err));
		if (ret < 0)
			return ret;
		if (r.throttled) {
			snprintf(fc->err, sizeof(fc->err), "%s", r.error);
			fc->throttled_dst = true;
			return IMAP_ETHROTTLED;
		}
		if (r.error[0] == '\0') {
			words_join(&w, false, false, dropped, sizeof(dropped));
			note->src_uid = m->uid;
			note->dst_uid = r.dst_uid;
			note->keywords = strdup(dropped);
			note->error = strdup(refused);
			if (note->keywords == NULL || note->error == NULL) {
				snprintf(fc->err, sizeof(fc->err), "out of memory");
				return -1;
			}
			log_warn("account %" PRId64 " uid %" PRIu32
			         ": copied without the keywords %s"
			         " (the destination refused them: %s)",
			         fc->run->acct->id, m->uid, dropped, refused);
			*res = r;
			return 0;
		}
		/* Fewer, then none. */
		if (!drop_longest(&w))
			break;
		if (tries == KEYWORD_TRIES - 2)
			while (drop_longest(&w))
				;
	}
	snprintf(res->error, sizeof(res->error), "%.200s (refused without its keywords too)",
	         refused);
	return 0;
}

void keywords_strip(char *flags, const char *dropped)
{
	struct flag_words drop, w;
	char out[sizeof(w.buf)];
	size_t len = 0;

	words_split(dropped, &drop);
	words_split(flags, &w);
	out[0] = '\0';
	for (size_t i = 0; i < w.nsys && len < sizeof(out); i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", len > 0 ? " " : "",
		                        w.sys[i]);
	for (size_t i = 0; i < w.nkw && len < sizeof(out); i++) {
		bool gone = false;
		for (size_t k = 0; k < drop.nkw && !gone; k++)
			gone = strcasecmp(w.kw[i], drop.kw[k]) == 0;
		if (!gone)
			len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s",
			                        len > 0 ? " " : "", w.kw[i]);
	}
	/* flags is an imap_msg's flags[256], as w.buf. */
	snprintf(flags, sizeof(w.buf), "%s", out);
}
