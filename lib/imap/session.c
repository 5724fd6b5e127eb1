/* Session setup and folder commands.  libetpan parses the replies; the few
 * commands it cannot send the way we need (SASL PLAIN with an authorization
 * identity and SASL-IR, pipelined appends) are written on its stream directly
 * and read back line by line (see raw.c). */
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

int imap_tls_mode_parse(const char *s, enum imap_tls_mode *mode_r)
{
	if (strcmp(s, "implicit") == 0)
		*mode_r = IMAP_TLS_IMPLICIT;
	else if (strcmp(s, "starttls") == 0)
		*mode_r = IMAP_TLS_STARTTLS;
	else if (strcmp(s, "none") == 0)
		*mode_r = IMAP_TLS_NONE;
	else
		return -1;
	return 0;
}

int imap_auth_mech_parse(const char *s, enum imap_auth_mech *mech_r)
{
	if (strcmp(s, "login") == 0)
		*mech_r = IMAP_AUTH_LOGIN;
	else if (strcmp(s, "plain") == 0)
		*mech_r = IMAP_AUTH_PLAIN;
	else if (strcmp(s, "xoauth2") == 0)
		*mech_r = IMAP_AUTH_XOAUTH2;
	else
		return -1;
	return 0;
}

static const char *const state_names[] = {"connecting", "tls", "greeted", "authenticated",
                                          "closed"};

void imap_session_set_state(struct imap_session *s, enum imap_session_state state)
{
	if (s->state == state)
		return;
	log_debug("imap %s:%d %s -> %s", s->host, s->port, state_names[s->state],
	          state_names[state]);
	s->state = state;
}

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

static bool imap_ok(int r)
{
	return r == MAILIMAP_NO_ERROR || r == MAILIMAP_NO_ERROR_AUTHENTICATED ||
	       r == MAILIMAP_NO_ERROR_NON_AUTHENTICATED;
}

int imap_session_backoff_s(const struct imap_session *s)
{
	return s->backoff_s;
}

int imap_session_arg_check(struct imap_session *s, const char *cmd, const char *what, bool secret,
                           const char *str, char *err, size_t errlen)
{
	char why[384];
	int ret = imap_arg_check(what, secret, str, strlen(str), why, sizeof(why));

	if (ret < 0)
		snprintf(err, errlen, "%s to %s:%d not sent: %s", cmd, s->host, s->port, why);
	return ret;
}

/* Adds one capability word to s->caps (" CAP1 CAP2 ... "). */
static void cap_add(struct imap_session *s, size_t *len, const char *name, bool auth_type)
{
	char word[128];
	int n = snprintf(word, sizeof(word), "%s%s ", auth_type ? "AUTH=" : "", name);

	if (n < 0 || (size_t)n >= sizeof(word) || *len + (size_t)n >= sizeof(s->caps))
		return;
	memcpy(s->caps + *len, word, (size_t)n + 1);
	*len += (size_t)n;
	if (strncasecmp(word, "APPENDLIMIT=", 12) == 0)
		s->appendlimit = strtoull(word + 12, NULL, 10);
}

static void caps_set(struct imap_session *s, const struct mailimap_capability_data *caps)
{
	size_t len = 1;

	s->caps[0] = ' ';
	s->caps[1] = '\0';
	s->appendlimit = 0;
	for (clistiter *it = clist_begin(caps->cap_list); it != NULL; it = clist_next(it)) {
		const struct mailimap_capability *cap = clist_content(it);
		if (cap->cap_type == MAILIMAP_CAPABILITY_AUTH_TYPE)
			cap_add(s, &len, cap->cap_data.cap_auth_type, true);
		else
			cap_add(s, &len, cap->cap_data.cap_name, false);
	}
}

bool imap_session_caps_from_text(struct imap_session *s, const char *text)
{
	const char *p = strcasestr(text, "[CAPABILITY ");
	size_t len = 1;

	if (p == NULL)
		return false;
	s->caps[0] = ' ';
	s->caps[1] = '\0';
	s->appendlimit = 0;
	for (p += 12; *p != '\0' && *p != ']';) {
		size_t w = strcspn(p, " ]");
		char name[128];
		if (w > 0 && w < sizeof(name)) {
			memcpy(name, p, w);
			name[w] = '\0';
			cap_add(s, &len, name, false);
		}
		p += w;
		while (*p == ' ')
			p++;
	}
	return true;
}

/* Drops what libetpan kept of [CAPABILITY] response codes: after the next
 * command, a list there was sent with that command's answer. */
static void caps_code_forget(struct imap_session *s)
{
	if (s->imap->imap_connection_info != NULL &&
	    s->imap->imap_connection_info->imap_capability != NULL) {
		mailimap_capability_data_free(s->imap->imap_connection_info->imap_capability);
		s->imap->imap_connection_info->imap_capability = NULL;
	}
}

/* The server's capabilities: from a [CAPABILITY] response code of the last
 * answer when it sent one (most servers do, in the greeting and the login's
 * OK: a round trip saved per connection), else asked with CAPABILITY. */
static int capabilities_load(struct imap_session *s, char *err, size_t errlen)
{
	struct mailimap_capability_data *caps = NULL;
	int r;

	if (s->imap->imap_connection_info != NULL &&
	    s->imap->imap_connection_info->imap_capability != NULL) {
		caps_set(s, s->imap->imap_connection_info->imap_capability);
		caps_code_forget(s);
		return 0;
	}
	r = mailimap_capability(s->imap, &caps);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "CAPABILITY", err, errlen);
	caps_set(s, caps);
	mailimap_capability_data_free(caps);
	caps_code_forget(s);
	return 0;
}

bool imap_session_has_cap(const struct imap_session *s, const char *cap)
{
	char word[128];
	int n = snprintf(word, sizeof(word), " %s ", cap);

	if (n < 0 || (size_t)n >= sizeof(word))
		return false;
	return strcasestr(s->caps, word) != NULL;
}

void imap_session_set_write_guard(struct imap_session *s, bool (*may_write)(void *context),
                                  void *context)
{
	/* Every write, libetpan's own commands (UID STORE, CREATE) included. */
	if (s->imap != NULL && s->imap->imap_stream != NULL)
		imap_transport_set_write_guard(mailstream_get_low(s->imap->imap_stream), may_write,
		                               context);
}

uint64_t imap_session_appendlimit(const struct imap_session *s)
{
	return s->appendlimit;
}

/* Sends a SASL initial response (base64 of raw) and wipes the encoding. */
static int auth_sasl(struct imap_session *s, const char *mech, const unsigned char *raw,
                     size_t rawlen, char *err, size_t errlen)
{
	size_t b64len = 4 * ((rawlen + 2) / 3) + 1;
	char *b64 = malloc(b64len);
	int ret;

	if (b64 == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
	ret = imap_raw_authenticate(s, mech, b64, imap_session_has_cap(s, "SASL-IR"), err, errlen);
	OPENSSL_cleanse(b64, b64len);
	free(b64);
	return ret;
}

/* SASL PLAIN (RFC 4616) with an optional authorization identity, sent with
 * SASL-IR (RFC 4959) when offered, else after the continuation. */
static int auth_plain(struct imap_session *s, const struct imap_endpoint *ep, char *err,
                      size_t errlen)
{
	const char *authz = ep->auth_user != NULL ? ep->user : "";
	const char *authc = ep->auth_user != NULL ? ep->auth_user : ep->user;
	size_t lz = strlen(authz), lc = strlen(authc), lp = strlen(ep->secret);
	size_t rawlen = lz + 1 + lc + 1 + lp;
	unsigned char *raw;
	int ret;

	/* NUL separates the fields of PLAIN (RFC 4616); CR and LF are refused
	 * as everywhere, though base64 would carry them. */
	if ((ret = imap_session_arg_check(s, "AUTHENTICATE PLAIN", "login", false, authz, err,
	                                  errlen)) < 0 ||
	    (ret = imap_session_arg_check(s, "AUTHENTICATE PLAIN", "login", false, authc, err,
	                                  errlen)) < 0 ||
	    (ret = imap_session_arg_check(s, "AUTHENTICATE PLAIN", "password", true, ep->secret,
	                                  err, errlen)) < 0)
		return ret;
	raw = malloc(rawlen + 1);
	if (raw == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(raw, authz, lz);
	raw[lz] = '\0';
	memcpy(raw + lz + 1, authc, lc);
	raw[lz + 1 + lc] = '\0';
	memcpy(raw + lz + 2 + lc, ep->secret, lp);
	ret = auth_sasl(s, "PLAIN", raw, rawlen, err, errlen);
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return ret;
}

/* XOAUTH2: "user=<user>^Aauth=Bearer <token>^A^A". */
static int auth_xoauth2(struct imap_session *s, const struct imap_endpoint *ep, char *err,
                        size_t errlen)
{
	size_t rawlen = strlen(ep->user) + strlen(ep->secret) + 32;
	char *raw;
	int n, ret;

	/* ^A separates the fields (a user or token holding one would add
	 * fields of its own); CR, LF and NUL are refused everywhere. */
	if (strchr(ep->user, '\001') != NULL || strchr(ep->secret, '\001') != NULL) {
		snprintf(err, errlen,
		         "AUTHENTICATE XOAUTH2 to %s:%d not sent: the %s holds a ^A byte", s->host,
		         s->port, strchr(ep->user, '\001') != NULL ? "login" : "token");
		return IMAP_EARG;
	}
	if ((ret = imap_session_arg_check(s, "AUTHENTICATE XOAUTH2", "login", false, ep->user, err,
	                                  errlen)) < 0 ||
	    (ret = imap_session_arg_check(s, "AUTHENTICATE XOAUTH2", "token", true, ep->secret, err,
	                                  errlen)) < 0)
		return ret;
	raw = malloc(rawlen);
	if (raw == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = snprintf(raw, rawlen, "user=%s\001auth=Bearer %s\001\001", ep->user, ep->secret);
	ret = auth_sasl(s, "XOAUTH2", (const unsigned char *)raw, (size_t)n, err, errlen);
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return ret;
}

static int authenticate(struct imap_session *s, const struct imap_endpoint *ep, char *err,
                        size_t errlen)
{
	int r, ret;

	switch (ep->auth) {
	case IMAP_AUTH_LOGIN:
		if (ep->auth_user != NULL) {
			snprintf(err, errlen, "a master/admin user needs auth=plain");
			return -1;
		}
		if ((ret = imap_session_arg_check(s, "LOGIN", "login", false, ep->user, err,
		                                  errlen)) < 0 ||
		    (ret = imap_session_arg_check(s, "LOGIN", "password", true, ep->secret, err,
		                                  errlen)) < 0)
			return ret;
		r = mailimap_login(s->imap, ep->user, ep->secret);
		/* The password went through libetpan's write buffer. */
		if (s->imap->imap_stream != NULL && s->imap->imap_stream->write_buffer != NULL)
			OPENSSL_cleanse(s->imap->imap_stream->write_buffer,
			                s->imap->imap_stream->buffer_max_size);
		if (r != MAILIMAP_NO_ERROR) {
			/* A throttled LOGIN stays IMAP_ETHROTTLED: the credentials
			 * were not judged. */
			ret = imap_command_failed(s, r, "LOGIN refused", err, errlen);
			return ret == IMAP_ENO ? IMAP_EAUTH : ret;
		}
		return 0;
	case IMAP_AUTH_PLAIN:
		return auth_plain(s, ep, err, errlen);
	case IMAP_AUTH_XOAUTH2:
		return auth_xoauth2(s, ep, err, errlen);
	}
	snprintf(err, errlen, "unknown authentication mechanism %d", (int)ep->auth);
	return -1;
}

int imap_session_open(const struct imap_endpoint *ep, struct imap_session **session_r, char *err,
                      size_t errlen)
{
	return imap_session_open_backoff(ep, session_r, NULL, err, errlen);
}

int imap_session_open_backoff(const struct imap_endpoint *ep, struct imap_session **session_r,
                              int *backoff_s_r, char *err, size_t errlen)
{
	struct imap_session *s;
	mailstream_low *low = NULL;
	mailstream *stream = NULL;
	int r, ret;

	if (backoff_s_r != NULL)
		*backoff_s_r = 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(s->host, sizeof(s->host), "%s", ep->host);
	s->port = ep->port;
	s->state = IMAP_SESSION_CONNECTING;
	/* Connect and, for implicit TLS, handshake: all bounded (transport.h). */
	ret = imap_transport_connect(ep, &s->fault, &low, err, errlen);
	if (ret < 0)
		goto fail;
	if (ep->tls == IMAP_TLS_IMPLICIT)
		imap_session_set_state(s, IMAP_SESSION_TLS);
	stream = mailstream_new(low, 65536);
	if (stream == NULL) {
		mailstream_low_close(low);
		mailstream_low_free(low);
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto fail;
	}
	s->imap = mailimap_new(0, NULL);
	if (s->imap == NULL) {
		mailstream_close(stream);
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto fail;
	}
	/* Only for libetpan's own waits, if any: ours are in the transport. */
	mailimap_set_timeout(s->imap, ep->timeout_s > 0 ? ep->timeout_s : IMAP_DEFAULT_TIMEOUT_S);
	/* mailimap_connect takes the stream, also on failure. */
	r = mailimap_connect(s->imap, stream);
	stream = NULL;
	if (!imap_ok(r)) {
		/* A BYE greeting: busy (IMAP_ETHROTTLED) or refusing us. */
		ret = imap_command_failed(s, r, "greeting", err, errlen);
		if (ret != IMAP_ETHROTTLED && ret != IMAP_ELIMIT && ret != IMAP_EPROTO)
			ret = IMAP_ENET;
		goto fail;
	}
	imap_session_set_state(s, IMAP_SESSION_GREETED);
	if (ep->tls == IMAP_TLS_STARTTLS) {
		r = mailimap_starttls(s->imap);
		if (r != MAILIMAP_NO_ERROR) {
			ret = imap_command_failed(s, r, "STARTTLS", err, errlen);
			if (ret == IMAP_ENO)
				ret = -1;
			goto fail;
		}
		imap_session_set_state(s, IMAP_SESSION_TLS);
		ret = imap_transport_start_tls(mailstream_get_low(s->imap->imap_stream), ep, err,
		                               errlen);
		if (ret < 0) {
			s->broken = true;
			goto fail;
		}
		imap_session_set_state(s, IMAP_SESSION_GREETED);
		/* What was said before TLS is not to be trusted (RFC 3501 6.2.1). */
		caps_code_forget(s);
	}
	ret = capabilities_load(s, err, errlen);
	if (ret < 0)
		goto fail;
	/* COMPRESS is never negotiated: Debian's libetpan breaks the stream with it. */
	s->caps_after_auth = false;
	ret = authenticate(s, ep, err, errlen);
	if (ret < 0)
		goto fail;
	s->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
	imap_session_set_state(s, IMAP_SESSION_AUTHENTICATED);
	/* The login's OK may carry the new list (raw SASL path: parsed there). */
	if (!s->caps_after_auth)
		ret = capabilities_load(s, err, errlen);
	if (ret < 0)
		goto fail;
	*session_r = s;
	return 0;
fail:
	if (ret == IMAP_ETHROTTLED && backoff_s_r != NULL)
		*backoff_s_r = s->backoff_s;
	imap_session_close(&s);
	return ret < 0 ? ret : -1;
}

void imap_session_close(struct imap_session **session)
{
	struct imap_session *s = *session;

	if (s == NULL)
		return;
	if (s->imap != NULL) {
		/* LOGOUT is said, its answer not awaited: a round trip saved per
		 * connection, and nothing is left to learn from it. */
		if (!s->broken && s->state == IMAP_SESSION_AUTHENTICATED &&
		    imap_raw_printf(s, "M%u LOGOUT\r\n", ++s->raw_tag) == 0)
			imap_raw_flush(s);
		mailimap_free(s->imap);
	}
	free(s);
	*session = NULL;
}

static unsigned int special_use_flag(const char *attr)
{
	static const struct {
		const char *name;
		unsigned int flag;
	} map[] = {
	    {"Sent", IMAP_FOLDER_SENT},
	    {"Drafts", IMAP_FOLDER_DRAFTS},
	    {"Trash", IMAP_FOLDER_TRASH},
	    {"Junk", IMAP_FOLDER_JUNK},
	    {"Archive", IMAP_FOLDER_ARCHIVE},
	    {"All", IMAP_FOLDER_ALL},
	    {"Flagged", IMAP_FOLDER_FLAGGED},
	    {"Noselect", IMAP_FOLDER_NOSELECT},
	    {"NonExistent", IMAP_FOLDER_NOSELECT},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(attr, map[i].name) == 0)
			return map[i].flag;
	return 0;
}

void imap_folders_free(struct imap_folder **folders, size_t count)
{
	if (*folders == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*folders)[i].name);
	free(*folders);
	*folders = NULL;
}

int imap_folders_list(struct imap_session *s, const char *prefix, struct imap_folder **folders_r,
                      size_t *count_r, char *err, size_t errlen)
{
	clist *list = NULL;
	struct imap_folder *folders = NULL;
	struct imap_buf pattern;
	size_t n = 0;
	clistiter *it;
	int r;

	imap_buf_init(&pattern, IMAP_ARG_MAX);
	if (imap_buf_printf(&pattern, "%s*", prefix != NULL ? prefix : "") < 0) {
		imap_buf_free(&pattern, false);
		snprintf(err, errlen, "LIST to %s:%d not sent: the folder prefix is too long",
		         s->host, s->port);
		return IMAP_EARG;
	}
	r = imap_session_arg_check(s, "LIST", "folder prefix", false, pattern.data, err, errlen);
	if (r == 0)
		r = mailimap_list(s->imap, "", pattern.data, &list);
	imap_buf_free(&pattern, false);
	if (r == IMAP_EARG)
		return r;
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "LIST", err, errlen);
	folders = calloc(clist_count(list) + 1, sizeof(*folders));
	if (folders == NULL) {
		mailimap_list_result_free(list);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (it = clist_begin(list); it != NULL; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		struct imap_folder *f = &folders[n];

		f->name = strdup(mb->mb_name);
		if (f->name == NULL)
			continue;
		f->delimiter = mb->mb_delimiter;
		if (mb->mb_flag != NULL) {
			if (mb->mb_flag->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
			    mb->mb_flag->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
				f->flags |= IMAP_FOLDER_NOSELECT;
			for (clistiter *o = clist_begin(mb->mb_flag->mbf_oflags); o != NULL;
			     o = clist_next(o)) {
				struct mailimap_mbx_list_oflag *of = clist_content(o);
				if (of->of_type == MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT)
					f->flags |= special_use_flag(of->of_flag_ext);
			}
		}
		n++;
	}
	mailimap_list_result_free(list);
	*folders_r = folders;
	*count_r = n;
	return 0;
}

int imap_folder_create(struct imap_session *s, const char *name, char *err, size_t errlen)
{
	int r, ret;

	ret = imap_session_arg_check(s, "CREATE", "folder name", false, name, err, errlen);
	if (ret < 0)
		return ret;
	r = mailimap_create(s->imap, name);
	if (r != MAILIMAP_NO_ERROR) {
		const char *text = s->imap->imap_response;

		ret = imap_command_failed(s, r, "CREATE", err, errlen);
		/* RFC 5530 ALREADYEXISTS, or Dovecot's wording without the code. */
		if (ret != IMAP_ENO || text == NULL || strcasestr(text, "exists") == NULL)
			return ret;
	}
	r = mailimap_subscribe(s->imap, name);
	if (r != MAILIMAP_NO_ERROR) {
		/* Subscribing is best effort; a throttled one is retried with the
		 * CREATE (which accepts an existing folder). */
		ret = imap_command_failed(s, r, "SUBSCRIBE", err, errlen);
		if (ret == IMAP_ENET || ret == IMAP_ETHROTTLED)
			return ret;
	}
	return 0;
}

/* What the copy relies on (RFC 3501 2.3.1.1): a UIDVALIDITY that is not 0
 * and a UIDNEXT.  A server without them cannot be resumed from a checkpoint. */
static int status_valid(struct imap_session *s, const char *cmd, const char *name,
                        const struct imap_status *st, bool have_validity, bool have_next, char *err,
                        size_t errlen)
{
	char shown[200];
	size_t n = 0;

	if (have_validity && have_next && st->uidvalidity != 0)
		return 0;
	for (const char *p = name; *p != '\0' && n + 1 < sizeof(shown); p++)
		shown[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
	shown[n] = '\0';
	snprintf(err, errlen, "%s \"%s\": %s:%d %s", cmd, shown, s->host, s->port,
	         !have_validity ? "answered without UIDVALIDITY"
	         : !have_next   ? "answered without UIDNEXT"
	                        : "answered UIDVALIDITY 0, which RFC 3501 does not allow");
	return IMAP_EPROTO;
}

int imap_folder_status(struct imap_session *s, const char *name, struct imap_status *st_r,
                       char *err, size_t errlen)
{
	struct mailimap_status_att_list *atts = mailimap_status_att_list_new_empty();
	struct mailimap_mailbox_data_status *status = NULL;
	bool condstore = imap_session_has_cap(s, "CONDSTORE");
	bool have_validity = false, have_next = false;
	int r;

	r = imap_session_arg_check(s, "STATUS", "folder name", false, name, err, errlen);
	if (r < 0) {
		mailimap_status_att_list_free(atts);
		return r;
	}
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDVALIDITY);
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDNEXT);
	mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_MESSAGES);
	if (condstore)
		mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_HIGHESTMODSEQ);
	r = mailimap_status(s->imap, name, atts, &status);
	mailimap_status_att_list_free(atts);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "STATUS", err, errlen);
	if (status == NULL) {
		snprintf(err, errlen, "STATUS: %s:%d answered OK without the STATUS data", s->host,
		         s->port);
		return IMAP_EPROTO;
	}
	memset(st_r, 0, sizeof(*st_r));
	for (clistiter *it = clist_begin(status->st_info_list); it != NULL; it = clist_next(it)) {
		struct mailimap_status_info *info = clist_content(it);
		switch (info->st_att) {
		case MAILIMAP_STATUS_ATT_UIDVALIDITY:
			st_r->uidvalidity = info->st_value;
			have_validity = true;
			break;
		case MAILIMAP_STATUS_ATT_UIDNEXT:
			st_r->uidnext = info->st_value;
			have_next = true;
			break;
		case MAILIMAP_STATUS_ATT_MESSAGES:
			st_r->messages = info->st_value;
			break;
		default:
			/* libetpan reports HIGHESTMODSEQ (RFC 7162 3.1.2) as
			 * condstore extension data, whatever st_att says. */
			if (info->st_ext_data != NULL &&
			    info->st_ext_data->ext_extension == &mailimap_extension_condstore &&
			    info->st_ext_data->ext_type == MAILIMAP_CONDSTORE_TYPE_STATUS_INFO) {
				struct mailimap_condstore_status_info *cs =
				    info->st_ext_data->ext_data;
				st_r->highestmodseq = cs->cs_highestmodseq_value;
			}
			break;
		}
	}
	mailimap_mailbox_data_status_free(status);
	return status_valid(s, "STATUS", name, st_r, have_validity, have_next, err, errlen);
}

int imap_folder_open(struct imap_session *s, const char *name, bool read_only,
                     struct imap_status *st_r, char *err, size_t errlen)
{
	const char *cmd = read_only ? "EXAMINE" : "SELECT";
	struct mailimap_selection_info *sel;
	uint64_t modseq = 0;
	int r;

	s->selected[0] = '\0';
	r = imap_session_arg_check(s, cmd, "folder name", false, name, err, errlen);
	if (r < 0)
		return r;
	if (imap_session_has_cap(s, "CONDSTORE"))
		r = read_only ? mailimap_examine_condstore(s->imap, name, &modseq)
		              : mailimap_select_condstore(s->imap, name, &modseq);
	else
		r = read_only ? mailimap_examine(s->imap, name) : mailimap_select(s->imap, name);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, cmd, err, errlen);
	memset(st_r, 0, sizeof(*st_r));
	sel = s->imap->imap_selection_info;
	if (sel == NULL) {
		snprintf(err, errlen, "%s: %s:%d answered OK without the folder's data", cmd,
		         s->host, s->port);
		return IMAP_EPROTO;
	}
	st_r->uidvalidity = sel->sel_uidvalidity;
	st_r->uidnext = sel->sel_uidnext;
	st_r->messages = sel->sel_exists;
	st_r->highestmodseq = modseq;
	/* libetpan leaves 0 for a response code that did not come. */
	r = status_valid(s, cmd, name, st_r, st_r->uidvalidity != 0, st_r->uidnext != 0, err,
	                 errlen);
	if (r < 0)
		return r;
	if (!read_only)
		snprintf(s->selected, sizeof(s->selected), "%s", name);
	return 0;
}

const char *imap_session_selected(const struct imap_session *s)
{
	return s->selected[0] != '\0' ? s->selected : NULL;
}
