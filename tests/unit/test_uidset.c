/* UID sets (lib/imap): imap_uidset_format, runs of UIDs to "1:5,7", and the
 * way back, the uid-set of an APPENDUID response code (appenduid_parse). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "imap-private.h"

#include <string.h>

static void formats(const uint32_t *uids, size_t count, const char *want)
{
	char buf[256];

	memset(buf, 'z', sizeof(buf));
	assert_int_equal(imap_uidset_format(uids, count, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void test_format_runs(void **state)
{
	(void)state;
	formats(NULL, 0, "");
	formats((const uint32_t[]){7}, 1, "7");
	formats((const uint32_t[]){1, 2}, 2, "1:2");
	formats((const uint32_t[]){1, 2, 3, 4, 5, 7, 9, 10, 11, 12}, 10, "1:5,7,9:12");
	formats((const uint32_t[]){1, 3, 5}, 3, "1,3,5");
	formats((const uint32_t[]){2, 3, 10}, 3, "2:3,10");
}

static void test_format_uid_max(void **state)
{
	(void)state;
	formats((const uint32_t[]){4294967295u}, 1, "4294967295");
	formats((const uint32_t[]){4294967294u, 4294967295u}, 2, "4294967294:4294967295");
	formats((const uint32_t[]){1, 4294967295u}, 2, "1,4294967295");
}

static void test_format_unsorted_and_duplicates(void **state)
{
	(void)state;
	/* The contract is ascending UIDs; anything else still comes out as a
	 * valid set naming exactly the UIDs given, never a wrong range. */
	formats((const uint32_t[]){3, 2, 1}, 3, "3,2,1");
	formats((const uint32_t[]){5, 5, 6}, 3, "5,5:6");
	formats((const uint32_t[]){9, 1, 2}, 3, "9,1:2");
}

static void test_format_buffer_limits(void **state)
{
	const uint32_t uids[] = {1, 2, 3, 7};
	char buf[16];

	(void)state;
	/* "1:3,7" needs 6 bytes with its NUL. */
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(imap_uidset_format(uids, 4, buf, 6), 0);
	assert_string_equal(buf, "1:3,7");
	assert_int_equal(buf[6], 'z');
	/* One byte short: refused, and what is in buf stays terminated. */
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(imap_uidset_format(uids, 4, buf, 5), -1);
	assert_true(memchr(buf, '\0', 5) != NULL);
	assert_int_equal(buf[5], 'z');
	/* Too short for the first run. */
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(imap_uidset_format(uids, 4, buf, 3), -1);
	assert_true(memchr(buf, '\0', 3) != NULL);
	assert_int_equal(buf[3], 'z');
	/* An empty set fits in one byte. */
	assert_int_equal(imap_uidset_format(NULL, 0, buf, 1), 0);
	assert_string_equal(buf, "");
	/* A single UID exactly at the limit. */
	assert_int_equal(imap_uidset_format((const uint32_t[]){4294967295u}, 1, buf, 11), 0);
	assert_string_equal(buf, "4294967295");
	assert_int_equal(imap_uidset_format((const uint32_t[]){4294967295u}, 1, buf, 10), -1);
}

/* ---- appenduid_parse ---- */

static void parses(const char *text, size_t max, size_t want_n, const uint32_t *want)
{
	uint32_t uids[16];

	assert_true(max <= 16);
	memset(uids, 0, sizeof(uids));
	assert_int_equal(appenduid_parse(text, uids, max), want_n);
	for (size_t k = 0; k < want_n; k++)
		assert_int_equal(uids[k], want[k]);
	for (size_t k = want_n; k < 16; k++)
		assert_int_equal(uids[k], 0);
}

static void test_parse_single(void **state)
{
	(void)state;
	parses("A003 OK [APPENDUID 38505 3955] APPEND completed", 1, 1, (const uint32_t[]){3955});
	parses("a1 ok [appenduid 1 7] done", 1, 1, (const uint32_t[]){7});
	parses("A1 OK [APPENDUID 1 4294967295] x", 1, 1, (const uint32_t[]){4294967295u});
}

static void test_parse_sets(void **state)
{
	(void)state;
	parses("A1 OK [APPENDUID 9 1:5,7,9:12] x", 16, 10,
	       (const uint32_t[]){1, 2, 3, 4, 5, 7, 9, 10, 11, 12});
	parses("A1 OK [APPENDUID 9 4294967294:4294967295] x", 16, 2,
	       (const uint32_t[]){4294967294u, 4294967295u});
	/* At most max: the rest is left out. */
	parses("A1 OK [APPENDUID 9 1:5,7] x", 3, 3, (const uint32_t[]){1, 2, 3});
	parses("A1 OK [APPENDUID 9 1:5,7] x", 6, 6, (const uint32_t[]){1, 2, 3, 4, 5, 7});
}

/* RFC 4315: "2:4 and 4:2 are equivalent". */
static void test_parse_reversed_range(void **state)
{
	(void)state;
	parses("A1 OK [APPENDUID 9 5:3] x", 16, 3, (const uint32_t[]){3, 4, 5});
	parses("A1 OK [APPENDUID 9 1,12:10] x", 16, 4, (const uint32_t[]){1, 10, 11, 12});
	parses("A1 OK [APPENDUID 9 4294967295:4294967294] x", 16, 2,
	       (const uint32_t[]){4294967294u, 4294967295u});
}

/* What imap_uidset_format writes, appenduid_parse reads back. */
static void test_round_trip(void **state)
{
	const uint32_t uids[] = {3, 4, 5, 8, 11, 12, 4294967295u};
	char text[128] = "A1 OK [APPENDUID 77 ";
	uint32_t back[16] = {0};

	(void)state;
	assert_int_equal(imap_uidset_format(uids, 7, text + strlen(text), 100), 0);
	strcat(text, "] done");
	assert_int_equal(appenduid_parse(text, back, 16), 7);
	assert_memory_equal(back, uids, sizeof(uids));
}

static void test_parse_absent_or_malformed(void **state)
{
	(void)state;
	parses("A1 OK APPEND completed", 1, 0, NULL);
	parses("A1 OK [APPENDUID] x", 1, 0, NULL);
	parses("A1 OK [APPENDUID 38505] x", 1, 0, NULL);
	parses("A1 OK [APPENDUID x 5] x", 1, 0, NULL);
	parses("A1 OK [APPENDUID 1 x] x", 1, 0, NULL);
	parses("A1 OK [APPENDUID 1 5:] x", 1, 0, NULL);
	parses("A1 OK [COPYUID 1 2 3] x", 1, 0, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_runs),
	    cmocka_unit_test(test_format_uid_max),
	    cmocka_unit_test(test_format_unsorted_and_duplicates),
	    cmocka_unit_test(test_format_buffer_limits),
	    cmocka_unit_test(test_parse_single),
	    cmocka_unit_test(test_parse_sets),
	    cmocka_unit_test(test_parse_reversed_range),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_parse_absent_or_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
