/* The byte stream under libetpan: a mailstream low driver over a non-blocking
 * socket, plain or TLS (OpenSSL), that never waits without a bound.
 *
 * Why our own: Debian's libetpan 1.9.4 only takes a read of -1 as an error (an
 * end of stream inside a literal makes its parser spin on the dead socket),
 * its plain socket reads ignore SO_RCVTIMEO, and its parser allocates a
 * literal's announced size before reading it.  So here:
 *  - every read, write, connect and TLS handshake waits with poll() in slices
 *    of at most 250 ms; a wait with no progress for timeout_s fails ("no
 *    answer from HOST:PORT in N s", "HOST:PORT took no data for N s"), and
 *    so does a server that moves fewer than 1 KiB while we waited a whole
 *    timeout_s: for replies to one command ("HOST:PORT sent only N bytes in
 *    T s": a drip-feeding server) or for our bytes ("took only");
 *  - end of stream, a reset or any error is returned as -1, never 0;
 *  - the cancel flags of the endpoint end any wait within 250 ms;
 *  - the bytes from the server are framed as IMAP (framing.h: lines, and literals
 *    announced by "{N}", "{N+}" or "~{N}" at a line's end): a line longer than
 *    max_line, or a literal larger than max_literal, fails the read before
 *    those bytes reach libetpan, so it never allocates for them;
 *  - every byte moved stamps last_io_ms.
 * A failure is sticky (later reads and writes fail at once) and its reason is
 * kept in the imap_transport_fault the session owns, for the error texts.
 *
 * The framing follows the server's syntax without parsing it: a resp-text that
 * happens to end in "{N}" is taken for a literal announcement, as libetpan's
 * line reader would not.  Such a server only gets its bounds applied to the
 * wrong bytes; it cannot get past them. */
#ifndef MAILSHIFT_IMAP_TRANSPORT_H
#define MAILSHIFT_IMAP_TRANSPORT_H

#include "imap.h"

#include <libetpan/libetpan.h>

#define IMAP_DEFAULT_TIMEOUT_S 60
#define IMAP_DEFAULT_MAX_LINE ((size_t)1 << 20)
#define IMAP_DEFAULT_MAX_LITERAL ((uint64_t)64 << 20)

/* Why the stream failed.  Owned by the session; the transport writes it once,
 * at its first failure, and it outlives the stream. */
struct imap_transport_fault {
	int code;      /* 0: no failure; IMAP_ENET or IMAP_ELIMIT */
	char why[384]; /* "no answer from host:993 in 60 s", ... */
};

/* Resolves and connects to ep->host:ep->port (non-blocking, bounded by
 * ep->timeout_s and the cancel flags), and for IMAP_TLS_IMPLICIT runs the TLS
 * handshake.  On success *low_r is a low driver owning the socket; fault must
 * stay valid as long as it lives.  Returns IMAP_ENET (with err) when the
 * server cannot be reached, does not answer or closes, -1 for a refused
 * certificate, a TLS mismatch or a local failure (memory, TLS setup). */
int imap_transport_connect(const struct imap_endpoint *ep, struct imap_transport_fault *fault,
                           mailstream_low **low_r, char *err, size_t errlen);

/* Runs the TLS handshake on a plain transport (after STARTTLS), with the same
 * bounds and return values; certificate checks as for implicit TLS (tls.h). */
int imap_transport_start_tls(mailstream_low *low, const struct imap_endpoint *ep, char *err,
                             size_t errlen);

/* Fails the transport from above (the session found the stream unusable):
 * every later read and write returns -1 at once.  The fault is the caller's
 * to set. */
void imap_transport_shut(mailstream_low *low);

/* Asks may_write(context) before every write of the transport, whatever
 * command it belongs to (APPEND, STORE, CREATE ...): when it returns false the
 * write fails, and with it the transport (IMAP_ENET, "write ... refused"). */
void imap_transport_set_write_guard(mailstream_low *low, bool (*may_write)(void *context),
                                    void *context);

/* CLOCK_MONOTONIC in milliseconds. */
long long imap_monotonic_ms(void);

#endif
