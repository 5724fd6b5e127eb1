/* lib/dav without a server.  The split of export files: each vCard as it
 * is; calendar components grouped by UID into one VCALENDAR with the
 * calendar's properties (not METHOD) and only the time zones they name;
 * names from UIDs; bad files refused.  Clients: URLs with credentials or
 * another scheme refused; a read-only client sends no write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dav.h"

static void test_vcards(void **state)
{
	static const char vcf[] = "\xef\xbb\xbf"
	                          "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a b\r\nFN:\xc3\x89lodie\r\n"
	                          "END:VCARD\r\n"
	                          "BEGIN:VCARD\nVERSION:4.0\nUID:very-long-uid-\n that-is-folded\n"
	                          "END:VCARD\n"
	                          "BEGIN:VCARD\r\nFN:no uid\r\nEND:VCARD\r\n";
	struct dav_split_object *objs = NULL;
	enum dav_kind kind;
	size_t n = 0;
	char err[256];

	(void)state;
	assert_int_equal(dav_split(vcf, sizeof(vcf) - 1, &kind, &objs, &n, err, sizeof(err)), 0);
	assert_int_equal(kind, DAV_ADDRESSBOOK);
	assert_int_equal(n, 3);
	assert_string_equal(objs[0].uid, "a b");
	assert_string_equal(objs[0].name, "a%20b.vcf");
	assert_string_equal(objs[0].data,
	                    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a b\r\nFN:\xc3\x89lodie\r\n"
	                    "END:VCARD\r\n");
	assert_string_equal(objs[1].uid, "very-long-uid-that-is-folded");
	assert_int_equal(objs[1].data[objs[1].len - 1], '\n');
	assert_null(objs[2].uid);
	assert_memory_equal(objs[2].name, "import-", 7);
	dav_split_free(&objs, n);
	assert_null(objs);
}

static void test_calendar(void **state)
{
	static const char ics[] =
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:PUBLISH\r\n"
	    "PRODID:-//x//EN\r\n"
	    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nEND:VTIMEZONE\r\n"
	    "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nEND:VTIMEZONE\r\n"
	    "BEGIN:VEVENT\r\nUID:r\r\nDTSTART;TZID=Europe/Paris:20260105T09"
	    "0000\r\nRRULE:FREQ=WEEKLY\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
	    "END:VALARM\r\nEND:VEVENT\r\n"
	    "BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n"
	    "BEGIN:VEVENT\r\nUID:r\r\nRECURRENCE-ID;TZID=Europe/Paris:20260112"
	    "T090000\r\nEND:VEVENT\r\n"
	    "END:VCALENDAR\r\n";
	struct dav_split_object *objs = NULL;
	enum dav_kind kind;
	size_t n = 0;
	char err[256];

	(void)state;
	assert_int_equal(dav_split(ics, sizeof(ics) - 1, &kind, &objs, &n, err, sizeof(err)), 0);
	assert_int_equal(kind, DAV_CALENDAR);
	assert_int_equal(n, 2);
	assert_string_equal(objs[0].name, "r.ics");
	assert_string_equal(
	    objs[0].data,
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n"
	    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nEND:VTIMEZONE\r\n"
	    "BEGIN:VEVENT\r\nUID:r\r\nDTSTART;TZID=Europe/Paris:20260105T090000\r\n"
	    "RRULE:FREQ=WEEKLY\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\n"
	    "BEGIN:VEVENT\r\nUID:r\r\nRECURRENCE-ID;TZID=Europe/Paris:20260112T090000\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n");
	assert_string_equal(objs[1].data, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n"
	                                  "BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n");
	dav_split_free(&objs, n);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "hello\r\n",
	    "BEGIN:VCARD\r\nFN:x\r\n",                                 /* not closed */
	    "BEGIN:VCARD\r\nEND:VCARD\r\nstray\r\n",                   /* outside a card */
	    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",    /* unbalanced */
	    "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nBEGIN:VCALENDAR\r\n", /* two */
	};
	struct dav_split_object *objs = NULL;
	enum dav_kind kind;
	size_t n = 0;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(
		    dav_split(bad[i], strlen(bad[i]), &kind, &objs, &n, err, sizeof(err)), -1);
		assert_null(objs);
		assert_true(err[0] != '\0');
	}
}

static void test_names(void **state)
{
	static const char slash[] = "BEGIN:VCARD\r\nUID:a/b\r\nEND:VCARD\r\n";
	struct dav_split_object *objs = NULL;
	enum dav_kind kind;
	size_t n = 0;
	char err[256], name[64];

	(void)state;
	/* A UID with a slash would name another path: hashed instead. */
	assert_int_equal(dav_split(slash, sizeof(slash) - 1, &kind, &objs, &n, err, sizeof(err)),
	                 0);
	assert_memory_equal(objs[0].name, "import-", 7);
	assert_null(strchr(objs[0].name, '/'));
	dav_split_free(&objs, n);
	assert_int_equal(dav_href_name("/a/b/abc.vcf", name, sizeof(name)), 0);
	assert_string_equal(name, "abc.vcf");
	assert_int_equal(dav_href_name("/a/contacts/", name, sizeof(name)), 0);
	assert_string_equal(name, "contacts");
	assert_int_equal(dav_href_name("/", name, sizeof(name)), -1);
}

static void test_clients(void **state)
{
	static const char *const bad[] = {"ftp://x/", "https://u:p@x/", "https:///x", "x"};
	struct dav_endpoint ep = {.user = "u", .password = "secret-pw"};
	struct dav_client *c = NULL;
	char err[256], *etag = NULL;
	long status = -1;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ep.url = bad[i];
		assert_int_equal(dav_client_create(&ep, &c, err, sizeof(err)), DAV_EFAIL);
		assert_null(c);
	}
	/* Port 9 on loopback: a request that went out would fail with
	 * DAV_ENET, not be refused. */
	/* An @ in the path is no credential. */
	ep.url = "https://127.0.0.1:9/dav/bob@example.org/";
	assert_int_equal(dav_client_create(&ep, &c, err, sizeof(err)), 0);
	dav_client_destroy(&c);
	ep.url = "https://127.0.0.1:9/dav/";
	ep.read_only = true;
	assert_int_equal(dav_client_create(&ep, &c, err, sizeof(err)), 0);
	assert_int_equal(
	    dav_put(c, "/dav/a.vcf", "x", 1, "text/vcard", NULL, &etag, &status, err, sizeof(err)),
	    DAV_EFAIL);
	assert_non_null(strstr(err, "refused"));
	assert_null(strstr(err, "secret-pw"));
	struct dav_collection col = {.kind = DAV_CALENDAR};
	assert_int_equal(dav_create(c, "/dav/cal/", &col, &status, err, sizeof(err)), DAV_EFAIL);
	assert_int_equal(dav_client_requests(c), 0);
	dav_client_destroy(&c);
	assert_null(c);
	dav_client_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vcards),  cmocka_unit_test(test_calendar),
	    cmocka_unit_test(test_refused), cmocka_unit_test(test_names),
	    cmocka_unit_test(test_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
