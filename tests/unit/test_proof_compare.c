/* The pure core of a proof of completeness (coordinator/proof-compare.c):
 * one folder's messages on both sides turned into named differences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proof-compare.h"

#include <stdio.h>
#include <string.h>

/* A message whose identity is its id (the hash's first byte). */
static struct proof_msg msg(uint32_t uid, unsigned char id, const char *flags, const char *date)
{
	struct proof_msg m;

	memset(&m, 0, sizeof(m));
	m.uid = uid;
	m.size = 100u + id;
	m.hash[0] = id;
	snprintf(m.flags, sizeof(m.flags), "%s", flags);
	snprintf(m.date, sizeof(m.date), "%s", date);
	return m;
}

#define D1 "01-Jan-2020 10:00:00 +0000"
#define D2 "02-Jan-2020 10:00:00 +0000"

static const struct proof_diff *find(const struct proof_result *r, enum proof_kind kind)
{
	for (size_t i = 0; i < r->count; i++)
		if (r->diffs[i].kind == kind)
			return &r->diffs[i];
	return NULL;
}

static void test_identical_is_exact(void **state)
{
	(void)state;
	struct proof_msg src[] = {msg(1, 1, "\\Seen", D1), msg(2, 2, "$Work \\Flagged", D2)};
	/* Other UIDs, flags in another order and case, \Recent, the same
	 * instant in another zone: all the same. */
	struct proof_msg dst[] = {msg(7, 1, "\\Seen \\Recent", D1),
	                          msg(8, 2, "\\flagged $Work", "02-Jan-2020 11:00:00 +0100")};
	struct proof_map map[] = {{1, 7}, {2, 8}};
	struct proof_result r;

	assert_int_equal(proof_compare(src, 2, dst, 2, map, 2, NULL, 0, NULL, 0, &r), 0);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.matched, 2);
	proof_result_free(&r);
}

static void test_each_difference_named(void **state)
{
	(void)state;
	struct proof_msg src[] = {msg(1, 1, "", D1), msg(2, 2, "\\Seen", D1), msg(3, 3, "", D1),
	                          msg(4, 4, "\\Seen $Ok TooLongKeyword", D1)};
	/* 1 gone; 2 reflagged; 3 twice with another date; 4 without a keyword;
	 * 9 from nowhere. */
	struct proof_msg dst[] = {msg(11, 2, "\\Answered", D1), msg(12, 3, "", D2),
	                          msg(13, 3, "", D2), msg(14, 4, "\\Seen $Ok", D1),
	                          msg(15, 9, "", D1)};
	struct proof_map map[] = {{1, 10}, {2, 11}, {3, 13}, {4, 14}};
	struct proof_note errors[] = {{1, NULL, "NO too big"}};
	struct proof_note dropped[] = {
	    {4, "TooLongKeyword", "NO [CANNOT] Keyword length too long"}};
	struct proof_result r;
	const struct proof_diff *d;

	assert_int_equal(proof_compare(src, 4, dst, 5, map, 4, errors, 1, dropped, 1, &r), 0);
	assert_int_equal(r.missing, 1);
	assert_int_equal(r.extra, 2);
	assert_int_equal(r.changed, 3);
	assert_int_equal(r.count, 6);
	d = find(&r, PROOF_MISSING);
	assert_non_null(d);
	assert_int_equal(d->src_uid, 1);
	assert_non_null(strstr(d->detail, "NO too big"));
	d = find(&r, PROOF_FLAGS);
	assert_non_null(d);
	assert_int_equal(d->dst_uid, 11);
	assert_non_null(strstr(d->detail, "\\Seen"));
	assert_non_null(strstr(d->detail, "\\Answered"));
	/* The mapped copy (13) is the message's; 12 is the duplicate. */
	d = find(&r, PROOF_DATE_REPLACED);
	assert_non_null(d);
	assert_int_equal(d->src_uid, 3);
	assert_int_equal(d->dst_uid, 13);
	assert_string_equal(d->dst, D2);
	d = find(&r, PROOF_DUPLICATE);
	assert_non_null(d);
	assert_int_equal(d->src_uid, 3);
	assert_int_equal(d->dst_uid, 12);
	d = find(&r, PROOF_KEYWORDS);
	assert_non_null(d);
	assert_int_equal(d->src_uid, 4);
	assert_non_null(strstr(d->detail, "TooLongKeyword"));
	assert_non_null(strstr(d->detail, "Keyword length too long"));
	d = find(&r, PROOF_EXTRA);
	assert_non_null(d);
	assert_int_equal(d->dst_uid, 15);
	proof_result_free(&r);
}

/* A keyword recorded as dropped does not hide another change of flags. */
static void test_dropped_does_not_hide_other_flags(void **state)
{
	(void)state;
	struct proof_msg src[] = {msg(1, 1, "\\Seen LongOne", D1)};
	struct proof_msg dst[] = {msg(5, 1, "", D1)};
	struct proof_note dropped[] = {{1, "LongOne", "NO"}};
	struct proof_result r;

	assert_int_equal(proof_compare(src, 1, dst, 1, NULL, 0, NULL, 0, dropped, 1, &r), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.diffs[0].kind, PROOF_FLAGS);
	proof_result_free(&r);
}

/* Without a UID map (no UIDPLUS), messages are matched by identity; the
 * same bytes twice on the source need two copies. */
static void test_identity_without_map(void **state)
{
	(void)state;
	struct proof_msg src[] = {msg(1, 5, "", D1), msg(2, 5, "", D1)};
	struct proof_msg dst[] = {msg(3, 5, "", D1)};
	struct proof_result r;

	assert_int_equal(proof_compare(src, 2, dst, 1, NULL, 0, NULL, 0, NULL, 0, &r), 0);
	assert_int_equal(r.matched, 1);
	assert_int_equal(r.missing, 1);
	assert_int_equal(r.diffs[0].src_uid, 2);
	proof_result_free(&r);
}

static void test_date_parse(void **state)
{
	int64_t t;

	(void)state;
	assert_true(proof_date_parse("01-Jan-1970 00:00:00 +0000", &t));
	assert_int_equal(t, 0);
	assert_true(proof_date_parse(" 1-Feb-2000 01:30:00 +0130", &t));
	assert_int_equal(t, 949363200);
	assert_true(proof_date_parse("31-Dec-1969 23:00:00 -0100", &t));
	assert_int_equal(t, 0);
	assert_false(proof_date_parse("yesterday", &t));
	assert_false(proof_date_parse("01-Foo-2020 00:00:00 +0000", &t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identical_is_exact),
	    cmocka_unit_test(test_each_difference_named),
	    cmocka_unit_test(test_dropped_does_not_hide_other_flags),
	    cmocka_unit_test(test_identity_without_map),
	    cmocka_unit_test(test_date_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
