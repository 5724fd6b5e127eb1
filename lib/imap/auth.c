/* The server's capabilities (from [CAPABILITY] response codes or the
 * CAPABILITY command) and authentication: LOGIN, SASL PLAIN with an
 * authorization identity, XOAUTH2 and OAUTHBEARER (RFC 7628). */
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
void imap_caps_code_forget(struct imap_session *s)
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
int imap_capabilities_load(struct imap_session *s, char *err, size_t errlen)
{
	struct mailimap_capability_data *caps = NULL;
	int r;

	if (s->imap->imap_connection_info != NULL &&
	    s->imap->imap_connection_info->imap_capability != NULL) {
		caps_set(s, s->imap->imap_connection_info->imap_capability);
		imap_caps_code_forget(s);
		return 0;
	}
	r = mailimap_capability(s->imap, &caps);
	if (r != MAILIMAP_NO_ERROR)
		return imap_command_failed(s, r, "CAPABILITY", err, errlen);
	caps_set(s, caps);
	mailimap_capability_data_free(caps);
	imap_caps_code_forget(s);
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

/* Sends a SASL initial response (base64 of raw) and wipes the encoding;
 * error_reply answers an error challenge (imap_raw_authenticate). */
static int auth_sasl(struct imap_session *s, const char *mech, const unsigned char *raw,
                     size_t rawlen, const char *error_reply, char *err, size_t errlen)
{
	size_t b64len = 4 * ((rawlen + 2) / 3) + 1;
	char *b64 = malloc(b64len);
	int ret;

	if (b64 == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
	ret = imap_raw_authenticate(s, mech, b64, imap_session_has_cap(s, "SASL-IR"), error_reply,
	                            err, errlen);
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
	ret = auth_sasl(s, "PLAIN", raw, rawlen, NULL, err, errlen);
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return ret;
}

/* XOAUTH2: "user=<user>^Aauth=Bearer <token>^A^A"; an error challenge
 * (base64 JSON) is answered with an empty line.  OAUTHBEARER (RFC 7628):
 * "n,a=<user>,^Ahost=<host>^Aport=<port>^Aauth=Bearer <token>^A^A", the
 * user's ',' and '=' escaped as =2C and =3D; an error challenge is
 * answered with ^A (3.2.3). */
static int auth_oauth(struct imap_session *s, const struct imap_endpoint *ep, bool bearer,
                      char *err, size_t errlen)
{
	const char *mech = bearer ? "OAUTHBEARER" : "XOAUTH2";
	char what[48];
	size_t rawlen = 3 * strlen(ep->user) + strlen(ep->secret) + strlen(s->host) + 96, n = 0;
	char *raw;
	int ret;

	snprintf(what, sizeof(what), "AUTHENTICATE %s", mech);
	/* ^A separates the fields (a user or token holding one would add
	 * fields of its own); CR, LF and NUL are refused everywhere. */
	if (strchr(ep->user, '\001') != NULL || strchr(ep->secret, '\001') != NULL) {
		snprintf(err, errlen, "%s to %s:%d not sent: the %s holds a ^A byte", what, s->host,
		         s->port, strchr(ep->user, '\001') != NULL ? "login" : "token");
		return IMAP_EARG;
	}
	if ((ret = imap_session_arg_check(s, what, "login", false, ep->user, err, errlen)) < 0 ||
	    (ret = imap_session_arg_check(s, what, "token", true, ep->secret, err, errlen)) < 0)
		return ret;
	raw = malloc(rawlen);
	if (raw == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!bearer) {
		n = (size_t)snprintf(raw, rawlen, "user=%s\001auth=Bearer %s\001\001", ep->user,
		                     ep->secret);
	} else {
		memcpy(raw, "n,a=", 4);
		n = 4;
		for (const char *c = ep->user; *c != '\0'; c++) {
			if (*c == ',' || *c == '=') {
				memcpy(raw + n, *c == ',' ? "=2C" : "=3D", 3);
				n += 3;
			} else {
				raw[n++] = *c;
			}
		}
		n += (size_t)snprintf(raw + n, rawlen - n,
		                      ",\001host=%s\001port=%d\001auth=Bearer %s\001\001", s->host,
		                      s->port, ep->secret);
	}
	ret = auth_sasl(s, mech, (const unsigned char *)raw, n, bearer ? "AQ==" : "", err, errlen);
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return ret;
}

int imap_authenticate(struct imap_session *s, const struct imap_endpoint *ep, char *err,
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
		return auth_oauth(s, ep, false, err, errlen);
	case IMAP_AUTH_OAUTHBEARER:
		return auth_oauth(s, ep, true, err, errlen);
	}
	snprintf(err, errlen, "unknown authentication mechanism %d", (int)ep->auth);
	return -1;
}
