/* Folder name mapping, modified UTF-7 decoding and exclusions (lib/imap/names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "names.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map_delimiters), cmocka_unit_test(test_map_special_use),
	    cmocka_unit_test(test_map_too_long),   cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_excluded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
