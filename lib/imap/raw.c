/* The raw path: commands written straight onto libetpan's stream and read
 * back line by line, for the SASL exchanges here and for APPEND (append.c)
 * and the pipelined STATUS and STORE (pipeline.c).  The replies to these
 * commands are simple lines: untagged data, continuations and the tagged
 * completion. */
#include "imap-private.h"

#include "arg.h"
#include "log.h"
#include "throttle.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Upper bound of one formatted piece of a command (the parts of variable
 * length, names and SASL responses, are written on their own). */
#define RAW_PRINTF_MAX 65536

int imap_raw_write(struct imap_session *s, const void *buf, size_t len)
{
	/* The write guard is asked by the transport under every write. */
	if (mailstream_write(s->imap->imap_stream, buf, len) != (ssize_t)len) {
		s->broken = true;
		return IMAP_ENET;
	}
	return 0;
}

int imap_raw_printf(struct imap_session *s, const char *fmt, ...)
{
	char small[512], *buf = small;
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= sizeof(small) && n < RAW_PRINTF_MAX) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL) {
			va_start(ap, fmt);
			vsnprintf(buf, (size_t)n + 1, fmt, ap);
			va_end(ap);
		}
	}
	if (n < 0 || n >= RAW_PRINTF_MAX || buf == NULL) {
		/* Part of the command may be out already: the session is lost. */
		s->broken = true;
		if (s->fault.code == 0) {
			s->fault.code = IMAP_ENET;
			snprintf(s->fault.why, sizeof(s->fault.why),
			         "a command to %s:%d could not be formatted (%s)", s->host, s->port,
			         buf == NULL ? "out of memory" : "too long");
		}
		return IMAP_ENET;
	}
	ret = imap_raw_write(s, buf, (size_t)n);
	if (buf != small)
		free(buf);
	return ret;
}

int imap_raw_flush(struct imap_session *s)
{
	if (mailstream_flush(s->imap->imap_stream) < 0) {
		s->broken = true;
		return IMAP_ENET;
	}
	return 0;
}

/* Reads one reply line without its CRLF into line; IMAP_ENET on EOF/timeout.
 * A BYE breaks the session: IMAP_ETHROTTLED when it tells of load, else
 * IMAP_ENET; its line is kept in s->bye for the error text. */
int imap_raw_read_line(struct imap_session *s, MMAPString *line)
{
	int backoff = 0;

	/* The line's length is bounded by the transport (max_line). */
	mmap_string_truncate(line, 0);
	if (mailstream_read_line_remove_eol(s->imap->imap_stream, line) == NULL) {
		s->broken = true;
		return s->fault.code == IMAP_ELIMIT ? IMAP_ELIMIT : IMAP_ENET;
	}
	if (strncasecmp(line->str, "* BYE", 5) == 0) {
		log_warn("imap %s:%d said: %s", s->host, s->port, line->str);
		snprintf(s->bye, sizeof(s->bye), "%s", line->str + 2);
		s->broken = true;
		if (imap_throttle_classify(line->str, &backoff)) {
			s->backoff_s = backoff;
			return IMAP_ETHROTTLED;
		}
		return IMAP_ENET;
	}
	return 0;
}

/* The error text of a session the raw path lost: the server's BYE if any,
 * else the transport's reason (timeout, end of stream, a bound, cancelled).
 * Returns the code to give the caller. */
int imap_raw_lost(struct imap_session *s, int ret, const char *what, char *err, size_t errlen)
{
	if (ret == IMAP_ETHROTTLED) {
		snprintf(err, errlen, "%s: %s:%d asks to slow down and closed the connection: %s",
		         what, s->host, s->port, s->bye);
		return ret;
	}
	if (s->fault.code == IMAP_ELIMIT) {
		snprintf(err, errlen, "%s: %s", what, s->fault.why);
		return IMAP_ELIMIT;
	}
	if (s->bye[0] != '\0')
		snprintf(err, errlen, "%s: %s:%d closed the connection: %s", what, s->host, s->port,
		         s->bye);
	else if (s->fault.code != 0)
		snprintf(err, errlen, "%s: %s", what, s->fault.why);
	else
		snprintf(err, errlen, "%s: connection to %s:%d lost", what, s->host, s->port);
	return IMAP_ENET;
}

/* Wipes libetpan's write buffer after a secret went through it. */
static void raw_wipe_sent(struct imap_session *s)
{
	mailstream *st = s->imap->imap_stream;

	if (st != NULL && st->write_buffer != NULL)
		OPENSSL_cleanse(st->write_buffer, st->buffer_max_size);
}

/* Copies "OK/NO/BAD text" of a tagged line after the tag. */
static const char *tagged_rest(const char *line)
{
	const char *sp = strchr(line, ' ');

	return sp != NULL ? sp + 1 : "";
}

/* The server's error challenge of an OAuth2 mechanism (RFC 7628 3.2.2: base64
 * of a JSON object such as {"status":"invalid_token"}), decoded into out as
 * printable text for the refusal's message; "" when there is none. */
static void challenge_decode(const char *line, char *out, size_t outlen)
{
	const char *b64 = line + 1;
	size_t len, cap;
	unsigned char *raw;
	int n;

	out[0] = '\0';
	while (*b64 == ' ')
		b64++;
	len = strcspn(b64, "\r\n");
	if (len == 0 || len % 4 != 0 || len > 4096)
		return;
	cap = len / 4 * 3 + 1;
	raw = malloc(cap);
	if (raw == NULL)
		return;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n > 0) {
		size_t o = 0;
		/* The padding decodes as NULs at the end. */
		while (n > 0 && raw[n - 1] == '\0')
			n--;
		for (int i = 0; i < n && o + 1 < outlen; i++)
			out[o++] = raw[i] >= 0x20 && raw[i] < 0x7f ? (char)raw[i] : '?';
		out[o] = '\0';
	}
	free(raw);
}

int imap_raw_authenticate(struct imap_session *s, const char *mech, const char *b64, bool sasl_ir,
                          const char *error_reply, char *err, size_t errlen)
{
	MMAPString *line = mmap_string_new("");
	char tag[32], what[64], challenge[256] = "";
	bool sent = sasl_ir;
	int ret, backoff = 0;

	if (line == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(what, sizeof(what), "AUTHENTICATE %s", mech);
	snprintf(tag, sizeof(tag), "M%u ", ++s->raw_tag);
	/* The response is written whole, whatever its length (an OAuth2
	 * token can be several KB): never through a fixed buffer. */
	ret = imap_raw_printf(s, "%sAUTHENTICATE %s", tag, mech);
	if (ret == 0 && sasl_ir)
		ret = imap_raw_write(s, " ", 1);
	if (ret == 0 && sasl_ir)
		ret = b64[0] != '\0' ? imap_raw_write(s, b64, strlen(b64))
		                     : imap_raw_write(s, "=", 1);
	if (ret == 0)
		ret = imap_raw_write(s, "\r\n", 2);
	if (ret == 0)
		ret = imap_raw_flush(s);
	raw_wipe_sent(s);
	while (ret == 0) {
		ret = imap_raw_read_line(s, line);
		if (ret < 0)
			break;
		if (line->str[0] == '+') {
			/* First continuation: the credentials; a later one is an
			 * error challenge of XOAUTH2 or OAUTHBEARER, answered as
			 * the mechanism says (empty, or ^A) to get the NO. */
			const char *reply = error_reply != NULL ? error_reply : "";
			if (sent)
				challenge_decode(line->str, challenge, sizeof(challenge));
			ret = imap_raw_write(s, sent ? reply : b64, strlen(sent ? reply : b64));
			if (ret == 0)
				ret = imap_raw_write(s, "\r\n", 2);
			sent = true;
			if (ret == 0)
				ret = imap_raw_flush(s);
			raw_wipe_sent(s);
			continue;
		}
		if (strncmp(line->str, tag, strlen(tag)) != 0)
			continue; /* untagged, e.g. CAPABILITY */
		if (strncasecmp(line->str + strlen(tag), "OK", 2) == 0) {
			s->caps_after_auth = imap_session_caps_from_text(s, line->str);
			break;
		}
		/* A throttled answer is not a verdict on the credentials. */
		if (imap_throttle_classify(line->str, &backoff)) {
			s->backoff_s = backoff;
			snprintf(err, errlen, "%s: %s:%d asks to slow down: %s", what, s->host,
			         s->port, tagged_rest(line->str + strlen(tag) - 1));
			ret = IMAP_ETHROTTLED;
			break;
		}
		snprintf(err, errlen, "AUTHENTICATE %s refused by %s:%d: %s%s%s%s", mech, s->host,
		         s->port, tagged_rest(line->str + strlen(tag) - 1),
		         challenge[0] != '\0' ? " (error challenge " : "", challenge,
		         challenge[0] != '\0' ? ")" : "");
		ret = IMAP_EAUTH;
	}
	if (ret == IMAP_ENET || ret == IMAP_ELIMIT || (ret == IMAP_ETHROTTLED && s->broken))
		ret = imap_raw_lost(s, ret, what, err, errlen);
	mmap_string_free(line);
	return ret;
}
