/* The worker's pure pieces (worker/core.c): batch cutting, message identity,
 * flag comparison.  Expected values are written out, not computed by the
 * code under test (hashes from Python's hashlib). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sync-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- batch_cut ---- */

/* A UID window of n messages: UIDs 10, 20, ... with the given sizes. */
static struct imap_batch window_of(struct imap_msg *msgs, const uint32_t *sizes, size_t n)
{
	struct imap_batch b = {.msgs = msgs, .count = n};

	for (size_t k = 0; k < n; k++) {
		memset(&msgs[k], 0, sizeof(msgs[k]));
		msgs[k].uid = (uint32_t)(10 * (k + 1));
		msgs[k].size = sizes[k];
		b.bytes += sizes[k];
	}
	return b;
}

/* One cut from *i: asserts how many, which UIDs, the bytes and spooling. */
static void cut(const struct imap_batch *w, size_t *i, size_t max_count, size_t max_bytes,
                uint64_t max_message, size_t want_n, const uint32_t *want_uids, size_t want_bytes,
                bool want_spool)
{
	uint32_t uids[16];
	size_t n = 99, bytes = 99;
	bool spool;

	assert_true(max_count <= 16);
	memset(uids, 0xff, sizeof(uids));
	spool = batch_cut(w, i, max_count, max_bytes, max_message, uids, &n, &bytes);
	assert_int_equal(n, want_n);
	assert_int_equal(bytes, want_bytes);
	assert_int_equal(spool, want_spool);
	for (size_t k = 0; k < want_n; k++)
		assert_int_equal(uids[k], want_uids[k]);
	/* Nothing written past the batch. */
	for (size_t k = want_n; k < max_count; k++)
		assert_int_equal(uids[k], UINT32_MAX);
}

static void test_cut_by_count(void **state)
{
	struct imap_msg m[5];
	const uint32_t sizes[] = {1, 1, 1, 1, 1};
	struct imap_batch w = window_of(m, sizes, 5);
	size_t i = 0;

	(void)state;
	cut(&w, &i, 2, 1000, 0, 2, (const uint32_t[]){10, 20}, 2, false);
	assert_int_equal(i, 2);
	cut(&w, &i, 2, 1000, 0, 2, (const uint32_t[]){30, 40}, 2, false);
	assert_int_equal(i, 4);
	cut(&w, &i, 2, 1000, 0, 1, (const uint32_t[]){50}, 1, false);
	assert_int_equal(i, 5);
}

static void test_cut_by_bytes_exact(void **state)
{
	struct imap_msg m[5];
	const uint32_t sizes[] = {40, 60, 50, 50, 1};
	struct imap_batch w = window_of(m, sizes, 5);
	size_t i = 0;

	(void)state;
	/* 40 + 60 is exactly the limit: both go; 50 + 50 too; then the rest. */
	cut(&w, &i, 10, 100, 0, 2, (const uint32_t[]){10, 20}, 100, false);
	cut(&w, &i, 10, 100, 0, 2, (const uint32_t[]){30, 40}, 100, false);
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){50}, 1, false);
	assert_int_equal(i, 5);
}

static void test_cut_one_byte_over(void **state)
{
	struct imap_msg m[3];
	const uint32_t sizes[] = {50, 51, 49};
	struct imap_batch w = window_of(m, sizes, 3);
	size_t i = 0;

	(void)state;
	/* 50 + 51 = 101 > 100: the second message starts the next batch. */
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){10}, 50, false);
	cut(&w, &i, 10, 100, 0, 2, (const uint32_t[]){20, 30}, 100, false);
}

static void test_cut_message_over_byte_limit(void **state)
{
	struct imap_msg m[4];
	const uint32_t sizes[] = {10, 500, 10, 10};
	struct imap_batch w = window_of(m, sizes, 4);
	size_t i = 0;

	(void)state;
	/* The big one is not joined to the batch before it ... */
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){10}, 10, false);
	/* ... travels alone, spooled ... */
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){20}, 500, true);
	/* ... and nothing is joined to it either. */
	cut(&w, &i, 10, 100, 0, 2, (const uint32_t[]){30, 40}, 20, false);
	assert_int_equal(i, 4);
}

static void test_cut_first_over_byte_limit(void **state)
{
	struct imap_msg m[2];
	const uint32_t sizes[] = {101, 1};
	struct imap_batch w = window_of(m, sizes, 2);
	size_t i = 0;

	(void)state;
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){10}, 101, true);
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){20}, 1, false);
	/* Exactly the byte limit is not "over" it: not spooled. */
	const uint32_t sizes2[] = {100};
	w = window_of(m, sizes2, 1);
	i = 0;
	cut(&w, &i, 10, 100, 0, 1, (const uint32_t[]){10}, 100, false);
}

static void test_cut_max_message(void **state)
{
	struct imap_msg m[4];
	const uint32_t sizes[] = {10, 20, 31, 10};
	struct imap_batch w = window_of(m, sizes, 4);
	size_t i = 0;

	(void)state;
	/* Stops before the message over max_message (30) ... */
	cut(&w, &i, 10, 1000, 30, 2, (const uint32_t[]){10, 20}, 30, false);
	assert_int_equal(i, 2);
	/* ... and takes nothing when it comes first (the caller skips it). */
	cut(&w, &i, 10, 1000, 30, 0, NULL, 0, false);
	assert_int_equal(i, 2);
	/* At max_message exactly, a message goes. */
	i = 1;
	cut(&w, &i, 10, 1000, 20, 1, (const uint32_t[]){20}, 20, false);
}

static void test_cut_zero_sized_and_last(void **state)
{
	struct imap_msg m[3];
	const uint32_t sizes[] = {0, 0, 100};
	struct imap_batch w = window_of(m, sizes, 3);
	size_t i = 0;

	(void)state;
	cut(&w, &i, 10, 100, 0, 3, (const uint32_t[]){10, 20, 30}, 100, false);
	assert_int_equal(i, 3);
	/* A cut from the last message only. */
	i = 2;
	cut(&w, &i, 1, 100, 0, 1, (const uint32_t[]){30}, 100, false);
}

/* ---- hash_msg ---- */

static void hex(const unsigned char h[HASH_LEN], char out[2 * HASH_LEN + 1])
{
	for (size_t k = 0; k < HASH_LEN; k++)
		snprintf(out + 2 * k, 3, "%02x", h[k]);
}

static void hash_is(const char *body, size_t len, const char *want_hex)
{
	struct imap_msg m = {.body = body, .body_len = len};
	unsigned char h[HASH_LEN];
	char got[2 * HASH_LEN + 1];

	assert_int_equal(hash_msg(&m, h), 0);
	hex(h, got);
	assert_string_equal(got, want_hex);
}

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_A_LF_B "7e18f737311b2dc3b2f269dd78396b0351f14fb66efa879f768cb23181883c78"
#define SHA_MAIL "993c4eec6a60339530a11bdee236a59b50895572ae808dd9932ec430b1cbef76"

static void test_hash_vectors(void **state)
{
	(void)state;
	hash_is("", 0, SHA_EMPTY);
	hash_is("abc", 3, SHA_ABC);
	hash_is("a\nb", 3, SHA_A_LF_B);
	hash_is("Subject: x\n\nhello\n", 18, SHA_MAIL);
}

static void test_hash_skips_cr(void **state)
{
	(void)state;
	/* CRLF and LF are the same message; so is any CR anywhere. */
	hash_is("a\r\nb", 4, SHA_A_LF_B);
	hash_is("a\n\rb", 4, SHA_A_LF_B);
	hash_is("\r\r\ra\r\n\rb\r", 9, SHA_A_LF_B);
	hash_is("\r", 1, SHA_EMPTY);
	hash_is("\r\r\r\r", 4, SHA_EMPTY);
	hash_is("Subject: x\r\n\r\nhello\r\n", 21, SHA_MAIL);
	/* CRs added or dropped anywhere change nothing ("a\r\r\nb" stored as
	 * "a\r\nb" by a destination that turns CRLF into LF) ... */
	hash_is("a\r\r\nb", 5, SHA_A_LF_B);
	/* ... but a bare CR is no line end: "a\rb" is "ab", so a destination
	 * that turns it into CRLF ("a\r\nb") does not match its copy. */
	hash_is("a\rb", 3, "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603");
	/* Only CR: a NUL byte or the length counts. */
	hash_is("abc\0", 4, "dc1114cd074914bd872cc1f9a23ec910ea2203bc79779ab2e17da25782a624fc");
}

/* The same bytes spooled into a file: read in 64 KiB pieces, with a CR at the
 * end of the first piece, its LF at the start of the next, and CRs across the
 * second boundary. */
static void test_hash_spooled_across_pieces(void **state)
{
	const size_t n = 65536 * 2 + 10;
	char *b = malloc(n);
	FILE *f = tmpfile();
	struct imap_msg m = {0};
	unsigned char h[HASH_LEN], h_mem[HASH_LEN];
	char got[2 * HASH_LEN + 1];

	(void)state;
	assert_non_null(b);
	assert_non_null(f);
	memset(b, 'x', n);
	for (size_t k = 0; k + 1 < n; k += 100) {
		b[k] = '\r';
		b[k + 1] = '\n';
	}
	b[65535] = '\r';
	b[65536] = '\n';
	b[131071] = '\r';
	b[131072] = '\r';
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fflush(f), 0);

	m.spooled = true;
	m.body_fd = fileno(f);
	m.body_len = n;
	assert_int_equal(hash_msg(&m, h), 0);
	hex(h, got);
	assert_string_equal(got,
	                    "f5ce5635257032ebc283330f2123dec5ecebeff58a83a8dfc031edd0f1017aae");

	/* In memory, the same. */
	m = (struct imap_msg){.body = b, .body_len = n};
	assert_int_equal(hash_msg(&m, h_mem), 0);
	assert_memory_equal(h, h_mem, HASH_LEN);

	/* A spool file shorter than announced: an error. */
	m = (struct imap_msg){.spooled = true, .body_fd = fileno(f), .body_len = n + 1};
	assert_int_equal(hash_msg(&m, h), -1);
	fclose(f);
	free(b);
}

/* ---- flags_normalize ---- */

static void normalized(const char *in, const char *want)
{
	char out[512];

	memset(out, 'z', sizeof(out));
	flags_normalize(in, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_flags_sorted(void **state)
{
	(void)state;
	normalized("", "");
	normalized("\\Seen", "\\Seen");
	normalized("\\Seen \\Answered", "\\Answered \\Seen");
	normalized("$Label1 \\Seen \\Flagged $Forwarded", "$Forwarded $Label1 \\Flagged \\Seen");
	/* Order is without regard to case; the words keep their case. */
	normalized("zeta Alpha beta", "Alpha beta zeta");
	normalized("beta Zeta alpha", "alpha beta Zeta");
	normalized("$b \\SEEN $A", "$A $b \\SEEN");
}

static void test_flags_spaces(void **state)
{
	(void)state;
	normalized("  \\Seen   \\Draft  ", "\\Draft \\Seen");
	normalized("   ", "");
}

static void test_flags_equal_lists(void **state)
{
	char a[512], b[512];

	(void)state;
	/* What sync_flags relies on: the same set in another order compares
	 * equal, a different set does not. */
	flags_normalize("\\Seen \\Flagged $Work", a, sizeof(a));
	flags_normalize("$Work \\Flagged \\Seen", b, sizeof(b));
	assert_string_equal(a, b);
	flags_normalize("\\Seen \\Flagged", b, sizeof(b));
	assert_string_not_equal(a, b);
}

/* Long keywords and many words count like any others. */
static void test_flags_long_and_many(void **state)
{
	char kw[80], in[400], want[400], a[512], b[512];
	size_t len = 0;

	(void)state;
	memset(kw, 'k', 70);
	kw[70] = '\0';
	snprintf(in, sizeof(in), "%s \\Seen", kw);
	snprintf(want, sizeof(want), "\\Seen %s", kw);
	normalized(in, want);
	flags_normalize(in, a, sizeof(a));
	flags_normalize("\\Seen", b, sizeof(b));
	assert_string_not_equal(a, b);

	/* 80 words, given in descending order. */
	for (int k = 79; k >= 0; k--)
		len +=
		    (size_t)snprintf(in + len, sizeof(in) - len, "%sk%02d", k < 79 ? " " : "", k);
	len = 0;
	for (int k = 0; k < 80; k++)
		len += (size_t)snprintf(want + len, sizeof(want) - len, "%sk%02d", k > 0 ? " " : "",
		                        k);
	normalized(in, want);
}

static void test_flags_small_output(void **state)
{
	char out[8];

	(void)state;
	/* Truncated, but always terminated within outlen. */
	memset(out, 'z', sizeof(out));
	flags_normalize("\\Seen \\Answered", out, sizeof(out));
	assert_string_equal(out, "\\Answer");
}

/* ---- keywords_strip (keywords.c) ---- */

static void strip_is(const char *flags, const char *dropped, const char *want)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", flags);
	keywords_strip(buf, dropped);
	assert_string_equal(buf, want);
}

static void test_keywords_strip(void **state)
{
	(void)state;
	/* System flags stay, whatever the list; keywords compare without case. */
	strip_is("\\Seen $Short VeryLongKeyword \\Flagged", "verylongkeyword",
	         "\\Seen \\Flagged $Short");
	strip_is("$A $B $C", "$C $A", "$B");
	strip_is("$A", "", "$A");
	strip_is("", "$A", "");
	/* A system flag named in the list is not a keyword: kept. */
	strip_is("\\Seen", "\\Seen", "\\Seen");
}

/* The date filter's clock: INTERNALDATE with its zone, and a plan's day. */
static void test_dates(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(internaldate_epoch("01-Oct-2002 00:00:00 +0000", &t), 0);
	assert_int_equal(t, 1033430400);
	assert_int_equal(internaldate_epoch(" 1-Oct-2002 02:00:00 +0200", &t), 0);
	assert_int_equal(t, 1033430400); /* the same instant, two hours east */
	assert_int_equal(internaldate_epoch("30-Sep-2002 19:30:00 -0430", &t), 0);
	assert_int_equal(t, 1033430400);
	assert_int_equal(internaldate_epoch("01-Okt-2002 00:00:00 +0000", &t), -1);
	assert_int_equal(internaldate_epoch("01-Oct-2002 00:00:00", &t), -1);
	assert_int_equal(internaldate_epoch("01-Oct-2002 24:00:00 +0000", &t), -1);
	assert_int_equal(day_epoch("2002-10-01", &t), 0);
	assert_int_equal(t, 1033430400);
	assert_int_equal(day_epoch("2002-10-01x", &t), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cut_by_count),
	    cmocka_unit_test(test_cut_by_bytes_exact),
	    cmocka_unit_test(test_cut_one_byte_over),
	    cmocka_unit_test(test_cut_message_over_byte_limit),
	    cmocka_unit_test(test_cut_first_over_byte_limit),
	    cmocka_unit_test(test_cut_max_message),
	    cmocka_unit_test(test_cut_zero_sized_and_last),
	    cmocka_unit_test(test_hash_vectors),
	    cmocka_unit_test(test_hash_skips_cr),
	    cmocka_unit_test(test_hash_spooled_across_pieces),
	    cmocka_unit_test(test_flags_sorted),
	    cmocka_unit_test(test_flags_spaces),
	    cmocka_unit_test(test_flags_equal_lists),
	    cmocka_unit_test(test_flags_long_and_many),
	    cmocka_unit_test(test_flags_small_output),
	    cmocka_unit_test(test_keywords_strip),
	    cmocka_unit_test(test_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
