/* APPEND: UID sets and APPENDUID (RFC 4315), MULTIAPPEND (RFC 3502) and
 * APPENDs pipelined with LITERAL+ (imap_append_batch), and MULTIAPPENDs
 * written without waiting for their answers (imap_append_send / _finish).
 * Written on libetpan's stream through the raw path (raw.c). */
#include "imap-private.h"

#include "arg.h"
#include "log.h"
#include "throttle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int imap_uidset_format(const uint32_t *uids, size_t count, char *buf, size_t buflen)
{
	size_t len = 0, i = 0;
	int n;

	buf[0] = '\0';
	while (i < count) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		if (j > i)
			n = snprintf(buf + len, buflen - len, "%s%" PRIu32 ":%" PRIu32,
			             len > 0 ? "," : "", uids[i], uids[j]);
		else
			n = snprintf(buf + len, buflen - len, "%s%" PRIu32, len > 0 ? "," : "",
			             uids[i]);
		if (n < 0 || (size_t)n >= buflen - len)
			return -1;
		len += (size_t)n;
		i = j + 1;
	}
	return 0;
}

/* Parses the UIDs of "[APPENDUID <validity> <uid-set>]" in order into uids
 * (at most max); returns how many, or 0 when the code is absent. */
size_t appenduid_parse(const char *text, uint32_t *uids, size_t max)
{
	const char *p = strcasestr(text, "[APPENDUID ");
	size_t n = 0;
	char *end;

	if (p == NULL)
		return 0;
	p += 11;
	strtoul(p, &end, 10);
	if (end == p || *end != ' ')
		return 0;
	p = end + 1;
	while (n < max) {
		unsigned long a = strtoul(p, &end, 10), b;
		if (end == p)
			return 0;
		b = a;
		p = end;
		if (*p == ':') {
			p++;
			b = strtoul(p, &end, 10);
			if (end == p)
				return 0;
			p = end;
			if (b < a) { /* "4:2" is "2:4" (RFC 4315) */
				unsigned long t = a;
				a = b;
				b = t;
			}
		}
		for (unsigned long u = a; u <= b && n < max; u++)
			uids[n++] = (uint32_t)u;
		if (*p != ',')
			break;
		p++;
	}
	return n;
}

/* After a synchronizing literal's "{N}": waits for the continuation.  Sets
 * *refused_r (line holds the tagged answer) if the server answered instead. */
static int wait_continuation(struct imap_session *s, MMAPString *line, const char *tag,
                             bool *refused_r)
{
	int ret = imap_raw_flush(s);

	while (ret == 0) {
		ret = imap_raw_read_line(s, line);
		if (ret < 0 || line->str[0] == '+')
			break;
		if (strncmp(line->str, tag, strlen(tag)) == 0) {
			*refused_r = true;
			return 0;
		}
	}
	return ret;
}

/* The folder an APPEND goes to, encoded once (arg.h). */
struct append_target {
	struct imap_buf arg;
	int form;
};

/* Writes the encoded folder name; a synchronizing literal (no LITERAL+) is
 * sent in two steps around the server's continuation. */
static int write_target(struct imap_session *s, const struct append_target *t, bool literal_plus,
                        MMAPString *line, const char *tag, bool *refused_r)
{
	const char *crlf;
	size_t head;
	int ret;

	if (t->form != IMAP_ARG_LITERAL || literal_plus)
		return imap_raw_write(s, t->arg.data, t->arg.len);
	crlf = strstr(t->arg.data, "\r\n"); /* ends "{N}": the name holds no CR LF */
	head = (size_t)(crlf - t->arg.data) + 2;
	ret = imap_raw_write(s, t->arg.data, head);
	if (ret == 0)
		ret = wait_continuation(s, line, tag, refused_r);
	if (ret == 0 && !*refused_r)
		ret = imap_raw_write(s, t->arg.data + head, t->arg.len - head);
	return ret;
}

/* Writes " (flags) "date" {n[+]}\r\n", waits for the continuation without
 * LITERAL+, then the bytes.  *refused_r is set to the tagged line if the server
 * answered instead of continuing. */
static int write_message(struct imap_session *s, const struct imap_msg *m, bool literal_plus,
                         MMAPString *line, const char *tag, bool *refused_r)
{
	int ret;

	/* Flags and date were checked by message_check: atoms and date-time. */
	ret = imap_raw_printf(s, " (%s)%s%s%s {%zu%s}\r\n", m->flags,
	                      m->internaldate[0] != '\0' ? " \"" : "", m->internaldate,
	                      m->internaldate[0] != '\0' ? "\"" : "", m->body_len,
	                      literal_plus ? "+" : "");
	if (ret == 0 && !literal_plus) {
		ret = wait_continuation(s, line, tag, refused_r);
		if (ret < 0 || *refused_r)
			return ret;
	}
	if (ret == 0 && !m->spooled)
		ret = imap_raw_write(s, m->body, m->body_len);
	for (size_t off = 0; ret == 0 && m->spooled && off < m->body_len;) {
		char buf[65536];
		size_t want = m->body_len - off < sizeof(buf) ? m->body_len - off : sizeof(buf);
		ssize_t n = pread(m->body_fd, buf, want, (off_t)off);
		if (n <= 0) {
			/* Our own spool file came up short: the literal cannot be
			 * completed, so the session is unusable. */
			s->broken = true;
			return IMAP_ENET;
		}
		ret = imap_raw_write(s, buf, (size_t)n);
		off += (size_t)n;
	}
	return ret;
}

/* Reads lines until the tagged completion of tag; leaves it in line. */
static int read_tagged(struct imap_session *s, const char *tag, MMAPString *line)
{
	int ret;

	for (;;) {
		ret = imap_raw_read_line(s, line);
		if (ret < 0)
			return ret;
		if (strncmp(line->str, tag, strlen(tag)) == 0)
			return 0;
	}
}

static bool tagged_ok(const char *line, const char *tag)
{
	return strncasecmp(line + strlen(tag), "OK", 2) == 0;
}

/* Records the server's refusal of one message; true (and marked throttled,
 * s->backoff_s raised to its suggestion) when it asks us to slow down. */
static bool set_refused(struct imap_append_result *res, struct imap_session *s, const char *line,
                        const char *tag)
{
	int backoff = 0;

	snprintf(res->error, sizeof(res->error), "APPEND refused by %s:%d: %s", s->host, s->port,
	         line + strlen(tag));
	res->throttled = imap_throttle_classify(line, &backoff);
	if (res->throttled && backoff > s->backoff_s)
		s->backoff_s = backoff;
	return res->throttled;
}

/* Marks a message that was not sent because the server asked us to slow down. */
static void set_not_sent(struct imap_append_result *res, struct imap_session *s)
{
	snprintf(res->error, sizeof(res->error),
	         "APPEND not sent: %s:%d asked to slow down on an earlier message", s->host,
	         s->port);
	res->throttled = true;
}

/* One MULTIAPPEND command for msgs[idx[0..n)]; 1 if the server refused it
 * other than by throttling (the caller then appends one by one). */
static int append_multi(struct imap_session *s, const struct append_target *folder,
                        const struct imap_msg *msgs, const size_t *idx, size_t n, bool literal_plus,
                        struct imap_append_result *results, MMAPString *line)
{
	uint32_t *uids = calloc(n, sizeof(*uids));
	bool refused = false;
	char tag[32];
	size_t got;
	int ret;

	if (uids == NULL)
		return -1;
	snprintf(tag, sizeof(tag), "M%u ", ++s->raw_tag);
	ret = imap_raw_printf(s, "%sAPPEND ", tag);
	if (ret == 0)
		ret = write_target(s, folder, literal_plus, line, tag, &refused);
	for (size_t i = 0; i < n && ret == 0 && !refused; i++)
		ret = write_message(s, &msgs[idx[i]], literal_plus, line, tag, &refused);
	if (ret == 0 && !refused) {
		ret = imap_raw_write(s, "\r\n", 2);
		if (ret == 0)
			ret = imap_raw_flush(s);
		if (ret == 0)
			ret = read_tagged(s, tag, line);
	}
	if (ret == 0 && (refused || !tagged_ok(line->str, tag)) &&
	    imap_throttle_classify(line->str, NULL)) {
		/* MULTIAPPEND is atomic (RFC 3502): nothing was stored.
		 * One by one would only press a server that asks for less. */
		log_info("MULTIAPPEND of %zu messages throttled (%s)", n, line->str + strlen(tag));
		for (size_t i = 0; i < n; i++)
			set_refused(&results[idx[i]], s, line->str, tag);
	} else if (ret == 0 && (refused || !tagged_ok(line->str, tag))) {
		log_info("MULTIAPPEND of %zu messages refused (%s); appending one by one", n,
		         line->str + strlen(tag));
		ret = 1;
	} else if (ret == 0) {
		got = appenduid_parse(line->str, uids, n);
		for (size_t i = 0; i < n; i++)
			results[idx[i]].dst_uid = got == n ? uids[i] : 0;
	}
	free(uids);
	return ret;
}

/* APPENDs pipelined with LITERAL+ (all written, then all completions read),
 * or one at a time with continuations, stopping at the first throttled one. */
static int append_each(struct imap_session *s, const struct append_target *folder,
                       const struct imap_msg *msgs, const size_t *idx, size_t n, bool literal_plus,
                       struct imap_append_result *results, MMAPString *line)
{
	unsigned int first_tag = s->raw_tag + 1;
	char tag[32];
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i++) {
		bool refused = false, throttled = false;
		snprintf(tag, sizeof(tag), "M%u ", ++s->raw_tag);
		ret = imap_raw_printf(s, "%sAPPEND ", tag);
		if (ret == 0)
			ret = write_target(s, folder, literal_plus, line, tag, &refused);
		if (ret == 0 && !refused)
			ret = write_message(s, &msgs[idx[i]], literal_plus, line, tag, &refused);
		if (ret == 0 && refused) {
			throttled = set_refused(&results[idx[i]], s, line->str, tag);
		} else {
			if (ret == 0)
				ret = imap_raw_write(s, "\r\n", 2);
			if (ret == 0 && !literal_plus) {
				ret = imap_raw_flush(s);
				if (ret == 0)
					ret = read_tagged(s, tag, line);
				if (ret == 0 && !tagged_ok(line->str, tag))
					throttled =
					    set_refused(&results[idx[i]], s, line->str, tag);
				else if (ret == 0)
					appenduid_parse(line->str, &results[idx[i]].dst_uid, 1);
			}
		}
		if (throttled) {
			for (size_t j = i + 1; j < n; j++)
				set_not_sent(&results[idx[j]], s);
			break;
		}
	}
	if (ret < 0 || !literal_plus)
		return ret;
	ret = imap_raw_flush(s);
	/* Completions come back in command order (RFC 3501 5.5 does not promise
	 * it, so match them by tag). */
	for (size_t done = 0; done < n && ret == 0;) {
		unsigned long t;
		char *end;
		ret = imap_raw_read_line(s, line);
		if (ret < 0 || line->str[0] != 'M')
			continue;
		t = strtoul(line->str + 1, &end, 10);
		if (*end != ' ' || t < first_tag || t >= first_tag + n)
			continue;
		snprintf(tag, sizeof(tag), "M%lu ", t);
		if (!tagged_ok(line->str, tag))
			set_refused(&results[idx[t - first_tag]], s, line->str, tag);
		else
			appenduid_parse(line->str, &results[idx[t - first_tag]].dst_uid, 1);
		done++;
	}
	return ret;
}

/* The flags and INTERNALDATE of a message come from the source server: they
 * go out only as what they claim to be (atoms, a date-time), else the
 * message gets an error and is not sent. */
static bool message_check(const struct imap_msg *m, struct imap_append_result *res)
{
	const char *p = m->flags;

	while (*p != '\0') {
		size_t len = strcspn(p, " ");
		if (len > 0 && !imap_arg_flag_ok(p, len)) {
			char shown[64];
			size_t n = 0;
			for (size_t i = 0; i < len && n + 1 < sizeof(shown); i++)
				shown[n++] = (unsigned char)p[i] < 0x20 ? '?' : p[i];
			shown[n] = '\0';
			snprintf(res->error, sizeof(res->error),
			         "APPEND not sent: the source's flag \"%s\" is not a valid IMAP "
			         "flag",
			         shown);
			return false;
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	if (m->internaldate[0] != '\0' && !imap_arg_date_ok(m->internaldate)) {
		snprintf(
		    res->error, sizeof(res->error),
		    "APPEND not sent: the source's INTERNALDATE is not a valid IMAP date-time");
		return false;
	}
	return true;
}

/* Clears results and lists in idx the messages that can be sent; the others
 * get their error in results (over APPENDLIMIT, empty, an invalid flag or
 * date).  Returns how many are listed. */
static size_t messages_sendable(const struct imap_session *s, const struct imap_msg *msgs,
                                size_t count, struct imap_append_result *results, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < count; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		if (s->appendlimit > 0 && msgs[i].body_len > s->appendlimit)
			snprintf(results[i].error, sizeof(results[i].error),
			         "message of %zu bytes is larger than the APPENDLIMIT of %s:%d"
			         " (%" PRIu64 " bytes)",
			         msgs[i].body_len, s->host, s->port, s->appendlimit);
		else if (msgs[i].body_len == 0)
			snprintf(results[i].error, sizeof(results[i].error),
			         "empty message: nothing to append");
		else if (message_check(&msgs[i], &results[i]))
			idx[n++] = i;
	}
	return n;
}

int imap_append_batch(struct imap_session *s, const char *folder, const struct imap_msg *msgs,
                      size_t count, struct imap_append_result *results, char *err, size_t errlen)
{
	bool literal_plus = imap_session_has_cap(s, "LITERAL+");
	MMAPString *line = mmap_string_new("");
	size_t *idx = calloc(count + 1, sizeof(*idx));
	struct append_target target;
	char why[384];
	size_t n = 0;
	int ret = 0;

	imap_buf_init(&target.arg, IMAP_ARG_MAX + 32);
	if (line == NULL || idx == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto out;
	}
	target.form = imap_arg_encode(&target.arg, "folder name", false, folder, strlen(folder),
	                              literal_plus, why, sizeof(why));
	if (target.form < 0) {
		snprintf(err, errlen, "APPEND to %s:%d not sent: %s", s->host, s->port, why);
		ret = IMAP_EARG;
		goto out;
	}
	s->backoff_s = 0;
	n = messages_sendable(s, msgs, count, results, idx);
	if (n == 0)
		goto out;
	if (n > 1 && imap_session_has_cap(s, "MULTIAPPEND")) {
		ret = append_multi(s, &target, msgs, idx, n, literal_plus, results, line);
		if (ret <= 0)
			goto out;
	}
	ret = append_each(s, &target, msgs, idx, n, literal_plus, results, line);
out:
	if (ret == -1 && !s->broken)
		snprintf(err, errlen, "APPEND: out of memory");
	else if (ret < 0 && ret != IMAP_EARG)
		ret = imap_raw_lost(s, ret, "APPEND", err, errlen);
	if (line != NULL)
		mmap_string_free(line);
	imap_buf_free(&target.arg, false);
	free(idx);
	return ret < 0 ? ret : 0;
}

/* --- MULTIAPPEND without waiting (imap_append_send / imap_append_finish) --- */

bool imap_append_can_pipeline(const struct imap_session *s)
{
	return imap_session_has_cap(s, "MULTIAPPEND") && imap_session_has_cap(s, "LITERAL+") &&
	       imap_session_has_cap(s, "UIDPLUS");
}

int imap_append_send(struct imap_session *s, const char *folder, const struct imap_msg *msgs,
                     size_t count, struct imap_append_result *results,
                     struct imap_append_pending *p, char *err, size_t errlen)
{
	struct append_target target;
	MMAPString *line = NULL;
	char why[384], tag[32];
	bool refused = false;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	p->idx = calloc(count + 1, sizeof(*p->idx));
	if (p->idx == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->count = count;
	p->n = messages_sendable(s, msgs, count, results, p->idx);
	if (p->n == 0)
		return 0; /* nothing to send: imap_append_finish has nothing to read */
	imap_buf_init(&target.arg, IMAP_ARG_MAX + 32);
	target.form = imap_arg_encode(&target.arg, "folder name", false, folder, strlen(folder),
	                              true, why, sizeof(why));
	if (target.form < 0) {
		snprintf(err, errlen, "APPEND to %s:%d not sent: %s", s->host, s->port, why);
		imap_buf_free(&target.arg, false);
		p->n = 0;
		return IMAP_EARG;
	}
	line = mmap_string_new("");
	if (line == NULL) {
		imap_buf_free(&target.arg, false);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->backoff_s = 0;
	p->tag = ++s->raw_tag;
	snprintf(tag, sizeof(tag), "M%u ", p->tag);
	/* LITERAL+ throughout: nothing here waits for the server. */
	ret = imap_raw_printf(s, "%sAPPEND ", tag);
	if (ret == 0)
		ret = write_target(s, &target, true, line, tag, &refused);
	for (size_t i = 0; i < p->n && ret == 0; i++)
		ret = write_message(s, &msgs[p->idx[i]], true, line, tag, &refused);
	if (ret == 0)
		ret = imap_raw_write(s, "\r\n", 2);
	if (ret == 0)
		ret = imap_raw_flush(s);
	imap_buf_free(&target.arg, false);
	mmap_string_free(line);
	if (ret < 0)
		return imap_raw_lost(s, ret, "APPEND", err, errlen);
	p->sent = true;
	return 0;
}

/* The tagged answer of p: read from the stream, or kept by an earlier call
 * that read it while waiting for another's (answers may come in any order). */
static int pending_answer(struct imap_session *s, struct imap_append_pending *p,
                          struct imap_append_pending *const *others, size_t nothers,
                          MMAPString *line)
{
	char tag[32];
	int ret;

	if (p->answer != NULL)
		return mmap_string_assign(line, p->answer) != NULL ? 0 : -1;
	snprintf(tag, sizeof(tag), "M%u ", p->tag);
	for (;;) {
		ret = imap_raw_read_line(s, line);
		if (ret < 0)
			return ret;
		if (strncmp(line->str, tag, strlen(tag)) == 0)
			return 0;
		for (size_t k = 0; k < nothers; k++) {
			char other[32];
			snprintf(other, sizeof(other), "M%u ", others[k]->tag);
			if (others[k]->sent && others[k]->answer == NULL &&
			    strncmp(line->str, other, strlen(other)) == 0)
				others[k]->answer = strdup(line->str);
		}
	}
}

int imap_append_finish(struct imap_session *s, struct imap_append_pending *p,
                       struct imap_append_pending *const *others, size_t nothers,
                       struct imap_append_result *results, char *err, size_t errlen)
{
	MMAPString *line;
	char tag[32];
	int ret = 0;

	if (!p->sent)
		goto out;
	line = mmap_string_new("");
	if (line == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto out;
	}
	snprintf(tag, sizeof(tag), "M%u ", p->tag);
	ret = pending_answer(s, p, others, nothers, line);
	if (ret < 0) {
		ret = ret == -1 ? -1 : imap_raw_lost(s, ret, "APPEND", err, errlen);
	} else if (tagged_ok(line->str, tag)) {
		uint32_t *uids = calloc(p->n + 1, sizeof(*uids));
		size_t got = uids != NULL ? appenduid_parse(line->str, uids, p->n) : 0;
		for (size_t i = 0; i < p->n; i++)
			results[p->idx[i]].dst_uid = got == p->n ? uids[i] : 0;
		free(uids);
	} else if (imap_throttle_classify(line->str, NULL)) {
		/* Atomic (RFC 3502): nothing was stored. */
		for (size_t i = 0; i < p->n; i++)
			set_refused(&results[p->idx[i]], s, line->str, tag);
		snprintf(err, errlen, "APPEND: %s:%d asks to slow down: %s", s->host, s->port,
		         line->str + strlen(tag));
		ret = IMAP_ETHROTTLED;
	} else {
		/* Refused whole (one message the server does not take): nothing
		 * was stored; the caller appends them again one by one. */
		snprintf(err, errlen, "MULTIAPPEND of %zu messages refused by %s:%d: %s", p->n,
		         s->host, s->port, line->str + strlen(tag));
		ret = IMAP_ENO;
	}
	mmap_string_free(line);
out:
	imap_append_pending_free(p);
	return ret;
}

void imap_append_pending_free(struct imap_append_pending *p)
{
	free(p->idx);
	free(p->answer);
	p->idx = NULL;
	p->answer = NULL;
	p->sent = false;
}
