/* POP3 sessions over the bounded transport; see pop3.h for what is sent,
 * what never is, and the bounds. */
#include "pop3-private.h"

#include "arg.h"
#include "log.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Where a session is: each step only from the one before it. */
enum pop3_state {
	POP3_CONNECTING,    /* TCP (and implicit TLS) under way */
	POP3_GREETED,       /* +OK greeting read, AUTHORIZATION state (RFC 1939 4) */
	POP3_TLS,           /* STLS accepted, handshake under way */
	POP3_AUTHENTICATED, /* TRANSACTION state: the maildrop is ours, read-only */
	POP3_BROKEN,        /* the stream is unusable: only close */
};

static const char *const state_names[] = {"connecting", "greeted", "tls", "authenticated",
                                          "broken"};

struct pop3_session {
	mailstream_low *low;
	struct imap_transport_fault fault; /* the transport's first failure */
	char peer[300];                    /* "host:port" for error texts */
	enum pop3_state state;
	char caps[2048]; /* CAPA lines, each "\n"-terminated */
	char rbuf[16384];
	size_t rpos, rlen;
};

static void pop3_set_state(struct pop3_session *s, enum pop3_state state)
{
	if (s->state == state)
		return;
	log_debug("pop3 %s: %s -> %s", s->peer, state_names[s->state], state_names[state]);
	s->state = state;
}

/* The stream failed (transport fault, or our own reason): the session is
 * broken.  Returns the code to give the caller. */
static int pop3_lost(struct pop3_session *s, const char *doing, char *err, size_t errlen)
{
	int code = s->fault.code != 0 ? s->fault.code : IMAP_ENET;

	pop3_set_state(s, POP3_BROKEN);
	if (s->fault.code != 0)
		snprintf(err, errlen, "%s: %s", doing, s->fault.why);
	else
		snprintf(err, errlen, "%s: connection to %s closed", doing, s->peer);
	if (s->low != NULL)
		imap_transport_shut(s->low);
	return code;
}

int pop3_bad(struct pop3_session *s, int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	snprintf(err, errlen, "%s ", s->peer);
	n = strlen(err);
	va_start(ap, fmt);
	vsnprintf(err + n, errlen > n ? errlen - n : 0, fmt, ap);
	va_end(ap);
	pop3_set_state(s, POP3_BROKEN);
	if (s->low != NULL)
		imap_transport_shut(s->low);
	return code;
}

/* Refills the read buffer: 0, or the stream's loss. */
static int pop3_fill(struct pop3_session *s, const char *doing, char *err, size_t errlen)
{
	ssize_t n;

	if (s->state == POP3_BROKEN)
		return pop3_lost(s, doing, err, errlen);
	n = mailstream_low_read(s->low, s->rbuf, sizeof(s->rbuf));
	if (n <= 0)
		return pop3_lost(s, doing, err, errlen);
	s->rpos = 0;
	s->rlen = (size_t)n;
	return 0;
}

/* Writes len bytes: 0, or the stream's loss. */
static int pop3_write(struct pop3_session *s, const char *buf, size_t len, const char *doing,
                      char *err, size_t errlen)
{
	while (len > 0) {
		ssize_t n;
		if (s->state == POP3_BROKEN)
			return pop3_lost(s, doing, err, errlen);
		n = mailstream_low_write(s->low, buf, len);
		if (n <= 0)
			return pop3_lost(s, doing, err, errlen);
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int pop3_read_line(struct pop3_session *s, char *line, size_t max, const char *doing, char *err,
                   size_t errlen)
{
	size_t len = 0;

	for (;;) {
		if (s->rpos == s->rlen) {
			int ret = pop3_fill(s, doing, err, errlen);
			if (ret < 0)
				return ret;
		}
		char c = s->rbuf[s->rpos++];
		if (c == '\n')
			break;
		if (len + 1 >= max)
			return pop3_bad(s, IMAP_ELIMIT, err, errlen,
			                "sent a line longer than %zu bytes (%s)", max, doing);
		line[len++] = c;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	return 0;
}

void pop3_shown(const char *line, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; line[i] != '\0' && i + 1 < outlen && i < 300; i++)
		out[i] = (unsigned char)line[i] < 0x20 || line[i] == 0x7f ? '?' : line[i];
	out[i] = '\0';
}

/* Reads a status line: 0 for +OK (the line in line), IMAP_ENO for -ERR with
 * "<what>: -ERR ..." in err, IMAP_EPROTO for anything else. */
static int pop3_status(struct pop3_session *s, const char *what, char *line, size_t max, char *err,
                       size_t errlen)
{
	char text[320];
	int ret = pop3_read_line(s, line, max, what, err, errlen);

	if (ret < 0)
		return ret;
	if (strncmp(line, "+OK", 3) == 0 && (line[3] == '\0' || line[3] == ' '))
		return 0;
	pop3_shown(line, text, sizeof(text));
	if (strncmp(line, "-ERR", 4) == 0) {
		snprintf(err, errlen, "%s: %s", what, text);
		return IMAP_ENO;
	}
	return pop3_bad(s, IMAP_EPROTO, err, errlen, "answered %s with \"%s\", not +OK or -ERR",
	                what, text);
}

int pop3_command(struct pop3_session *s, const char *cmd, const char *what, char *line, size_t max,
                 char *err, size_t errlen)
{
	int ret = pop3_write(s, cmd, strlen(cmd), what, err, errlen);

	return ret < 0 ? ret : pop3_status(s, what, line, max, err, errlen);
}

/* Where the bytes of a multi-line answer go: memory (buf) or a file. */
struct pop3_sink {
	struct imap_buf buf;
	int fd;
	uint64_t bytes, max;
};

static int sink_put(struct pop3_session *s, struct pop3_sink *k, const char *p, size_t n,
                    const char *doing, char *err, size_t errlen)
{
	if (n == 0)
		return 0;
	if (k->bytes + n > k->max)
		return pop3_bad(s, IMAP_ELIMIT, err, errlen,
		                "sent more than %" PRIu64 " bytes for %s (the size it listed"
		                " and a margin)",
		                k->max, doing);
	k->bytes += n;
	if (k->fd < 0) {
		if (imap_buf_append(&k->buf, p, n) < 0) {
			snprintf(err, errlen, "%s: out of memory", doing);
			return -1;
		}
		return 0;
	}
	while (n > 0) {
		ssize_t w = write(k->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "%s: cannot write the spool file: %s", doing,
			         strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The body of a multi-line answer (after its +OK line) into k, up to the
 * terminating "." line, with the byte-stuffing dot of each line removed
 * (RFC 1939 3).  Line ends are kept as sent. */
static int pop3_read_multi(struct pop3_session *s, struct pop3_sink *k, const char *doing,
                           char *err, size_t errlen)
{
	char out[8192];
	size_t o = 0;
	bool bol = true, dot = false, dot_cr = false;
	int ret;

	for (;;) {
		if (s->rpos == s->rlen) {
			ret = sink_put(s, k, out, o, doing, err, errlen);
			o = 0;
			if (ret == 0)
				ret = pop3_fill(s, doing, err, errlen);
			if (ret < 0)
				return ret;
		}
		char c = s->rbuf[s->rpos++];
		if (bol && c == '.') {
			dot = true;
			bol = false;
			continue;
		}
		if (dot) {
			if (!dot_cr && c == '\r') {
				dot_cr = true;
				continue;
			}
			if (c == '\n')
				break; /* ".CRLF" (or ".LF"): the end */
			/* Not the end: the dot was stuffing; keep a CR seen after it. */
			if (dot_cr)
				out[o++] = '\r';
			dot = dot_cr = false;
		}
		out[o++] = c;
		bol = c == '\n';
		if (o + 2 >= sizeof(out)) {
			ret = sink_put(s, k, out, o, doing, err, errlen);
			o = 0;
			if (ret < 0)
				return ret;
		}
	}
	return sink_put(s, k, out, o, doing, err, errlen);
}

/* Reads the CAPA list (RFC 2449 5); a server without CAPA has none.  A -ERR
 * leaves the list as it was (asked again after the login, RFC 2449 5: the
 * capabilities may change then). */
static int pop3_capa(struct pop3_session *s, char *err, size_t errlen)
{
	char line[POP3_MAX_LINE];
	size_t len = 0;
	int ret = pop3_command(s, "CAPA\r\n", "CAPA", line, sizeof(line), err, errlen);

	if (ret == IMAP_ENO)
		return 0;
	s->caps[0] = '\0';
	for (int n = 0; ret == 0; n++) {
		ret = pop3_read_line(s, line, sizeof(line), "CAPA", err, errlen);
		if (ret < 0)
			return ret;
		if (strcmp(line, ".") == 0)
			return 0;
		if (n > 200)
			return pop3_bad(s, IMAP_ELIMIT, err, errlen,
			                "sent more than 200 CAPA lines");
		if (len + strlen(line) + 2 < sizeof(s->caps))
			len += (size_t)snprintf(s->caps + len, sizeof(s->caps) - len, "%s\n", line);
	}
	return ret;
}

bool pop3_session_has_cap(const struct pop3_session *session, const char *cap)
{
	size_t n = strlen(cap);

	for (const char *p = session->caps; *p != '\0';) {
		const char *end = strchr(p, '\n');
		if (strncasecmp(p, cap, n) == 0 && (p[n] == '\n' || p[n] == ' '))
			return true;
		p = end != NULL ? end + 1 : p + strlen(p);
	}
	return false;
}

/* Whether the SASL capability lists mech. */
static bool has_sasl(const struct pop3_session *s, const char *mech)
{
	for (const char *p = s->caps; *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > 5 && strncasecmp(p, "SASL ", 5) == 0) {
			char words[512];
			snprintf(words, sizeof(words), " %.*s ", (int)(len - 5), p + 5);
			char want[64];
			snprintf(want, sizeof(want), " %s ", mech);
			for (char *w = words; *w != '\0'; w++)
				*w = (char)toupper((unsigned char)*w);
			if (strstr(words, want) != NULL)
				return true;
		}
		p = end != NULL ? end + 1 : p + len;
	}
	return false;
}

/* A -ERR to the login: the credentials, unless the server says the
 * maildrop is busy or it failed itself (RFC 2449 8.1.2, RFC 3206 4). */
static int login_refused(const char *err)
{
	return strstr(err, "[IN-USE]") != NULL || strstr(err, "[SYS/TEMP]") != NULL ? IMAP_ENET
	                                                                            : IMAP_EAUTH;
}

static int pop3_login(struct pop3_session *s, const struct imap_endpoint *ep, char *err,
                      size_t errlen)
{
	char line[POP3_MAX_LINE];
	const char *user = ep->user != NULL ? ep->user : "";
	const char *secret = ep->secret != NULL ? ep->secret : "";
	struct imap_buf cmd;
	int ret;

	if ((ret = imap_arg_check("login", false, user, strlen(user), err, errlen)) < 0 ||
	    (ret = imap_arg_check("password", true, secret, strlen(secret), err, errlen)) < 0 ||
	    (ep->auth_user != NULL &&
	     (ret = imap_arg_check("master user", false, ep->auth_user, strlen(ep->auth_user), err,
	                           errlen)) < 0))
		return ret;
	imap_buf_init(&cmd, 4 * IMAP_ARG_MAX);
	if (ep->auth == IMAP_AUTH_PLAIN && has_sasl(s, "PLAIN")) {
		/* authzid NUL authcid NUL password, base64 (RFC 4616, 5034). */
		const char *authc = ep->auth_user != NULL ? ep->auth_user : user;
		const char *authz = ep->auth_user != NULL ? user : "";
		size_t zl = strlen(authz), cl = strlen(authc), pl = strlen(secret);
		size_t rawlen = zl + cl + pl + 2;
		unsigned char *raw = malloc(rawlen);
		unsigned char *b64 = malloc(4 * (rawlen / 3 + 1) + 1);
		if (raw == NULL || b64 == NULL) {
			free(raw);
			free(b64);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(raw, authz, zl);
		raw[zl] = '\0';
		memcpy(raw + zl + 1, authc, cl);
		raw[zl + 1 + cl] = '\0';
		memcpy(raw + zl + cl + 2, secret, pl);
		EVP_EncodeBlock(b64, raw, (int)rawlen);
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
		ret = imap_buf_printf(&cmd, "AUTH PLAIN %s\r\n", (const char *)b64);
		OPENSSL_cleanse(b64, strlen((const char *)b64));
		free(b64);
		if (ret == 0)
			ret = pop3_command(s, cmd.data, "AUTH PLAIN", line, sizeof(line), err,
			                   errlen);
		else
			snprintf(err, errlen, "AUTH PLAIN: the credentials are too long");
	} else if (ep->auth_user != NULL) {
		snprintf(err, errlen,
		         "%s offers no SASL PLAIN: a master user cannot log in with USER/PASS",
		         s->peer);
		ret = IMAP_EAUTH;
	} else {
		if (imap_buf_printf(&cmd, "USER %s\r\n", user) < 0) {
			snprintf(err, errlen, "USER: the login is too long");
			ret = IMAP_EARG;
		} else {
			ret = pop3_command(s, cmd.data, "USER", line, sizeof(line), err, errlen);
		}
		imap_buf_free(&cmd, false);
		imap_buf_init(&cmd, 4 * IMAP_ARG_MAX);
		if (ret == 0 && imap_buf_printf(&cmd, "PASS %s\r\n", secret) < 0) {
			snprintf(err, errlen, "PASS: the password is too long");
			ret = IMAP_EARG;
		} else if (ret == 0) {
			ret = pop3_command(s, cmd.data, "PASS", line, sizeof(line), err, errlen);
		}
	}
	imap_buf_free(&cmd, true);
	if (ret == IMAP_ENO)
		ret = login_refused(err);
	return ret;
}

int pop3_session_open(const struct imap_endpoint *ep, struct pop3_session **session_r, char *err,
                      size_t errlen)
{
	struct pop3_session *s = calloc(1, sizeof(*s));
	char line[POP3_MAX_LINE];
	int ret;

	*session_r = NULL;
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(s->peer, sizeof(s->peer), "%s:%d", ep->host, ep->port);
	s->state = POP3_CONNECTING;
	/* The transport frames what it reads as IMAP: a message line ending in
	 * "{N}" would pass for a literal announcement.  Its line and literal
	 * bounds are turned off here; this file bounds every answer itself. */
	struct imap_endpoint bare = *ep;
	bare.max_line = SIZE_MAX / 2;
	bare.max_literal = UINT64_MAX / 2;
	ret = imap_transport_connect(&bare, &s->fault, &s->low, err, errlen);
	if (ret < 0)
		goto fail;
	ret = pop3_status(s, "greeting", line, sizeof(line), err, errlen);
	if (ret == IMAP_ENO)
		ret = IMAP_ENET; /* a server refusing sessions now: try again later */
	if (ret < 0)
		goto fail;
	pop3_set_state(s, POP3_GREETED);
	if (ep->tls == IMAP_TLS_STARTTLS) {
		ret = pop3_command(s, "STLS\r\n", "STLS", line, sizeof(line), err, errlen);
		if (ret == IMAP_ENO)
			ret = -1; /* never on in plain text when TLS was asked for */
		if (ret < 0)
			goto fail;
		pop3_set_state(s, POP3_TLS);
		/* Nothing the server sent before the handshake may be read after
		 * it (RFC 2595 4: a man in the middle could have added it). */
		if (s->rpos != s->rlen) {
			ret = pop3_bad(s, IMAP_EPROTO, err, errlen,
			               "sent bytes after its STLS answer, before TLS");
			goto fail;
		}
		ret = imap_transport_start_tls(s->low, ep, err, errlen);
		if (ret < 0)
			goto fail;
		pop3_set_state(s, POP3_GREETED);
	}
	s->caps[0] = '\0'; /* what was said before TLS is not to be trusted */
	ret = pop3_capa(s, err, errlen);
	if (ret == 0)
		ret = pop3_login(s, ep, err, errlen);
	if (ret == 0)
		ret = pop3_capa(s, err, errlen);
	if (ret < 0)
		goto fail;
	pop3_set_state(s, POP3_AUTHENTICATED);
	*session_r = s;
	return 0;
fail:
	pop3_session_close(&s);
	return ret;
}

void pop3_session_close(struct pop3_session **session)
{
	struct pop3_session *s = *session;

	if (s == NULL)
		return;
	/* No QUIT: see pop3.h. */
	if (s->low != NULL) {
		mailstream_low_close(s->low);
		mailstream_low_free(s->low);
	}
	free(s);
	*session = NULL;
}

static uint64_t size_bound(uint32_t size)
{
	uint64_t margin = size / 100;

	return (uint64_t)size + (margin > 65536 ? margin : 65536);
}

static int pop3_fetch(struct pop3_session *s, const char *verb, uint32_t msgno, uint32_t size,
                      int fd, char **body_r, size_t *len_r, char *err, size_t errlen)
{
	struct pop3_sink k = {.fd = fd, .max = size_bound(size)};
	char cmd[64], what[64], line[POP3_MAX_LINE];
	int ret;

	if (body_r != NULL)
		*body_r = NULL;
	*len_r = 0;
	if (strcmp(verb, "TOP") == 0) {
		snprintf(cmd, sizeof(cmd), "TOP %" PRIu32 " 0\r\n", msgno);
	} else if (pop3_session_has_cap(s, "TOP")) {
		/* The whole message with TOP and every line of its body: servers
		 * mark what RETR sent as seen (Dovecot does at disconnect, even
		 * without QUIT), never what TOP sent (fetchmail's "keep" does
		 * the same). */
		verb = "TOP";
		snprintf(cmd, sizeof(cmd), "TOP %" PRIu32 " %" PRIu32 "\r\n", msgno,
		         (uint32_t)POP3_TOP_ALL);
	} else {
		snprintf(cmd, sizeof(cmd), "RETR %" PRIu32 "\r\n", msgno);
	}
	snprintf(what, sizeof(what), "%s %" PRIu32, verb, msgno);
	imap_buf_init(&k.buf, (size_t)k.max + 1);
	ret = pop3_command(s, cmd, what, line, sizeof(line), err, errlen);
	if (ret == 0)
		ret = pop3_read_multi(s, &k, what, err, errlen);
	if (ret < 0) {
		imap_buf_free(&k.buf, false);
		return ret;
	}
	*len_r = (size_t)k.bytes;
	if (fd < 0) {
		if (k.buf.data == NULL && imap_buf_append(&k.buf, "", 0) < 0) {
			snprintf(err, errlen, "%s: out of memory", what);
			return -1;
		}
		*body_r = k.buf.data;
	}
	return 0;
}

int pop3_retr(struct pop3_session *session, uint32_t msgno, uint32_t size, int fd, char **body_r,
              size_t *len_r, char *err, size_t errlen)
{
	return pop3_fetch(session, "RETR", msgno, size, fd, body_r, len_r, err, errlen);
}

int pop3_top(struct pop3_session *session, uint32_t msgno, uint32_t size, char **head_r,
             size_t *len_r, char *err, size_t errlen)
{
	return pop3_fetch(session, "TOP", msgno, size, -1, head_r, len_r, err, errlen);
}
