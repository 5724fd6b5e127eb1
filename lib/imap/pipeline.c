/* Pipelined commands: STATUS of many folders and UID STORE of many flag sets,
 * each burst written whole before its first answer is read, so that a WAN
 * link's round trip is paid once per burst, not once per command.
 *
 * Answers are matched by tag, not by order (a server may complete pipelined
 * commands out of order), and STATUS data by the folder name it carries.  A
 * folder whose STATUS came back OK without data we could match is asked
 * again on its own, so a server that echoes names differently still gets
 * the right numbers. */
#include "imap-private.h"

#include "arg.h"
#include "throttle.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Commands in flight at once: their answers must fit the socket buffers
 * while we are still writing, or both sides would wait on each other. */
#define PIPELINE_DEPTH 32
/* Longest UID set in one UID STORE (servers bound their command lines;
 * Dovecot's default is 64 KiB). */
#define STORE_SET_MAX 8000

/* One answer line, with the literal it announced at its end (if any) and
 * the rest of the line after it appended: "* STATUS {3}" CRLF "abc (...)" gives
 * "* STATUS {3}abc (...)" with lit_off and lit_len naming "abc".  A literal
 * over max_lit breaks the session (it is not an answer we asked for). */
static int read_answer(struct imap_session *s, MMAPString *line, size_t max_lit, size_t *lit_off,
                       size_t *lit_len)
{
	long lit;
	int ret = imap_raw_read_line(s, line);

	*lit_off = *lit_len = 0;
	if (ret < 0)
		return ret;
	lit = imap_literal_at_end(line->str, line->len);
	if (lit < 0)
		return 0;
	if ((size_t)lit > max_lit) {
		imap_session_break(s, IMAP_EPROTO,
		                   "%s:%d sent a literal of %ld bytes where a folder name or"
		                   " nothing was expected",
		                   s->host, s->port, lit);
		return IMAP_EPROTO;
	}
	*lit_off = line->len;
	*lit_len = (size_t)lit;
	if (mmap_string_set_size(line, line->len + (size_t)lit) == NULL)
		return -1;
	for (size_t got = 0; got < (size_t)lit;) {
		ssize_t n = mailstream_read(s->imap->imap_stream, line->str + *lit_off + got,
		                            (size_t)lit - got);
		if (n <= 0) {
			s->broken = true;
			return s->fault.code == IMAP_ELIMIT ? IMAP_ELIMIT : IMAP_ENET;
		}
		got += (size_t)n;
	}
	{
		MMAPString *rest = mmap_string_new("");
		if (rest == NULL)
			return -1;
		ret = imap_raw_read_line(s, rest);
		if (ret == 0 && mmap_string_append_len(line, rest->str, rest->len) == NULL)
			ret = -1;
		mmap_string_free(rest);
	}
	return ret;
}

/* The tag number of a tagged line "M<n> ...", 0 for anything else. */
static unsigned int line_tag(const char *line)
{
	char *end;
	unsigned long n;

	if (line[0] != 'M' || !isdigit((unsigned char)line[1]))
		return 0;
	n = strtoul(line + 1, &end, 10);
	return *end == ' ' && n <= UINT32_MAX ? (unsigned int)n : 0;
}

/* The text after "M<n> ", control bytes shown as '?', into buf. */
static void tagged_text(const char *line, char *buf, size_t buflen)
{
	const char *p = strchr(line, ' ');
	size_t n = 0;

	for (p = p != NULL ? p + 1 : ""; *p != '\0' && n + 1 < buflen; p++)
		buf[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	buf[n] = '\0';
}

static void name_shown(const char *name, char *buf, size_t buflen)
{
	size_t n = 0;

	for (const char *p = name; *p != '\0' && n + 1 < buflen; p++)
		buf[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	buf[n] = '\0';
}

/* --- STATUS ------------------------------------------------------------- */

/* The folder name of "* STATUS <name> (...)" decoded into name (atom, quoted
 * or literal), *rest_r after it.  False when the line is not one. */
static bool status_name(const MMAPString *line, size_t lit_off, size_t lit_len, char *name,
                        size_t namelen, const char **rest_r)
{
	const char *p = line->str + 9; /* after "* STATUS " */
	size_t n = 0;

	if (line->len < 10 || strncasecmp(line->str, "* STATUS ", 9) != 0)
		return false;
	if (lit_off > 0 && *p == '{') {
		if (lit_len + 1 > namelen || memchr(line->str + lit_off, '\0', lit_len) != NULL)
			return false;
		memcpy(name, line->str + lit_off, lit_len);
		name[lit_len] = '\0';
		*rest_r = line->str + lit_off + lit_len;
		return true;
	}
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (n + 1 >= namelen)
				return false;
			name[n++] = *p;
		}
		if (*p != '"')
			return false;
		name[n] = '\0';
		*rest_r = p + 1;
		return true;
	}
	while (*p != '\0' && *p != ' ' && *p != '(') {
		if (n + 1 >= namelen)
			return false;
		name[n++] = *p++;
	}
	name[n] = '\0';
	*rest_r = p;
	return n > 0;
}

struct status_seen {
	bool data, validity, next;
	/* More STATUS data named this folder than it was asked for: one of
	 * them was another folder's, echoed in another spelling. */
	bool twice;
};

/* Reads "(ATT n ATT n ...)" into st. */
static void status_atts(const char *p, struct imap_status *st, struct status_seen *seen)
{
	while (*p == ' ')
		p++;
	if (*p++ != '(')
		return;
	while (*p != '\0' && *p != ')') {
		char att[32];
		size_t w = strcspn(p, " )");
		uint64_t v;
		char *end;

		if (w == 0 || w >= sizeof(att))
			return;
		memcpy(att, p, w);
		att[w] = '\0';
		p += w;
		while (*p == ' ')
			p++;
		if (!isdigit((unsigned char)*p))
			return;
		v = strtoull(p, &end, 10);
		p = end;
		while (*p == ' ')
			p++;
		if (strcasecmp(att, "UIDVALIDITY") == 0 && v <= UINT32_MAX) {
			st->uidvalidity = (uint32_t)v;
			seen->validity = true;
		} else if (strcasecmp(att, "UIDNEXT") == 0 && v <= UINT32_MAX) {
			st->uidnext = (uint32_t)v;
			seen->next = true;
		} else if (strcasecmp(att, "MESSAGES") == 0 && v <= UINT32_MAX) {
			st->messages = (uint32_t)v;
		} else if (strcasecmp(att, "HIGHESTMODSEQ") == 0) {
			st->highestmodseq = v;
		} else if (strcasecmp(att, "SIZE") == 0) {
			st->size = v;
			st->has_size = true;
		}
	}
}

static bool name_same(const char *a, const char *b)
{
	return strcmp(a, b) == 0 || (strcasecmp(a, "INBOX") == 0 && strcasecmp(b, "INBOX") == 0);
}

/* One burst: reqs[first, first + n). */
static int status_burst(struct imap_session *s, struct imap_status_req *reqs, size_t n, bool *retry,
                        char *err, size_t errlen)
{
	bool condstore = imap_session_has_cap(s, "CONDSTORE");
	bool literal_plus = imap_session_has_cap(s, "LITERAL+");
	bool size = imap_session_has_cap(s, "STATUS=SIZE");
	struct status_seen *seen = calloc(n + 1, sizeof(*seen));
	bool *done = calloc(n + 1, sizeof(*done));
	MMAPString *line = mmap_string_new("");
	unsigned int base = s->raw_tag + 1;
	size_t left = 0;
	bool throttled = false;
	int ret = 0;

	if (seen == NULL || done == NULL || line == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct imap_buf arg;
		char why[256];
		int form;

		s->raw_tag++;
		imap_buf_init(&arg, IMAP_ARG_MAX + 32);
		form = imap_arg_encode(&arg, "folder name", false, reqs[i].name,
		                       strlen(reqs[i].name), literal_plus, why, sizeof(why));
		if (form < 0 || (form == IMAP_ARG_LITERAL && !literal_plus)) {
			/* Never sent: not pipelined (a synchronizing literal waits
			 * for the server), or refused (IMAP_EARG). */
			done[i] = true;
			if (form < 0) {
				reqs[i].ret = IMAP_EARG;
				snprintf(reqs[i].err, sizeof(reqs[i].err),
				         "STATUS to %s:%d not sent: %s", s->host, s->port, why);
			} else {
				retry[i] = true;
			}
			imap_buf_free(&arg, false);
			continue;
		}
		ret = imap_raw_printf(s, "M%u STATUS ", s->raw_tag);
		if (ret == 0)
			ret = imap_raw_write(s, arg.data, arg.len);
		if (ret == 0)
			ret = imap_raw_printf(s, " (UIDVALIDITY UIDNEXT MESSAGES%s%s)\r\n",
			                      condstore ? " HIGHESTMODSEQ" : "",
			                      reqs[i].want_size && size ? " SIZE" : "");
		imap_buf_free(&arg, false);
		left++;
	}
	if (ret == 0)
		ret = imap_raw_flush(s);
	while (ret == 0 && left > 0) {
		size_t lit_off, lit_len;
		unsigned int tag;

		ret = read_answer(s, line, IMAP_ARG_MAX, &lit_off, &lit_len);
		if (ret < 0)
			break;
		if (line->str[0] == '*') {
			char name[1024];
			const char *rest;
			size_t got = n, again = n;
			if (!status_name(line, lit_off, lit_len, name, sizeof(name), &rest))
				continue; /* other untagged data */
			for (size_t i = 0; i < n && got == n; i++) {
				if (done[i] || !name_same(name, reqs[i].name))
					continue;
				if (!seen[i].data)
					got = i;
				else if (again == n)
					again = i;
			}
			if (got < n) {
				memset(&reqs[got].st, 0, sizeof(reqs[got].st));
				status_atts(rest, &reqs[got].st, &seen[got]);
				seen[got].data = true;
			} else if (again < n) {
				/* The data it holds may be the other one's: ask
				 * it again alone. */
				seen[again].twice = true;
			}
			continue;
		}
		tag = line_tag(line->str);
		if (tag < base || tag >= base + n || done[tag - base])
			continue;
		size_t i = tag - base;
		char text[384], shown[200];
		const char *status = strchr(line->str, ' ') + 1;
		int backoff = 0;

		done[i] = true;
		left--;
		name_shown(reqs[i].name, shown, sizeof(shown));
		if (strncasecmp(status, "OK", 2) == 0) {
			if (!seen[i].data || seen[i].twice) {
				retry[i] = true;
				continue;
			}
			reqs[i].ret =
			    seen[i].validity && seen[i].next && reqs[i].st.uidvalidity != 0
			        ? 0
			        : IMAP_EPROTO;
			if (reqs[i].ret != 0)
				snprintf(reqs[i].err, sizeof(reqs[i].err),
				         "STATUS \"%s\": %s:%d %s", shown, s->host, s->port,
				         !seen[i].validity ? "answered without UIDVALIDITY"
				         : !seen[i].next   ? "answered without UIDNEXT"
				                         : "answered UIDVALIDITY 0, which RFC 3501"
				                           " does not allow");
			continue;
		}
		tagged_text(line->str, text, sizeof(text));
		if (imap_throttle_classify(line->str, &backoff)) {
			if (backoff > s->backoff_s)
				s->backoff_s = backoff;
			if (!throttled)
				snprintf(err, errlen, "STATUS: %s:%d asks to slow down: %s",
				         s->host, s->port, text);
			throttled = true;
			continue;
		}
		reqs[i].ret = IMAP_ENO;
		snprintf(reqs[i].err, sizeof(reqs[i].err), "STATUS \"%s\": %s:%d answered: %s",
		         shown, s->host, s->port, text);
	}
	if (ret < 0)
		ret = imap_raw_lost(s, ret, "STATUS", err, errlen);
	else if (throttled)
		ret = IMAP_ETHROTTLED;
out:
	free(seen);
	free(done);
	if (line != NULL)
		mmap_string_free(line);
	return ret;
}

int imap_status_many(struct imap_session *s, struct imap_status_req *reqs, size_t n, char *err,
                     size_t errlen)
{
	bool *retry;
	int ret = 0;

	if (s->broken) {
		snprintf(err, errlen, "STATUS: %s",
		         s->fault.why[0] != '\0' ? s->fault.why : "lost");
		return IMAP_ENET;
	}
	retry = calloc(n + 1, sizeof(*retry));
	if (retry == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->backoff_s = 0;
	for (size_t i = 0; i < n; i++) {
		reqs[i].ret = 0;
		reqs[i].err[0] = '\0';
	}
	for (size_t first = 0; first < n && ret == 0; first += PIPELINE_DEPTH) {
		size_t k = n - first < PIPELINE_DEPTH ? n - first : PIPELINE_DEPTH;
		ret = status_burst(s, reqs + first, k, retry + first, err, errlen);
	}
	/* Asked again one by one: names the server echoed in another spelling,
	 * and names that need a synchronizing literal. */
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (!retry[i])
			continue;
		reqs[i].ret = imap_folder_status(s, reqs[i].name, &reqs[i].st, reqs[i].err,
		                                 sizeof(reqs[i].err));
		if (reqs[i].ret == IMAP_ENET || reqs[i].ret == IMAP_ELIMIT ||
		    reqs[i].ret == IMAP_ETHROTTLED || (reqs[i].ret < 0 && s->broken)) {
			ret = reqs[i].ret;
			snprintf(err, errlen, "%s", reqs[i].err);
		}
	}
	free(retry);
	return ret;
}

/* --- UID STORE ------------------------------------------------------------ */

int imap_store_flags_many(struct imap_session *s, const struct imap_flag_store *stores, size_t n,
                          char *err, size_t errlen)
{
	MMAPString *line = NULL;
	char *set = NULL;
	char first_no[384] = "";
	bool throttled = false;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		ret = imap_flags_check(s, stores[i].flags, err, errlen);
		if (ret < 0)
			return ret;
	}
	if (s->broken) {
		snprintf(err, errlen, "UID STORE: %s",
		         s->fault.why[0] != '\0' ? s->fault.why : "lost");
		return IMAP_ENET;
	}
	line = mmap_string_new("");
	set = malloc(STORE_SET_MAX + 32);
	if (line == NULL || set == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto out;
	}
	s->backoff_s = 0;
	/* Position in the work: store i, its UID k. */
	size_t i = 0, k = 0;
	while (i < n && ret == 0) {
		unsigned int base = s->raw_tag + 1, sent = 0;

		/* A burst of up to PIPELINE_DEPTH commands. */
		while (i < n && sent < PIPELINE_DEPTH && ret == 0) {
			size_t len = 0;
			set[0] = '\0';
			while (k < stores[i].count) {
				size_t j = k;
				char piece[32];
				int w;
				while (j + 1 < stores[i].count &&
				       stores[i].uids[j + 1] == stores[i].uids[j] + 1)
					j++;
				if (j > k)
					w = snprintf(piece, sizeof(piece), "%s%" PRIu32 ":%" PRIu32,
					             len > 0 ? "," : "", stores[i].uids[k],
					             stores[i].uids[j]);
				else
					w = snprintf(piece, sizeof(piece), "%s%" PRIu32,
					             len > 0 ? "," : "", stores[i].uids[k]);
				if (len > 0 && len + (size_t)w > STORE_SET_MAX)
					break;
				memcpy(set + len, piece, (size_t)w + 1);
				len += (size_t)w;
				k = j + 1;
			}
			if (len > 0) {
				ret = imap_raw_printf(s, "M%u UID STORE %s FLAGS.SILENT (%s)\r\n",
				                      ++s->raw_tag, set, stores[i].flags);
				sent++;
			}
			if (k >= stores[i].count) {
				i++;
				k = 0;
			}
		}
		if (ret == 0)
			ret = imap_raw_flush(s);
		for (unsigned int left = sent; ret == 0 && left > 0;) {
			size_t lit_off, lit_len;
			unsigned int tag;
			int backoff = 0;

			/* Untagged FETCH of other sessions' changes may carry
			 * literals: read whole, then skipped. */
			ret = read_answer(s, line, IMAP_DEFAULT_MAX_LITERAL, &lit_off, &lit_len);
			if (ret < 0)
				break;
			tag = line_tag(line->str);
			if (tag < base || tag >= base + sent)
				continue;
			left--;
			if (strncasecmp(strchr(line->str, ' ') + 1, "OK", 2) == 0)
				continue;
			if (imap_throttle_classify(line->str, &backoff)) {
				if (backoff > s->backoff_s)
					s->backoff_s = backoff;
				throttled = true;
			}
			if (first_no[0] == '\0')
				tagged_text(line->str, first_no, sizeof(first_no));
		}
	}
	if (ret < 0) {
		ret = imap_raw_lost(s, ret, "UID STORE", err, errlen);
	} else if (throttled) {
		snprintf(err, errlen, "UID STORE: %s:%d asks to slow down: %s", s->host, s->port,
		         first_no);
		ret = IMAP_ETHROTTLED;
	} else if (first_no[0] != '\0') {
		snprintf(err, errlen, "UID STORE: %s:%d answered: %s", s->host, s->port, first_no);
		ret = IMAP_ENO;
	}
out:
	free(set);
	if (line != NULL)
		mmap_string_free(line);
	return ret;
}
