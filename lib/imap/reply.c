/* What the server answered: a failed libetpan call, or a NO/BAD/BYE read on
 * the raw path, turned into this library's codes with the server's own
 * words (imap-private.h). */
#include "imap-private.h"

#include "arg.h"
#include "log.h"
#include "throttle.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Size of a literal announced at the end of a line ("{N}", "{N+}"), -1 if none. */
long imap_literal_at_end(const char *line, size_t len)
{
	size_t i;

	if (len < 3 || line[len - 1] != '}')
		return -1;
	i = len - 1;
	if (line[i - 1] == '+')
		i--;
	if (i == 0 || !isdigit((unsigned char)line[i - 1]))
		return -1;
	while (i > 0 && isdigit((unsigned char)line[i - 1]))
		i--;
	if (i == 0 || line[i - 1] != '{')
		return -1;
	return strtol(line + i, NULL, 10);
}

/* Copies the server's answer to the command that just failed into buf (the
 * line without its tag: "NO [CODE] text", "BYE text"), "" if there is none.
 * libetpan keeps the whole response as read in imap_stream_buffer (reset at
 * each command; its imap_response has the text without the response code,
 * and nothing when a BYE broke the response), so it is scanned here: a BYE
 * line wins; otherwise, when the response was complete, its last line is the
 * tagged completion, taken when it is a NO or BAD.  Literals are skipped, so
 * message bytes are never taken for a reply.  Sets *bye_r when the answer is a
 * BYE. */
static void reply_copy(struct imap_session *s, bool complete, char *buf, size_t buflen, bool *bye_r)
{
	MMAPString *in = s->imap != NULL ? s->imap->imap_stream_buffer : NULL;
	const char *p, *end, *last = NULL, *bye = NULL;
	size_t last_len = 0, bye_len = 0, n = 0;

	buf[0] = '\0';
	*bye_r = false;
	if (in == NULL)
		return;
	p = in->str;
	end = in->str + in->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl != NULL ? nl : end) - p);
		long lit;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0) {
			last = p;
			last_len = len;
			if (len >= 5 && strncasecmp(p, "* BYE", 5) == 0 &&
			    (len == 5 || p[5] == ' ')) {
				bye = p;
				bye_len = len;
			}
		}
		lit = imap_literal_at_end(p, len);
		p = nl != NULL ? nl + 1 : end;
		if (lit > 0)
			p = (size_t)lit < (size_t)(end - p) ? p + lit : end;
	}
	if (bye != NULL) {
		last = bye;
		last_len = bye_len;
		*bye_r = true;
	} else if (!complete || last == NULL) {
		return;
	}
	/* Drop the tag ("a12 ", "* "). */
	for (size_t i = 0; i < last_len; i++) {
		if (last[i] == ' ') {
			last += i + 1;
			last_len -= i + 1;
			break;
		}
	}
	if (!*bye_r && !(last_len >= 2 && strncasecmp(last, "NO", 2) == 0) &&
	    !(last_len >= 3 && strncasecmp(last, "BAD", 3) == 0))
		return;
	for (size_t i = 0; i < last_len && n + 1 < buflen; i++)
		buf[n++] = (unsigned char)last[i] < 0x20 ? '?' : last[i];
	buf[n] = '\0';
}

void imap_session_break(struct imap_session *s, int code, const char *fmt, ...)
{
	va_list ap;

	s->broken = true;
	if (s->fault.code == 0) {
		s->fault.code = code;
		va_start(ap, fmt);
		vsnprintf(s->fault.why, sizeof(s->fault.why), fmt, ap);
		va_end(ap);
	}
	if (s->imap != NULL && s->imap->imap_stream != NULL)
		imap_transport_shut(mailstream_get_low(s->imap->imap_stream));
}

int imap_command_failed(struct imap_session *s, int r, const char *what, char *err, size_t errlen)
{
	char reply[512];
	bool bye, lost;
	int backoff = 0;

	/* Refused by libetpan before anything was sent: the stream buffer still
	 * holds the previous answer, which must not be taken for this one. */
	if (r == MAILIMAP_ERROR_BAD_STATE && !s->broken) {
		snprintf(err, errlen, "%s: not allowed in this state of the session with %s:%d",
		         what, s->host, s->port);
		return IMAP_ENO;
	}
	if (r == MAILIMAP_ERROR_MEMORY && !s->broken) {
		snprintf(err, errlen, "%s: out of memory", what);
		return IMAP_ENO;
	}
	/* A bound the reply broke comes first: whatever else the buffer holds
	 * was cut short by it. */
	if (s->fault.code == IMAP_ELIMIT) {
		s->broken = true;
		snprintf(err, errlen, "%s: %s", what, s->fault.why);
		return IMAP_ELIMIT;
	}
	lost = s->broken || r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_PARSE ||
	       r == MAILIMAP_ERROR_CONNECTION_REFUSED || r == MAILIMAP_ERROR_FATAL ||
	       r == MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION || s->fault.code != 0;
	reply_copy(s, !lost, reply, sizeof(reply), &bye);
	if (bye)
		lost = true;
	if (lost)
		s->broken = true;
	if (reply[0] != '\0' && imap_throttle_classify(reply, &backoff)) {
		s->backoff_s = backoff;
		snprintf(err, errlen, "%s: %s:%d asks to slow down%s: %s", what, s->host, s->port,
		         lost ? " and closed the connection" : "", reply);
		return IMAP_ETHROTTLED;
	}
	if (bye) {
		snprintf(err, errlen, "%s: %s:%d closed the connection: %s", what, s->host, s->port,
		         reply);
		return IMAP_ENET;
	}
	if (s->fault.code != 0) {
		snprintf(err, errlen, "%s: %s", what, s->fault.why);
		return s->fault.code;
	}
	if (r == MAILIMAP_ERROR_PARSE) {
		/* libetpan stopped inside the reply: the rest of it is still on the
		 * stream, so the session cannot go on. */
		snprintf(err, errlen, "%s: the response of %s:%d could not be parsed", what,
		         s->host, s->port);
		imap_session_break(s, IMAP_ENET,
		                   "the session with %s:%d ended after a response that could not "
		                   "be parsed",
		                   s->host, s->port);
		return IMAP_EPROTO;
	}
	if (lost) {
		snprintf(err, errlen, "%s: connection to %s:%d lost", what, s->host, s->port);
		return IMAP_ENET;
	}
	if (reply[0] != '\0')
		snprintf(err, errlen, "%s: %s:%d answered: %s", what, s->host, s->port, reply);
	else
		snprintf(err, errlen, "%s: %s:%d: failed without a NO or BAD (libetpan error %d)",
		         what, s->host, s->port, r);
	return IMAP_ENO;
}

int imap_command_throttled(struct imap_session *s, const char *what, char *err, size_t errlen)
{
	char reply[512];
	bool bye;
	int backoff = 0;

	reply_copy(s, true, reply, sizeof(reply), &bye);
	if (reply[0] == '\0' || !imap_throttle_classify(reply, &backoff))
		return 0;
	if (bye)
		s->broken = true;
	s->backoff_s = backoff;
	snprintf(err, errlen, "%s: %s:%d asks to slow down%s: %s", what, s->host, s->port,
	         bye ? " and closed the connection" : "", reply);
	return IMAP_ETHROTTLED;
}
