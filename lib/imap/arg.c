/* IMAP arguments: the one place strings are turned into command bytes. */
#include "arg.h"

#include "imap.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void imap_buf_init(struct imap_buf *buf, size_t max)
{
	memset(buf, 0, sizeof(*buf));
	buf->max = max;
}

static int buf_reserve(struct imap_buf *buf, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > buf->max || buf->len > buf->max - extra)
		return -1;
	need = buf->len + extra + 1;
	if (need <= buf->cap)
		return 0;
	cap = buf->cap > 0 ? buf->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(buf->data, cap);
	if (p == NULL)
		return -1;
	buf->data = p;
	buf->cap = cap;
	return 0;
}

int imap_buf_append(struct imap_buf *buf, const void *data, size_t len)
{
	if (buf_reserve(buf, len) < 0)
		return -1;
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int imap_buf_printf(struct imap_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(buf, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t)n;
	return 0;
}

void imap_buf_free(struct imap_buf *buf, bool wipe)
{
	if (buf->data != NULL && wipe)
		OPENSSL_cleanse(buf->data, buf->cap);
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

/* The start of str for an error text, control bytes made visible. */
static void shown(const char *str, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 < outlen; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\r' || c == '\n' || c == '\0' || c == '\\') {
			out[n++] = '\\';
			out[n++] = c == '\r' ? 'r' : c == '\n' ? 'n' : c == '\0' ? '0' : '\\';
		} else if (c < 0x20 || c == 0x7f) {
			out[n++] = '?';
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	if (n + 5 >= outlen)
		memcpy(out + n, "...", 4);
}

int imap_arg_check(const char *what, bool secret, const char *str, size_t len, char *err,
                   size_t errlen)
{
	const char *bad = NULL;
	char show[160];

	for (size_t i = 0; i < len && bad == NULL; i++) {
		if (str[i] == '\r')
			bad = "a CR";
		else if (str[i] == '\n')
			bad = "an LF";
		else if (str[i] == '\0')
			bad = "a NUL byte";
	}
	if (bad == NULL && len <= IMAP_ARG_MAX)
		return 0;
	if (secret) {
		if (bad != NULL)
			snprintf(err, errlen, "the %s holds %s: it cannot be sent to the server",
			         what, bad);
		else
			snprintf(err, errlen,
			         "the %s is longer than %d bytes: it cannot be sent to the server",
			         what, IMAP_ARG_MAX);
		return IMAP_EARG;
	}
	shown(str, len, show, sizeof(show));
	if (bad != NULL)
		snprintf(err, errlen, "%s \"%s\" holds %s: it cannot be sent to the server", what,
		         show, bad);
	else
		snprintf(err, errlen,
		         "%s \"%s\" is longer than %d bytes: it cannot be sent to the server", what,
		         show, IMAP_ARG_MAX);
	return IMAP_EARG;
}

/* ATOM-CHAR of RFC 3501 9, also leaving out "]" (resp-specials). */
static bool atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static bool is_atom(const char *str, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!atom_char((unsigned char)str[i]))
			return false;
	return true;
}

int imap_arg_encode(struct imap_buf *out, const char *what, bool secret, const char *str,
                    size_t len, bool literal_plus, char *err, size_t errlen)
{
	size_t start = out->len;
	bool quotable = len <= IMAP_ARG_QUOTED_MAX;
	int ret;

	ret = imap_arg_check(what, secret, str, len, err, errlen);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < len && quotable; i++)
		quotable = (unsigned char)str[i] < 0x80;
	if (is_atom(str, len)) {
		if (imap_buf_append(out, str, len) < 0)
			goto toolong;
		return IMAP_ARG_ATOM;
	}
	if (quotable) {
		/* TEXT-CHAR with quoted-specials escaped (RFC 3501 9, "quoted"). */
		if (imap_buf_append(out, "\"", 1) < 0)
			goto toolong;
		for (size_t i = 0; i < len; i++) {
			if ((str[i] == '"' || str[i] == '\\') && imap_buf_append(out, "\\", 1) < 0)
				goto toolong;
			if (imap_buf_append(out, &str[i], 1) < 0)
				goto toolong;
		}
		if (imap_buf_append(out, "\"", 1) < 0)
			goto toolong;
		return IMAP_ARG_QUOTED;
	}
	if (imap_buf_printf(out, "{%zu%s}\r\n", len, literal_plus ? "+" : "") < 0 ||
	    imap_buf_append(out, str, len) < 0)
		goto toolong;
	return IMAP_ARG_LITERAL;
toolong:
	if (out->data != NULL) {
		if (secret)
			OPENSSL_cleanse(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	snprintf(err, errlen, "the command with this %s would be longer than %zu bytes", what,
	         out->max);
	return IMAP_EARG;
}

bool imap_arg_flag_ok(const char *flag, size_t len)
{
	if (len > 0 && flag[0] == '\\') {
		flag++;
		len--;
	}
	return is_atom(flag, len);
}

bool imap_arg_date_ok(const char *d)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	/* "dd-Mon-yyyy hh:mm:ss +zzzz": D digit, M month, S sign, literal otherwise. */
	static const char pattern[] = "DD-MMM-DDDD DD:DD:DD SDDDD";
	bool month = false;

	if (strlen(d) != sizeof(pattern) - 1)
		return false;
	for (size_t i = 0; i < sizeof(pattern) - 1; i++) {
		char p = pattern[i], c = d[i];
		if (p == 'D' && !(c >= '0' && c <= '9') && !(i == 0 && c == ' '))
			return false;
		if (p == 'S' && c != '+' && c != '-')
			return false;
		if (p != 'D' && p != 'S' && p != 'M' && c != p)
			return false;
	}
	for (size_t m = 0; m < 12; m++)
		month = month || strncmp(d + 3, months[m], 3) == 0;
	return month;
}
