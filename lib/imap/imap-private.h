/* Session internals shared by the files of lib/imap. */
#ifndef MAILSHIFT_IMAP_PRIVATE_H
#define MAILSHIFT_IMAP_PRIVATE_H

#include "imap.h"
#include "transport.h"

#include <libetpan/libetpan.h>

/* Session states; every change goes through imap_session_set_state. */
enum imap_session_state {
	IMAP_SESSION_CONNECTING,    /* TCP connect under way */
	IMAP_SESSION_TLS,           /* TLS handshake (implicit or after STARTTLS) */
	IMAP_SESSION_GREETED,       /* greeting read, not authenticated */
	IMAP_SESSION_AUTHENTICATED, /* logged in; folder commands allowed */
	IMAP_SESSION_CLOSED,
};

struct imap_session {
	mailimap *imap;
	char host[256];
	int port;
	enum imap_session_state state;
	bool broken;          /* the stream failed: only close is left */
	char caps[4096];      /* " CAP1 CAP2 ... " for word search */
	bool caps_after_auth; /* caps came with the authentication's OK */
	uint64_t appendlimit; /* 0 = none advertised */
	unsigned int raw_tag; /* tags of commands written directly: "M<n>" */
	char selected[1024];  /* folder selected read-write, "" if none */
	int backoff_s;        /* see imap_session_backoff_s */
	char bye[512];        /* the server's BYE line seen on the raw path, "" if none */
	struct imap_transport_fault fault; /* why the stream failed, set by the transport */
};

void imap_session_set_state(struct imap_session *s, enum imap_session_state state);
/* Whether a libetpan return is a success. */
bool imap_ok(int r);
/* auth.c: the capabilities (from the last answer's [CAPABILITY] code when it
 * had one, else CAPABILITY) and the login by ep->auth.  0 or an IMAP_E*. */
int imap_capabilities_load(struct imap_session *s, char *err, size_t errlen);
int imap_authenticate(struct imap_session *s, const struct imap_endpoint *ep, char *err,
                      size_t errlen);
/* Drops what libetpan kept of [CAPABILITY] response codes. */
void imap_caps_code_forget(struct imap_session *s);
/* Turns a failed libetpan call (r is not a MAILIMAP_NO_ERROR*) into
 * IMAP_ETHROTTLED, IMAP_ENET, IMAP_ELIMIT, IMAP_EPROTO or IMAP_ENO, with
 * "what: ..." and the server's own words, or the transport's reason (timeout,
 * end of stream, a bound, cancelled), in err.  A lost stream, an unparsable
 * reply or a BYE marks the session broken; a throttling answer sets
 * s->backoff_s. */
int imap_command_failed(struct imap_session *s, int r, const char *what, char *err, size_t errlen);
/* For a command libetpan reports as done although the server answered NO
 * (a UID FETCH that returned some data): IMAP_ETHROTTLED with err when that
 * answer asks us to slow down, else 0. */
int imap_command_throttled(struct imap_session *s, const char *what, char *err, size_t errlen);

/* Marks the session broken for a reason found above the transport (a reply
 * that could not be parsed, a bound broken across replies): the reason is
 * kept as the stream's fault (the first one wins) and every later command
 * fails at once with it, without touching the server. */
void imap_session_break(struct imap_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* IMAP_EARG (nothing sent) unless str can go out as one argument; see arg.h. */
int imap_session_arg_check(struct imap_session *s, const char *cmd, const char *what, bool secret,
                           const char *str, char *err, size_t errlen);

/* Sets the session's capabilities from a "[CAPABILITY ...]" response code in
 * text; false (nothing changed) when text holds none. */
bool imap_session_caps_from_text(struct imap_session *s, const char *text);

/* The raw path (raw.c): commands written straight onto libetpan's stream and
 * their replies read line by line.  Each returns 0 or IMAP_ENET (session
 * broken); imap_raw_read_line also IMAP_ELIMIT, and IMAP_ETHROTTLED or
 * IMAP_ENET for a BYE (kept in s->bye).  imap_raw_lost turns such a return
 * into the caller's code with "what: <reason>" in err. */
int imap_raw_write(struct imap_session *s, const void *buf, size_t len);
int imap_raw_printf(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int imap_raw_flush(struct imap_session *s);
int imap_raw_read_line(struct imap_session *s, MMAPString *line);
int imap_raw_lost(struct imap_session *s, int ret, const char *what, char *err, size_t errlen);
/* IMAP_EARG (err names the flag) unless every word of flags is a valid flag. */
int imap_flags_check(struct imap_session *s, const char *flags, char *err, size_t errlen);
/* The size N of a literal announced at the end of a line ("{N}", "{N+}"), or
 * -1 when the line does not end in one. */
long imap_literal_at_end(const char *line, size_t len);

/* AUTHENTICATE mech with the initial response b64 (sent with the command
 * when sasl_ir).  A continuation after the response is an error challenge,
 * answered with error_reply (NULL: empty line) so the server sends its NO;
 * the decoded challenge is added to the refusal's message. */
int imap_raw_authenticate(struct imap_session *s, const char *mech, const char *b64, bool sasl_ir,
                          const char *error_reply, char *err, size_t errlen);

/* Parses the UIDs of "[APPENDUID <validity> <uid-set>]" (RFC 4315) in text,
 * in order, into uids (at most max); returns how many, or 0 when the code is
 * absent or malformed.  (raw.c; not static for tests/unit/test_uidset.c) */
size_t appenduid_parse(const char *text, uint32_t *uids, size_t max);
/* The flags of a FETCH FLAGS item, space separated, into buf (buflen > 0),
 * \Recent left out, a flag that does not fit whole left out (never cut);
 * dyn may be NULL.  (fetch.c; not static for
 * tests/unit/test_fetch_flags.c) */
void imap_flags_format(struct mailimap_msg_att_dynamic *dyn, char *buf, size_t buflen);

#endif
