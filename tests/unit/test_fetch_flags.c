/* Flags of a fetched message as lib/imap writes them into imap_msg.flags
 * (imap_flags_format in fetch.c): system flags by name, keywords and
 * extension flags as given, \Recent left out, and never part of a flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

/* A FLAGS item from a list of words: "\Seen" and the other system flags,
 * "\Recent", "\Name" (an extension) or a keyword. */
static struct mailimap_msg_att_dynamic *dyn_of(const char *const *words, size_t n)
{
	clist *list = clist_new();

	assert_non_null(list);
	for (size_t i = 0; i < n; i++) {
		const char *w = words[i];
		struct mailimap_flag *f = NULL;
		int type = MAILIMAP_FLAG_FETCH_OTHER;

		if (strcmp(w, "\\Recent") == 0)
			type = MAILIMAP_FLAG_FETCH_RECENT;
		else if (strcmp(w, "\\Seen") == 0)
			f = mailimap_flag_new_seen();
		else if (strcmp(w, "\\Answered") == 0)
			f = mailimap_flag_new_answered();
		else if (strcmp(w, "\\Flagged") == 0)
			f = mailimap_flag_new_flagged();
		else if (strcmp(w, "\\Deleted") == 0)
			f = mailimap_flag_new_deleted();
		else if (strcmp(w, "\\Draft") == 0)
			f = mailimap_flag_new_draft();
		else if (w[0] == '\\')
			f = mailimap_flag_new_flag_extension(strdup(w + 1));
		else
			f = mailimap_flag_new_flag_keyword(strdup(w));
		assert_int_equal(clist_append(list, mailimap_flag_fetch_new(type, f)), 0);
	}
	return mailimap_msg_att_dynamic_new(list);
}

static void formats(const char *const *words, size_t n, size_t buflen, const char *want)
{
	struct mailimap_msg_att_dynamic *dyn = dyn_of(words, n);
	char buf[300];

	assert_true(buflen <= sizeof(buf));
	memset(buf, 'z', sizeof(buf));
	imap_flags_format(dyn, buf, buflen);
	assert_string_equal(buf, want);
	mailimap_msg_att_dynamic_free(dyn);
}

#define WORDS(...)                                                                                 \
	((const char *const[]){__VA_ARGS__}),                                                      \
	    (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void test_none(void **state)
{
	char buf[8] = "zzzzzzz";

	(void)state;
	imap_flags_format(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");
	formats(NULL, 0, 256, "");
}

static void test_system_keywords_extensions(void **state)
{
	(void)state;
	formats(WORDS("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"), 256,
	        "\\Seen \\Answered \\Flagged \\Deleted \\Draft");
	/* Order as the server sent it; keywords and extensions as they are. */
	formats(WORDS("$Label1", "\\Seen", "NonJunk", "\\Custom"), 256,
	        "$Label1 \\Seen NonJunk \\Custom");
}

static void test_recent_dropped(void **state)
{
	(void)state;
	formats(WORDS("\\Recent"), 256, "");
	formats(WORDS("\\Seen", "\\Recent", "$X"), 256, "\\Seen $X");
}

/* A flag that does not fit is left out whole: never a cut keyword, which
 * would reach the destination as a flag the source never had. */
static void test_never_part_of_a_flag(void **state)
{
	(void)state;
	/* "\Seen $Label1" is 13 bytes; " $Label2" would end at 21. */
	formats(WORDS("\\Seen", "$Label1", "$Label2"), 20, "\\Seen $Label1");
	/* Exactly fitting (21 bytes with the NUL). */
	formats(WORDS("\\Seen", "$Label1", "$Label2"), 22, "\\Seen $Label1 $Label2");
	formats(WORDS("$Label1", "$Label2"), 16, "$Label1 $Label2");
	formats(WORDS("$Label1", "$Label2"), 15, "$Label1");
	/* A shorter one after a left-out one still goes. */
	formats(WORDS("\\Seen", "$AVeryLongKeyword", "$Y"), 12, "\\Seen $Y");
}

/* An extension flag is cut nowhere either, however long. */
static void test_long_extension(void **state)
{
	char ext[200];

	(void)state;
	ext[0] = '\\';
	memset(ext + 1, 'e', 150);
	ext[151] = '\0';
	formats(WORDS("\\Seen", ext, "$Y"), 300, "\\Seen $Y");
	ext[100] = '\0'; /* 100 bytes: fits */
	formats(WORDS(ext), 300, ext);
}

static void test_full_buffer_of_keywords(void **state)
{
	char *words[40];
	char want[300] = "";
	struct mailimap_msg_att_dynamic *dyn;
	char buf[256];

	(void)state;
	/* 40 keywords of 9 bytes ("$Kwd00000"): 25 fit in 256 with their
	 * spaces (25 * 10 - 1 = 249), the 26th would end at 259. */
	for (int i = 0; i < 40; i++) {
		words[i] = malloc(16);
		assert_non_null(words[i]);
		snprintf(words[i], 16, "$Kwd%05d", i);
		if (i < 25)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
			         i > 0 ? " " : "", words[i]);
	}
	dyn = dyn_of((const char *const *)words, 40);
	imap_flags_format(dyn, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(strlen(buf), 249);
	mailimap_msg_att_dynamic_free(dyn);
	for (int i = 0; i < 40; i++)
		free(words[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_none),
	    cmocka_unit_test(test_system_keywords_extensions),
	    cmocka_unit_test(test_recent_dropped),
	    cmocka_unit_test(test_never_part_of_a_flag),
	    cmocka_unit_test(test_full_buffer_of_keywords),
	    cmocka_unit_test(test_long_extension),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
