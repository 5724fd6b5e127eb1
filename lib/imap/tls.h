/* TLS for the IMAP transport, through OpenSSL.
 *
 * Debian's libetpan links GnuTLS and never verifies certificates, so every TLS
 * connection is made here instead: the peer chain is verified against the CA
 * file (or the system store) and the host name or IP address is checked
 * (RFC 6125), unless verification is explicitly turned off.  The handshake and
 * the I/O run in transport.c, on a non-blocking socket. */
#ifndef MAILSHIFT_IMAP_TLS_H
#define MAILSHIFT_IMAP_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

/* Makes the context and session for a client connection to host on fd (not
 * yet handshaken).  On failure nothing is left allocated and err names the
 * reason; fd is never closed here. */
int imap_tls_client_new(int fd, const char *host, const char *ca_file, bool verify, SSL_CTX **ctx_r,
                        SSL **ssl_r, char *err, size_t errlen);

/* The reason a handshake failed: the refused certificate, else OpenSSL's error. */
void imap_tls_handshake_error(SSL *ssl, const char *host, bool verify, char *err, size_t errlen);

#endif
