/* POP3 client sessions (RFC 1939, CAPA and response codes RFC 2449, STLS
 * RFC 2595, AUTH PLAIN RFC 5034), read-only: the commands sent are CAPA,
 * STLS, AUTH/USER/PASS, UIDL, LIST, TOP and (without TOP) RETR.  Never DELE, and never
 * QUIT either: QUIT enters the UPDATE state (RFC 1939 6), where servers
 * apply what the session did (Dovecot marks retrieved messages \Seen and
 * moves them out of new/); a connection simply closed leaves the maildrop as
 * it was (RFC 1939 6: "If the session ends for any other reason ... the
 * server does not enter the UPDATE state").
 *
 * The bytes travel over lib/imap's transport (transport.h): every connect,
 * TLS handshake, read and write has the same bounds (timeout_s without
 * progress, a drip-feeding server, the cancel flags), and TLS certificates
 * are verified the same way (tls.h).  On top, each answer has a bound here: a
 * status or listing line POP3_MAX_LINE bytes, a listing POP3_MAX_LISTING
 * lines, a message the size LIST announced plus max(64 KiB, 1 %).
 *
 * Return values are lib/imap's (imap.h), so that a caller handles both
 * protocols alike: IMAP_ENET the connection is lost (err names the host and
 * what happened); IMAP_EAUTH the credentials were refused (the server's
 * words); IMAP_ENO the server answered -ERR to this command (err quotes it:
 * "RETR 3: -ERR ..."), the session still usable; IMAP_ELIMIT an answer broke
 * a bound and IMAP_EPROTO an answer is not POP3 (session broken); IMAP_EARG a
 * credential cannot be sent (nothing sent).  A session is used by one thread
 * at a time.  Secrets never appear in err. */
#ifndef MAILSHIFT_POP3_H
#define MAILSHIFT_POP3_H

#include "imap.h"

#include <stddef.h>
#include <stdint.h>

#define POP3_MAX_LINE 4096
#define POP3_MAX_LISTING 10000000
/* Longest unique-id: RFC 1939 7 allows 70 characters. */
#define POP3_UIDL_MAX 70

struct pop3_session;

/* Connects (TLS per ep->tls: implicit, STLS, none), reads the greeting, asks
 * CAPA and logs in: AUTH PLAIN when ep->auth is IMAP_AUTH_PLAIN and the
 * server lists PLAIN among its SASL mechanisms (with ep->auth_user as the
 * authentication identity, a master user), else USER and PASS.  A -ERR to
 * the login is IMAP_EAUTH, unless its response code says the maildrop is
 * busy or the server failed ([IN-USE], [SYS/TEMP], RFC 2449 8.1, RFC 3206):
 * IMAP_ENET then, to be tried again. */
int pop3_session_open(const struct imap_endpoint *ep, struct pop3_session **session_r, char *err,
                      size_t errlen);
/* Closes the connection without QUIT (see above); NULL is fine. */
void pop3_session_close(struct pop3_session **session);

/* One message of the maildrop. */
struct pop3_entry {
	uint32_t msgno; /* its number in this session (RFC 1939 5) */
	uint32_t size;  /* octets, as LIST says */
	char uidl[POP3_UIDL_MAX + 1];
};

/* UIDL and LIST: every message with its unique-id and size, by message
 * number.  A server without UIDL (-ERR) is IMAP_ENO; a unique-id that is not
 * 1..70 printable characters, or given twice, a message in one list and not
 * the other, are IMAP_EPROTO.  *entries_r: the caller frees it. */
int pop3_list(struct pop3_session *session, struct pop3_entry **entries_r, size_t *count_r,
              char *err, size_t errlen);

/* Body lines asked for with TOP to have them all (RFC 1939 7 leaves the
 * count unbounded; every server reads this much). */
#define POP3_TOP_ALL 2147483647

/* The message msgno: "TOP msgno POP3_TOP_ALL" where the server lists TOP
 * (servers mark a message RETR sent as seen, TOP's never), else RETR.  Its
 * bytes dot-unstuffed (RFC 1939 3), exactly as the server sends them (CRLF
 * line ends; a last line without one gets one: POP3 cannot carry it).  Into memory (*body_r,
 * *len_r, the caller frees *body_r) when fd < 0, else written to fd.  size: what LIST said, the
 * bound is size + max(64 KiB, 1 %) (IMAP_ELIMIT beyond).  A -ERR (message gone, server's fault) is
 * IMAP_ENO with its words ("TOP 3: -ERR
 * ..."). */
int pop3_retr(struct pop3_session *session, uint32_t msgno, uint32_t size, int fd, char **body_r,
              size_t *len_r, char *err, size_t errlen);

/* TOP msgno 0: the message's header (up to and with the blank line), into
 * *head_r (caller frees), at most size + max(64 KiB, 1 %) bytes. */
int pop3_top(struct pop3_session *session, uint32_t msgno, uint32_t size, char **head_r,
             size_t *len_r, char *err, size_t errlen);

/* Whether the server listed the capability (CAPA, RFC 2449), e.g. "TOP". */
bool pop3_session_has_cap(const struct pop3_session *session, const char *cap);

#endif
