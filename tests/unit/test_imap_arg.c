/* Encoding strings as IMAP arguments (lib/imap/arg): a fuzz-style test with a
 * fixed seed (random bytes, random lengths up to 4 KB) and a decoder of its
 * own, plus the flag and date checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arg.h"
#include "imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	/* xorshift64*: the same sequence on every run. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static bool atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* Decodes exactly one astring filling all of in[0..len), independently of
 * arg.c: an atom, a quoted string (only \" and \\ escapes, 7-bit, no CR/LF), or
 * a literal {N} / {N+} CRLF and N bytes.  Returns the form, -1 if malformed. */
static int decode(const char *in, size_t len, char *out, size_t *outlen)
{
	size_t i = 0, n = 0;

	if (len == 0)
		return -1;
	if (in[0] == '"') {
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)in[i];
			if (c == '"')
				break;
			if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
				return -1;
			if (c == '\\') {
				if (i + 1 >= len || (in[i + 1] != '"' && in[i + 1] != '\\'))
					return -1;
				c = (unsigned char)in[++i];
			}
			out[n++] = (char)c;
		}
		if (i != len - 1) /* the closing quote ends the argument */
			return -1;
		*outlen = n;
		return IMAP_ARG_QUOTED;
	}
	if (in[0] == '{') {
		size_t size = 0;
		for (i = 1; i < len && in[i] >= '0' && in[i] <= '9'; i++)
			size = size * 10 + (size_t)(in[i] - '0');
		if (i == 1)
			return -1;
		if (i < len && in[i] == '+')
			i++;
		if (i + 3 > len || in[i] != '}' || in[i + 1] != '\r' || in[i + 2] != '\n')
			return -1;
		i += 3;
		if (len - i != size)
			return -1;
		memcpy(out, in + i, size);
		*outlen = size;
		return IMAP_ARG_LITERAL;
	}
	for (i = 0; i < len; i++)
		if (!atom_char((unsigned char)in[i]))
			return -1;
	memcpy(out, in, len);
	*outlen = len;
	return IMAP_ARG_ATOM;
}

static void test_fuzz_roundtrip(void **state)
{
	static char in[5000], out[5000];
	size_t refused = 0, forms[3] = {0, 0, 0};

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		struct imap_buf buf;
		size_t len, outlen = 0;
		unsigned int kind = (unsigned int)(next_rand() % 5);
		bool bad = false, lp = next_rand() % 2;
		char err[256] = "";
		int form;

		/* Lengths: mostly short, some up to 4 KB. */
		len = next_rand() % 4 == 0 ? (size_t)(next_rand() % 4097)
		                           : (size_t)(next_rand() % 40);
		for (size_t i = 0; i < len; i++) {
			uint64_t r = next_rand();
			if (kind == 0) /* atom characters */
				in[i] = "abcXYZ019-_.$&'+,/:;<=>?@[^`|~"[r % 30];
			else if (kind == 1) /* printable, with quoted-specials */
				in[i] = (char)(0x20 + r % 95);
			else if (kind == 2) /* printable with rare CR, LF, NUL */
				in[i] = r % 200 == 0   ? "\r\n"[r % 2]
				        : r % 211 == 0 ? '\0'
				                       : (char)(0x20 + r % 95);
			else /* any byte */
				in[i] = (char)(r & 0xff);
			bad = bad || in[i] == '\r' || in[i] == '\n' || in[i] == '\0';
		}
		imap_buf_init(&buf, IMAP_ARG_MAX + 64);
		assert_int_equal(imap_buf_append(&buf, "A1 CMD ", 7), 0);
		form = imap_arg_encode(&buf, "folder name", false, in, len, lp, err, sizeof(err));
		if (bad) {
			/* Refused, nothing appended, and the text says why. */
			assert_int_equal(form, IMAP_EARG);
			assert_int_equal(buf.len, 7);
			assert_non_null(strstr(err, "folder name"));
			assert_non_null(strstr(err, "cannot be sent"));
			refused++;
			imap_buf_free(&buf, false);
			continue;
		}
		assert_true(form >= 0);
		forms[form]++;
		assert_int_equal(decode(buf.data + 7, buf.len - 7, out, &outlen), form);
		assert_int_equal(outlen, len);
		assert_memory_equal(out, in, len);
		/* The form follows the rules: literal only for 8-bit or long. */
		if (form == IMAP_ARG_LITERAL) {
			bool eight = false;
			for (size_t i = 0; i < len; i++)
				eight = eight || (unsigned char)in[i] >= 0x80;
			assert_true(eight || len > IMAP_ARG_QUOTED_MAX);
			assert_true(strstr(buf.data + 7, lp ? "+}\r\n" : "}\r\n") != NULL);
		} else {
			/* Outside a literal, no CR or LF at all. */
			assert_null(memchr(buf.data, '\r', buf.len));
			assert_null(memchr(buf.data, '\n', buf.len));
		}
		imap_buf_free(&buf, false);
	}
	/* The generator reached every branch. */
	assert_true(refused > 1000);
	assert_true(forms[IMAP_ARG_ATOM] > 1000);
	assert_true(forms[IMAP_ARG_QUOTED] > 1000);
	assert_true(forms[IMAP_ARG_LITERAL] > 1000);
}

static void test_secret_never_shown(void **state)
{
	struct imap_buf buf;
	char err[256];

	(void)state;
	imap_buf_init(&buf, 1024);
	assert_int_equal(
	    imap_arg_encode(&buf, "password", true, "hunter2\r\nX", 10, true, err, sizeof(err)),
	    IMAP_EARG);
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "the password holds a CR"));
	assert_int_equal(imap_arg_check("login", false, "bob\nX", 5, err, sizeof(err)), IMAP_EARG);
	assert_non_null(strstr(err, "login \"bob\\nX\" holds an LF"));
	assert_int_equal(imap_arg_check("login", false, "a\0b", 3, err, sizeof(err)), IMAP_EARG);
	assert_non_null(strstr(err, "NUL"));
	imap_buf_free(&buf, true);
}

static void test_limits(void **state)
{
	static char big[IMAP_ARG_MAX + 2];
	struct imap_buf buf;
	char err[256];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	assert_int_equal(
	    imap_arg_check("folder name", false, big, IMAP_ARG_MAX + 1, err, sizeof(err)),
	    IMAP_EARG);
	assert_non_null(strstr(err, "longer than"));
	/* The buffer's maximum: refused, the buffer as it was. */
	imap_buf_init(&buf, 16);
	assert_int_equal(imap_buf_append(&buf, "A1 ", 3), 0);
	assert_int_equal(imap_arg_encode(&buf, "folder name", false, "0123456789abcdef", 16, true,
	                                 err, sizeof(err)),
	                 IMAP_EARG);
	assert_int_equal(buf.len, 3);
	assert_string_equal(buf.data, "A1 ");
	imap_buf_free(&buf, false);
	/* Forms at the edges. */
	imap_buf_init(&buf, 1024);
	assert_int_equal(imap_arg_encode(&buf, "x", false, "", 0, false, err, sizeof(err)),
	                 IMAP_ARG_QUOTED);
	assert_string_equal(buf.data, "\"\"");
	imap_buf_free(&buf, false);
	imap_buf_init(&buf, 1024);
	assert_int_equal(imap_arg_encode(&buf, "x", false, "NIL]", 4, false, err, sizeof(err)),
	                 IMAP_ARG_QUOTED);
	assert_string_equal(buf.data, "\"NIL]\"");
	imap_buf_free(&buf, false);
	imap_buf_init(&buf, 1024);
	assert_int_equal(
	    imap_arg_encode(&buf, "x", false, "Entw\xc3\xbcrfe", 9, false, err, sizeof(err)),
	    IMAP_ARG_LITERAL);
	assert_string_equal(buf.data, "{9}\r\nEntw\xc3\xbcrfe");
	imap_buf_free(&buf, false);
}

static void test_flags_and_dates(void **state)
{
	(void)state;
	assert_true(imap_arg_flag_ok("\\Seen", 5));
	assert_true(imap_arg_flag_ok("$Work", 5));
	assert_true(imap_arg_flag_ok("NonJunk", 7));
	assert_false(imap_arg_flag_ok("", 0));
	assert_false(imap_arg_flag_ok("\\", 1));
	assert_false(imap_arg_flag_ok("a\"b", 3));
	assert_false(imap_arg_flag_ok("a)b", 3));
	assert_false(imap_arg_flag_ok("a\r\nb", 4));
	assert_false(imap_arg_flag_ok("a]", 2));
	assert_false(imap_arg_flag_ok("\xc3\xbc", 2));
	assert_true(imap_arg_date_ok("01-Feb-2003 04:05:06 +0100"));
	assert_true(imap_arg_date_ok(" 1-Feb-2003 04:05:06 -0800"));
	assert_false(imap_arg_date_ok("01-Fex-2003 04:05:06 +0100"));
	assert_false(imap_arg_date_ok("01-Feb-2003 04:05:06 +0100\" X"));
	assert_false(imap_arg_date_ok("01-Feb-2003 04:05:06 +010"));
	assert_false(imap_arg_date_ok("01-Feb-2003\r\n04:05:06 +0100"));
	assert_false(imap_arg_date_ok(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fuzz_roundtrip),
	    cmocka_unit_test(test_secret_never_shown),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_flags_and_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
