#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>

static void ssl_error_text(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "no details";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
}

int imap_tls_client_new(int fd, const char *host, const char *ca_file, bool verify, SSL_CTX **ctx_r,
                        SSL **ssl_r, char *err, size_t errlen)
{
	struct in6_addr addr6;
	struct in_addr addr4;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	bool is_ip;

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		ssl_error_text(err, errlen, "TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Non-blocking I/O: SSL_write may write part of a buffer and be called
	 * again with the rest from another address. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (ca_file != NULL && ca_file[0] != '\0') {
			if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
				snprintf(err, errlen, "cannot load CA file %s", ca_file);
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			ssl_error_text(err, errlen, "system CA store");
			goto fail;
		}
	}
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		ssl_error_text(err, errlen, "TLS session");
		goto fail;
	}
	is_ip = inet_pton(AF_INET, host, &addr4) == 1 || inet_pton(AF_INET6, host, &addr6) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (verify) {
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
		          : X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
			snprintf(err, errlen, "TLS: cannot set expected peer name %s", host);
			goto fail;
		}
	}
	*ctx_r = ctx;
	*ssl_r = ssl;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return -1;
}

void imap_tls_handshake_error(SSL *ssl, const char *host, bool verify, char *err, size_t errlen)
{
	long vr = SSL_get_verify_result(ssl);

	if (verify && vr != X509_V_OK)
		snprintf(err, errlen, "TLS: certificate of %s refused: %s", host,
		         X509_verify_cert_error_string(vr));
	else
		ssl_error_text(err, errlen, "TLS handshake failed");
	ERR_clear_error();
}
