/* Session setup: connect, TLS, capabilities, authentication, close.  The
 * neighbours: reply.c (what the server answered, turned into our codes),
 * auth.c (capabilities and the login mechanisms), folders.c (LIST, CREATE,
 * STATUS, SELECT/EXAMINE), raw.c (commands written on the stream directly),
 * pipeline.c (pipelined STATUS and STORE), fetch.c (FETCH and STORE). */
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
	else if (strcmp(s, "oauthbearer") == 0)
		*mech_r = IMAP_AUTH_OAUTHBEARER;
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

bool imap_ok(int r)
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
		imap_caps_code_forget(s);
	}
	ret = imap_capabilities_load(s, err, errlen);
	if (ret < 0)
		goto fail;
	/* COMPRESS is never negotiated: Debian's libetpan breaks the stream with it. */
	s->caps_after_auth = false;
	ret = imap_authenticate(s, ep, err, errlen);
	if (ret < 0)
		goto fail;
	s->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
	imap_session_set_state(s, IMAP_SESSION_AUTHENTICATED);
	/* The login's OK may carry the new list (raw SASL path: parsed there). */
	if (!s->caps_after_auth)
		ret = imap_capabilities_load(s, err, errlen);
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
