/* Folder name mapping, modified UTF-7 decoding and exclusions (lib/imap/names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "names.h"
#include "rules.h"

#include <string.h>

static const struct imap_names_side slash = {'/', ""};
static const struct imap_names_side dot = {'.', ""};
static const struct imap_names_side dot_inbox = {'.', "INBOX."};

static void map(const char *src, unsigned int flags, const struct imap_names_side *from,
                const struct imap_folder *dst, size_t ndst, const struct imap_names_side *to,
                const char *expected)
{
	struct imap_folder f = {(char *)src, from->delimiter, flags};
	char out[256];

	assert_int_equal(imap_name_map(&f, from, dst, ndst, to, out, sizeof(out)), 0);
	assert_string_equal(out, expected);
}

static void test_map_delimiters(void **state)
{
	(void)state;
	map("INBOX", 0, &slash, NULL, 0, &dot, "INBOX");
	map("inbox", 0, &slash, NULL, 0, &dot, "INBOX");
	map("Archive/2002", 0, &slash, NULL, 0, &dot, "Archive.2002");
	map("Archive.2002", 0, &dot, NULL, 0, &slash, "Archive/2002");
	/* The destination's delimiter inside a name would split it. */
	map("v1.2/notes", 0, &slash, NULL, 0, &dot, "v1_2.notes");
	/* Modified UTF-7 stays as it is: its base64 has neither '/' nor '.'. */
	map("Caf&AOk-/&ANw-n&AO8-code", 0, &slash, NULL, 0, &dot, "Caf&AOk-.&ANw-n&AO8-code");
	map("R&-D", 0, &slash, NULL, 0, &dot, "R&-D");
	/* Prefixes: Courier-style INBOX. on one side only. */
	map("INBOX.Projects.Q1", 0, &dot_inbox, NULL, 0, &slash, "Projects/Q1");
	map("Projects/Q1", 0, &slash, NULL, 0, &dot_inbox, "INBOX.Projects.Q1");
}

static void test_map_special_use(void **state)
{
	struct imap_folder dst[] = {
	    {(char *)"Sent Messages", '.', IMAP_FOLDER_SENT},
	    {(char *)"Deleted Messages", '.', IMAP_FOLDER_TRASH},
	    {(char *)"Spam", '.', IMAP_FOLDER_JUNK},
	};

	(void)state;
	map("Sent", IMAP_FOLDER_SENT, &slash, dst, 3, &dot, "Sent Messages");
	map("Trash", IMAP_FOLDER_TRASH, &slash, dst, 3, &dot, "Deleted Messages");
	map("Junk", IMAP_FOLDER_JUNK, &slash, dst, 3, &dot, "Spam");
	/* No destination folder with that use: the name is kept. */
	map("Drafts", IMAP_FOLDER_DRAFTS, &slash, dst, 3, &dot, "Drafts");
	/* Without the attribute on the source, a name is just a name. */
	map("Junk", 0, &slash, dst, 3, &dot, "Junk");
}

static void test_map_too_long(void **state)
{
	struct imap_folder f = {(char *)"Archive/2002", '/', 0};
	char out[8];

	(void)state;
	assert_int_equal(imap_name_map(&f, &slash, NULL, 0, &dot, out, sizeof(out)), -1);
}

static void test_decode(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(imap_name_decode("Caf&AOk-/&ANw-n&AO8-code", out, sizeof(out)), 0);
	assert_string_equal(out, "Café/Ünïcode");
	assert_int_equal(imap_name_decode("R&-D", out, sizeof(out)), 0);
	assert_string_equal(out, "R&D");
	assert_int_equal(imap_name_decode("&ZeVnLIqe-", out, sizeof(out)), 0);
	assert_string_equal(out, "日本語");
	/* A surrogate pair (U+1F600). */
	assert_int_equal(imap_name_decode("&2D3eAA-", out, sizeof(out)), 0);
	assert_string_equal(out, "\xf0\x9f\x98\x80");
	/* Malformed: a character outside modified base64. */
	assert_int_equal(imap_name_decode("&A/k-", out, sizeof(out)), -1);
	/* Too small a buffer. */
	assert_int_equal(imap_name_decode("Caf&AOk-", out, 4), -1);
}

static void test_excluded(void **state)
{
	(void)state;
	assert_true(imap_name_excluded("Junk", '/', "Trash,Junk"));
	assert_true(imap_name_excluded("Archive/2002", '/', "Archive"));
	assert_false(imap_name_excluded("Archives", '/', "Archive"));
	assert_false(imap_name_excluded("INBOX", '/', ""));
	assert_true(imap_name_excluded("inbox", '/', "INBOX"));
	/* Operators write names in UTF-8; servers send modified UTF-7. */
	assert_true(imap_name_excluded("Caf&AOk-/&ANw-n&AO8-code", '/', "Café"));
	assert_false(imap_name_excluded("Caf&AOk-", '/', "Cafe"));
}

/* Encoding is decoding's inverse, over ASCII, '&', accents and a code point
 * beyond the BMP (a surrogate pair in UTF-16). */
static void test_encode(void **state)
{
	static const char *const names[] = {"Sent",
	                                    "A&B",
	                                    "Caf\xc3\xa9",
	                                    "\xc3\x9c"
	                                    "bersicht/Entw\xc3\xbcrfe",
	                                    "\xe6\x97\xa5\xe6\x9c\xac",
	                                    "x\xf0\x9f\x93\xa7y"};
	char enc[256], dec[256];

	(void)state;
	assert_int_equal(imap_name_encode("Caf\xc3\xa9", enc, sizeof(enc)), 0);
	assert_string_equal(enc, "Caf&AOk-");
	assert_int_equal(imap_name_encode("A&B", enc, sizeof(enc)), 0);
	assert_string_equal(enc, "A&-B");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(imap_name_encode(names[i], enc, sizeof(enc)), 0);
		assert_int_equal(imap_name_decode(enc, dec, sizeof(dec)), 0);
		assert_string_equal(dec, names[i]);
	}
	assert_int_equal(imap_name_encode("bad\xc3", enc, sizeof(enc)), -1);
	assert_int_equal(imap_name_encode("Caf\xc3\xa9", enc, 5), -1);
}

static void rename(const struct imap_rules *r, const char *path, int rc, const char *expected)
{
	char out[256];

	assert_int_equal(imap_rules_apply(r, path, out, sizeof(out)), rc);
	if (rc == 1)
		assert_string_equal(out, expected);
}

static void test_rules(void **state)
{
	struct imap_rules r;
	char err[256];

	(void)state;
	assert_int_equal(imap_rules_parse("=Sent Items\tSent\n"
	                                  "~Lists/([^/]+)/(.*)\tMail/\\2 (\\1)\n"
	                                  "=Old\tArchive/Old\n",
	                                  &r, err, sizeof(err)),
	                 0);
	rename(&r, "Sent Items", 1, "Sent");
	rename(&r, "Sent Items/2019", 1, "Sent/2019");
	rename(&r, "Sent Itemsx", 0, NULL); /* a prefix of a name is not the folder */
	rename(&r, "Lists/dev/2020", 1, "Mail/2020 (dev)");
	rename(&r, "Lists/dev", 0, NULL); /* the whole path must match */
	rename(&r, "Old", 1, "Archive/Old");
	rename(&r, "INBOX", 0, NULL);
	imap_rules_free(&r);

	/* Renamed to nothing, or to an empty level: refused, not created. */
	assert_int_equal(imap_rules_parse("~x(.*)\t\\1", &r, err, sizeof(err)), 0);
	rename(&r, "x", -1, NULL);
	imap_rules_free(&r);

	assert_int_equal(imap_rules_parse("=a\n=b", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "folder rule 1"));
	assert_int_equal(imap_rules_parse("~(\tx", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "regular expression"));
	assert_int_equal(imap_rules_parse("~a(b)\tx\\2", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group \\2"));
	assert_int_equal(imap_rules_parse("", &r, err, sizeof(err)), 0);
	assert_int_equal(r.n, 0);
}

/* Source names to paths and paths to destination names, across delimiters,
 * prefixes and encodings. */
static void test_rule_paths(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(imap_rules_src_path("INBOX.Sent Items.2019", &dot_inbox, out, sizeof(out)),
	                 0);
	assert_string_equal(out, "Sent Items/2019");
	assert_int_equal(imap_rules_src_path("a/b.c", &slash, out, sizeof(out)), 0);
	assert_string_equal(out, "a/b.c");
	assert_int_equal(imap_rules_src_path("a.b/c", &dot, out, sizeof(out)), 0);
	assert_string_equal(out, "a/b_c");
	assert_int_equal(imap_rules_src_path("Caf&AOk-", &slash, out, sizeof(out)), 0);
	assert_string_equal(out, "Caf\xc3\xa9");
	assert_int_equal(imap_rules_dst_name("Archive/Caf\xc3\xa9", &dot_inbox, out, sizeof(out)),
	                 0);
	assert_string_equal(out, "INBOX.Archive.Caf&AOk-");
	assert_int_equal(imap_rules_dst_name("a.b/c", &slash, out, sizeof(out)), 0);
	assert_string_equal(out, "a.b/c");
	assert_int_equal(imap_rules_dst_name("a.b/c", &dot, out, sizeof(out)), 0);
	assert_string_equal(out, "a_b.c");
	assert_int_equal(imap_rules_dst_name("inbox", &dot_inbox, out, sizeof(out)), 0);
	assert_string_equal(out, "INBOX");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map_delimiters), cmocka_unit_test(test_map_special_use),
	    cmocka_unit_test(test_map_too_long),   cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_excluded),       cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_rules),          cmocka_unit_test(test_rule_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
