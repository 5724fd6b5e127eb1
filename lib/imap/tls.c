#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tls_low {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

static ssize_t tls_read(mailstream_low *low, void *buf, size_t count)
{
	struct tls_low *t = low->data;
	int n = SSL_read(t->ssl, buf, count > INT32_MAX ? INT32_MAX : (int)count);

	if (n > 0)
		return n;
	/* A clean close_notify is end of stream; anything else is an error. */
	return SSL_get_error(t->ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static ssize_t tls_write(mailstream_low *low, const void *buf, size_t count)
{
	struct tls_low *t = low->data;
	int n = SSL_write(t->ssl, buf, count > INT32_MAX ? INT32_MAX : (int)count);

	return n > 0 ? n : -1;
}

static int tls_close(mailstream_low *low)
{
	struct tls_low *t = low->data;

	if (t->fd >= 0) {
		SSL_shutdown(t->ssl);
		close(t->fd);
		t->fd = -1;
	}
	return 0;
}

static int tls_get_fd(mailstream_low *low)
{
	struct tls_low *t = low->data;

	return t->fd;
}

static void tls_free(mailstream_low *low)
{
	struct tls_low *t = low->data;

	tls_close(low);
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	free(t);
	free(low);
}

static void tls_cancel(mailstream_low *low)
{
	(void)low;
}

static struct mailstream_cancel *tls_get_cancel(mailstream_low *low)
{
	(void)low;
	return NULL;
}

static carray *tls_get_certificate_chain(mailstream_low *low)
{
	(void)low;
	return NULL;
}

static mailstream_low_driver tls_driver = {
	.mailstream_read = tls_read,
	.mailstream_write = tls_write,
	.mailstream_close = tls_close,
	.mailstream_get_fd = tls_get_fd,
	.mailstream_free = tls_free,
	.mailstream_cancel = tls_cancel,
	.mailstream_get_cancel = tls_get_cancel,
	.mailstream_get_certificate_chain = tls_get_certificate_chain,
};

static void ssl_error_text(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "no details";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
}

int imap_tls_wrap(int fd, const char *host, const char *ca_file, bool verify,
		  mailstream_low **low_r, char *err, size_t errlen)
{
	struct in6_addr addr6;
	struct in_addr addr4;
	struct tls_low *t = NULL;
	mailstream_low *low;
	bool is_ip;
	long vr;

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->fd = -1;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL) {
		ssl_error_text(err, errlen, "TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	if (verify) {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
		if (ca_file != NULL && ca_file[0] != '\0') {
			if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
				snprintf(err, errlen, "cannot load CA file %s", ca_file);
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
			ssl_error_text(err, errlen, "system CA store");
			goto fail;
		}
	}
	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
		ssl_error_text(err, errlen, "TLS session");
		goto fail;
	}
	is_ip = inet_pton(AF_INET, host, &addr4) == 1 || inet_pton(AF_INET6, host, &addr6) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(t->ssl, host);
	if (verify) {
		X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
			  : X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
			snprintf(err, errlen, "TLS: cannot set expected peer name %s", host);
			goto fail;
		}
	}
	if (SSL_connect(t->ssl) != 1) {
		vr = SSL_get_verify_result(t->ssl);
		if (verify && vr != X509_V_OK)
			snprintf(err, errlen, "TLS: certificate of %s refused: %s", host,
				 X509_verify_cert_error_string(vr));
		else
			ssl_error_text(err, errlen, "TLS handshake failed");
		goto fail;
	}
	low = mailstream_low_new(t, &tls_driver);
	if (low == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	t->fd = fd;
	*low_r = low;
	return 0;
fail:
	ERR_clear_error();
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	free(t);
	return -1;
}
