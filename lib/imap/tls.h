/* TLS transport for libetpan streams, through OpenSSL.
 *
 * Debian's libetpan links GnuTLS and never verifies certificates, so every TLS
 * connection goes through this mailstream low driver instead: the peer chain is
 * verified against the CA file (or the system store) and the host name or IP
 * address is checked (RFC 6125), unless verification is explicitly turned off. */
#ifndef MAILSHIFT_IMAP_TLS_H
#define MAILSHIFT_IMAP_TLS_H

#include <libetpan/libetpan.h>
#include <stdbool.h>
#include <stddef.h>

/* Runs the TLS handshake on the connected socket fd and returns a stream low
 * layer owning fd (closed when the low layer is closed).  On failure fd is left
 * open for the caller and err names the reason (e.g. the verification error). */
int imap_tls_wrap(int fd, const char *host, const char *ca_file, bool verify,
		  mailstream_low **low_r, char *err, size_t errlen);

#endif
