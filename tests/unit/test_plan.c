/* coordinator/plan: plan JSON and accounts CSV parsing, and their error texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "store-view.h"

#define ERRLEN 8192

struct fixture {
	char dir[64];
};

static struct fixture fx;

static int setup(void **state)
{
	(void)state;
	(void)snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_plan.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Writes content to dir/name; returns the path in a static buffer per slot. */
static const char *write_file(int slot, const char *name, const char *content)
{
	static char paths[2][256];
	FILE *fp;
	int n = snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", fx.dir, name);

	assert_true(n > 0 && (size_t)n < sizeof(paths[slot]));
	fp = fopen(paths[slot], "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, strlen(content), fp), strlen(content));
	assert_int_equal(fclose(fp), 0);
	return paths[slot];
}

/* Expected message with the temp dir substituted for every "@". */
static const char *expect(const char *fmt)
{
	static char buf[ERRLEN];
	size_t used = 0;
	const char *p;

	for (p = fmt; *p != '\0'; p++) {
		const char *piece = *p == '@' ? fx.dir : p;
		size_t len = *p == '@' ? strlen(fx.dir) : 1;

		assert_true(used + len < sizeof(buf));
		memcpy(buf + used, piece, len);
		used += len;
	}
	buf[used] = '\0';
	return buf;
}

static const char good_plan[] =
    "{ \"name\": \"acme\",\n"
    "  \"source\": {\"host\": \"127.0.0.1\", \"port\": 14301, \"tls\": \"none\", "
    "\"ca_file\": null, \"auth\": \"login\", \"master_user\": \"admin\", "
    "\"master_password\": \"AdminPW\", \"max_connections\": 7, \"prefix\": \"INBOX.\", "
    "\"exclude\": [\"Trash\", \"Spam Folder\"]},\n"
    "  \"destination\": {\"host\": \"imap.example\", \"ca_file\": \"/x/ca.pem\"},\n"
    "  \"accounts\": \"accounts.csv\" }\n";

/* BOM, header aliases in odd case with blanks, CRLF, quoted fields with "" and
 * an embedded comma and line break, a blank line, no final line end. */
static const char good_csv[] =
    "\xef\xbb\xbf Source_Login , Password ,dst_login,DST_PASSWORD, priority\r\n"
    "alice@a.example,\"pa,ss\"\"1\",,,\r\n"
    " bob@a.example ,\"line1\r\nline2\",bob@b.example,\"d,pw\",1\r\n"
    "\r\n"
    "carol@a.example,c ,,,9";

static void test_good_plan(void **state)
{
	struct plan *plan = NULL;
	char err[ERRLEN] = "";
	const struct plan_account *a;

	(void)state;
	write_file(1, "accounts.csv", good_csv);
	assert_int_equal(plan_load(write_file(0, "plan.json", good_plan), &plan, err, sizeof(err)),
	                 0);
	assert_string_equal(err, "");
	assert_non_null(plan);
	assert_string_equal(plan->name, "acme");

	assert_string_equal(plan->srcs[0].host, "127.0.0.1");
	assert_int_equal(plan->srcs[0].port, 14301);
	assert_string_equal(plan->srcs[0].tls, "none");
	assert_null(plan->srcs[0].ca_file);
	assert_string_equal(plan->srcs[0].auth, "login");
	assert_string_equal(plan->srcs[0].master_user, "admin");
	assert_string_equal(plan->src_master_passwords[0], "AdminPW");
	assert_int_equal(plan->srcs[0].max_connections, 7);
	assert_string_equal(plan->srcs[0].prefix, "INBOX.");
	assert_string_equal(plan->srcs[0].exclude, "Trash,Spam Folder");

	/* Defaults. */
	assert_string_equal(plan->dst.host, "imap.example");
	assert_int_equal(plan->dst.port, 993);
	assert_string_equal(plan->dst.tls, "implicit");
	assert_string_equal(plan->dst.ca_file, "/x/ca.pem");
	assert_string_equal(plan->dst.auth, "plain");
	assert_null(plan->dst.master_user);
	assert_null(plan->dst_master_password);
	assert_int_equal(plan->dst.max_connections, 10);
	assert_string_equal(plan->dst.prefix, "");
	assert_string_equal(plan->dst.exclude, "");

	assert_string_equal(plan->accounts_path, expect("@/accounts.csv"));
	assert_int_equal(plan->naccounts, 3);
	a = &plan->accounts[0];
	assert_string_equal(a->src_login, "alice@a.example");
	assert_string_equal(a->src_password, "pa,ss\"1");
	assert_string_equal(a->dst_login, "alice@a.example");
	assert_null(a->dst_password);
	assert_int_equal(a->priority, 5);
	assert_int_equal(a->line, 2);
	a = &plan->accounts[1];
	assert_string_equal(a->src_login, "bob@a.example");
	assert_string_equal(a->src_password, "line1\r\nline2");
	assert_string_equal(a->dst_login, "bob@b.example");
	assert_string_equal(a->dst_password, "d,pw");
	assert_int_equal(a->priority, 1);
	assert_int_equal(a->line, 3);
	a = &plan->accounts[2];
	assert_string_equal(a->src_login, "carol@a.example");
	assert_string_equal(a->src_password, "c "); /* passwords are not trimmed */
	assert_int_equal(a->priority, 9);
	assert_int_equal(a->line, 6);

	plan_destroy(&plan);
	assert_null(plan);
	plan_destroy(&plan);
}

static void test_port_default_starttls(void **state)
{
	struct plan *plan = NULL;
	char err[ERRLEN] = "";

	(void)state;
	assert_int_equal(
	    plan_load(write_file(0, "p.json",
	                         "{\"name\":\"n\",\"source\":{\"host\":\"s\",\"tls\":\"starttls\"},"
	                         "\"destination\":{\"host\":\"d\",\"tls\":\"none\"}}"),
	              &plan, err, sizeof(err)),
	    0);
	assert_int_equal(plan->srcs[0].port, 143);
	assert_int_equal(plan->dst.port, 143);
	assert_null(plan->accounts_path);
	assert_int_equal(plan->naccounts, 0);
	plan_destroy(&plan);
}

/* Loads a CSV into a plan and checks the exact error text and that nothing was
 * imported, and that no password appears in the text. */
static void check_csv_error(const char *csv, const char *expected_fmt)
{
	struct plan plan = {0};
	char err[ERRLEN] = "";
	const char *path = write_file(1, "bad.csv", csv);

	assert_int_equal(plan_accounts_parse(path, &plan, err, sizeof(err)), -1);
	assert_string_equal(err, expect(expected_fmt));
	assert_null(plan.accounts);
	assert_int_equal(plan.naccounts, 0);
	assert_null(strstr(err, "S3cret"));
}

static void test_csv_each_error(void **state)
{
	(void)state;
	check_csv_error("source_login,source_password,priority\n"
	                "alice,S3cret1,\n"
	                "bob,,1\n",
	                "@/bad.csv:3: column 2 (source_password): empty");
	check_csv_error("source_login,source_password\n"
	                "  ,S3cret1\n",
	                "@/bad.csv:2: column 1 (source_login): empty");
	check_csv_error("user,password\n"
	                "alice,S3cret1\n"
	                "bob,S3cret2,extra\n",
	                "@/bad.csv:3: has 3 fields, the header has 2");
	check_csv_error("source_login,source_password,priority\n"
	                "alice,S3cret1,high\n",
	                "@/bad.csv:2: column 3 (priority): must be an integer 1..9");
	check_csv_error("source_login,source_password,priority\r\n"
	                "alice,S3cret1,10\r\n",
	                "@/bad.csv:2: column 3 (priority): must be an integer 1..9");
	check_csv_error("source_login,source_password\n"
	                "alice@x,S3cret1\n"
	                "bob@x,S3cret2\n"
	                "ALICE@x,S3cret3\n",
	                "@/bad.csv:4: column 1 (source_login): duplicate of line 2");
	check_csv_error("source_login,source_password\n"
	                "alice,S3cret1\n"
	                "bob,\"S3cret2\n"
	                "carol,S3cret3\n",
	                "@/bad.csv:3: column 2 (source_password): unterminated quote");
	check_csv_error("source_login,source_password\n"
	                "alice,\"S3cret1\"x\n",
	                "@/bad.csv:2: column 2 (source_password): text after the closing quote");
	check_csv_error("source_login,source_password\n"
	                "alice,S3c\"ret1\n",
	                "@/bad.csv:2: column 2 (source_password): quote inside an unquoted field "
	                "(quote the whole field and double the quote)");
	check_csv_error("source_login,source_password,Prio\n"
	                "alice,S3cret1,1\n",
	                "@/bad.csv:1: column 3 (Prio): unknown column");
	check_csv_error("source_login,priority\n", "@/bad.csv:1: missing column source_password");
	check_csv_error("user,source_login,password\n",
	                "@/bad.csv:1: column 2 (source_login): same column as column 1 (user)");
	check_csv_error("alice,S3cret1\n",
	                "@/bad.csv:1: no header row: the first line must name the columns "
	                "(source_login, source_password, destination_login, "
	                "destination_password, priority)");
	check_csv_error("", "@/bad.csv: empty file: a header row is required");
	check_csv_error("\xff\xfes\0", "@/bad.csv: file is UTF-16; save it as UTF-8");
}

/* All errors of a file are reported at once, in line order. */
static void test_csv_all_errors(void **state)
{
	(void)state;
	check_csv_error("source_login,source_password,priority\n"
	                "alice,S3cret1,\n"
	                "bob,,\n"
	                "\"carol\n"
	                "x\",S3cret3,0\n"
	                "alice,S3cret4,2\n"
	                "dave,S3cret5\n"
	                "erin,S3cret6,3\n",
	                "@/bad.csv:3: column 2 (source_password): empty\n"
	                "@/bad.csv:4: column 1 (source_login): contains a control character\n"
	                "@/bad.csv:4: column 3 (priority): must be an integer 1..9\n"
	                "@/bad.csv:6: column 1 (source_login): duplicate of line 2\n"
	                "@/bad.csv:7: has 2 fields, the header has 3");
}

static void test_csv_error_cap(void **state)
{
	char csv[8192] = "source_login,source_password\n";
	struct plan plan = {0};
	char err[ERRLEN] = "";
	size_t used = strlen(csv);
	const char *path, *last;
	int i, n, lines = 0;

	(void)state;
	for (i = 0; i < 60; i++) {
		n = snprintf(csv + used, sizeof(csv) - used, "user%d,\n", i);
		assert_true(n > 0 && (size_t)n < sizeof(csv) - used);
		used += (size_t)n;
	}
	path = write_file(1, "cap.csv", csv);
	assert_int_equal(plan_accounts_parse(path, &plan, err, sizeof(err)), -1);
	for (i = 0; err[i] != '\0'; i++)
		lines += err[i] == '\n';
	assert_int_equal(lines, PLAN_MAX_ERRORS);
	last = strrchr(err, '\n') + 1;
	assert_string_equal(last, "... and 1 more errors");
	assert_null(plan.accounts);
}

static void check_plan_error(const char *json, const char *expected_fmt)
{
	struct plan *plan = (struct plan *)&plan;
	char err[ERRLEN] = "";

	assert_int_equal(plan_load(write_file(0, "plan.json", json), &plan, err, sizeof(err)), -1);
	assert_null(plan);
	assert_string_equal(err, expect(expected_fmt));
	assert_null(strstr(err, "S3cret"));
}

#define SRC_OK "\"source\":{\"host\":\"s\"}"
#define DST_OK "\"destination\":{\"host\":\"d\"}"

static void test_plan_errors(void **state)
{
	struct plan *plan = NULL;
	char err[ERRLEN] = "";

	(void)state;
	check_plan_error("{\"name\":\"n\",\"source\":{\"host\":\"s\",\"port\":70000}," DST_OK "}",
	                 "@/plan.json: source.port: must be an integer 1..65535");
	check_plan_error("{\"name\":\"n\",\"source\":{\"host\":\"s\",\"port\":\"143\"}," DST_OK "}",
	                 "@/plan.json: source.port: must be an integer 1..65535");
	check_plan_error("{\"name\":\"n\",\"source\":{\"host\":\"s\",\"port\":143.0}," DST_OK "}",
	                 "@/plan.json: source.port: must be an integer 1..65535");
	check_plan_error("{\"name\":\"n\"," SRC_OK ",\"destination\":{\"hots\":\"d\"}}",
	                 "@/plan.json: destination.hots: unknown key\n"
	                 "@/plan.json: destination.host: missing");
	check_plan_error("{\"name\":\"n\"," SRC_OK "," DST_OK ",\"acounts\":\"a.csv\"}",
	                 "@/plan.json: acounts: unknown key");
	check_plan_error("{\"name\":\"n\"," SRC_OK
	                 ",\"destination\":{\"host\":\"d\",\"tls\":\"ssl\"}}",
	                 "@/plan.json: destination.tls: must be one of implicit|starttls|none");
	check_plan_error("{\"name\":\"n\",\"source\":{\"host\":\"s\",\"auth\":\"cram\","
	                 "\"max_connections\":0,\"exclude\":[\"Trash\",\"a,b\"],"
	                 "\"master_password\":\"S3cret\"}," DST_OK "}",
	                 "@/plan.json: source.auth: must be one of login|plain|xoauth2\n"
	                 "@/plan.json: source.master_password: given without master_user\n"
	                 "@/plan.json: source.max_connections: must be an integer 1..1000\n"
	                 "@/plan.json: source.exclude[1]: must be a non-empty folder name without "
	                 "commas");
	check_plan_error("{\"name\":\"n\"," SRC_OK "}", "@/plan.json: destination: missing");
	check_plan_error("[1]", "@/plan.json: the plan must be a JSON object");

	/* Syntax error: jansson's line and column. */
	assert_int_equal(plan_load(write_file(0, "plan.json",
	                                      "{\"name\": \"n\",\n"
	                                      " " SRC_OK ",\n"
	                                      " " DST_OK "\n"
	                                      " \"accounts\": \"a.csv\"}\n"),
	                           &plan, err, sizeof(err)),
	                 -1);
	assert_null(plan);
	assert_string_equal(err, expect("@/plan.json:4:11: '}' expected near '\"accounts\"'"));

	/* A missing file. */
	assert_int_equal(plan_load(expect("@/none.json"), &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, expect("@/none.json")));
	assert_non_null(strstr(err, "No such file or directory"));

	/* A CSV error fails the whole plan. */
	write_file(1, "accounts.csv", "source_login,source_password\nalice,\n");
	check_plan_error("{\"name\":\"n\"," SRC_OK "," DST_OK ",\"accounts\":\"accounts.csv\"}",
	                 "@/accounts.csv:2: column 2 (source_password): empty");
}

/* Several source profiles picked per account, rate limits, daily caps and
 * blackout windows, and their errors. */
static void test_profiles_limits_blackouts(void **state)
{
	struct plan *plan = NULL;
	char err[ERRLEN] = "";

	(void)state;
	write_file(1, "accounts.csv",
	           "source_login,source_password,Source\n"
	           "a@x,pw,old\n"
	           "b@x,pw, legacy \n");
	assert_int_equal(
	    plan_load(
	        write_file(0, "plan.json",
	                   "{\"name\":\"n\",\"sources\":{"
	                   "\"old\":{\"host\":\"s1\",\"max_messages_per_second\":50,"
	                   "\"max_bytes_per_second\":\"2 MB\","
	                   "\"blackout\":[{\"days\":\"mon-fri\",\"from\":\"08:00\","
	                   "\"to\":\"18:30\",\"time_zone\":\"Europe/Berlin\"},"
	                   "{\"days\":[\"sat-sun\"],\"from\":\"22:00\",\"to\":\"06:00\"}]},"
	                   "\"legacy\":{\"host\":\"s2\"}},"
	                   "\"destination\":{\"host\":\"d\",\"account_daily_bytes\":\"500MB\"},"
	                   "\"accounts\":\"accounts.csv\"}"),
	        &plan, err, sizeof(err)),
	    0);
	assert_string_equal(err, "");
	assert_int_equal(plan->nsrcs, 2);
	assert_string_equal(plan->srcs[0].name, "old");
	assert_string_equal(plan->srcs[1].name, "legacy");
	assert_int_equal(plan->srcs[0].rate_messages, 50);
	assert_int_equal(plan->srcs[0].rate_bytes, 2000000);
	assert_int_equal(plan->srcs[1].rate_messages, 0);
	assert_int_equal(plan->dst.account_daily_bytes, 500000000);
	assert_int_equal(plan->srcs[0].nblackouts, 2);
	assert_int_equal(plan->srcs[0].blackouts[0].weekdays, 0x1f);
	assert_int_equal(plan->srcs[0].blackouts[0].from_s, 8 * 3600);
	assert_int_equal(plan->srcs[0].blackouts[0].to_s, 18 * 3600 + 1800);
	assert_string_equal(plan->srcs[0].blackouts[0].time_zone, "Europe/Berlin");
	assert_int_equal(plan->srcs[0].blackouts[1].weekdays, 0x60);
	assert_string_equal(plan->srcs[0].blackouts[1].time_zone, "UTC");
	assert_int_equal(plan->naccounts, 2);
	assert_int_equal(plan->accounts[0].source, 0);
	assert_int_equal(plan->accounts[1].source, 1);
	plan_destroy(&plan);

	/* An unknown profile and a missing one, with line and column. */
	write_file(1, "accounts.csv",
	           "source_login,source_password,source\na@x,pw,nope\nb@x,pw,\n");
	check_plan_error("{\"name\":\"n\",\"sources\":{\"old\":{\"host\":\"s1\"},"
	                 "\"legacy\":{\"host\":\"s2\"}}," DST_OK ",\"accounts\":\"accounts.csv\"}",
	                 "@/accounts.csv:2: column 3 (source): unknown source profile \"nope\" "
	                 "(the plan has: old legacy)\n"
	                 "@/accounts.csv:3: column 3 (source): the plan has several source "
	                 "profiles: name one in column source");
	check_plan_error("{\"name\":\"n\"," SRC_OK ",\"sources\":{\"a\":{\"host\":\"s\"}}," DST_OK
	                 "}",
	                 "@/plan.json: source and sources: give one of them");
	check_plan_error("{\"name\":\"n\",\"source\":{\"host\":\"s\",\"max_bytes_per_second\":"
	                 "\"fast\",\"blackout\":[{\"days\":\"someday\",\"from\":\"25:00\","
	                 "\"to\":\"8\",\"tz\":1}]}," DST_OK "}",
	                 "@/plan.json: source.max_bytes_per_second: must be a whole number or "
	                 "a size like \"500MB\" or \"2GiB\"\n"
	                 "@/plan.json: source.blackout[0].tz: unknown key\n"
	                 "@/plan.json: source.blackout[0].days[0]: not a day: use mon..sun, a "
	                 "range like mon-fri, daily, weekdays or weekends\n"
	                 "@/plan.json: source.blackout[0].from: must be a time \"HH:MM\"\n"
	                 "@/plan.json: source.blackout[0].to: must be a time \"HH:MM\"");
}

/* Sizes and rates: overflow, negatives, fractions and absurd values are
 * refused with the JSON path ("1e17TiB" once wrapped to a negative number,
 * which meant no limit); the bounds themselves are accepted. */
static void test_sizes_and_rates(void **state)
{
	static const struct {
		const char *key, *value, *error;
	} bad[] = {
	    {"max_bytes_per_second", "\"1e17TiB\"",
	     "at most 1 PiB (1125899906842624 bytes) per second"},
	    {"max_bytes_per_second", "\"1e300\"",
	     "at most 1 PiB (1125899906842624 bytes) per second"},
	    {"max_bytes_per_second", "\"1e5000\"",
	     "must be a whole number or a size like \"500MB\" or \"2GiB\""},
	    {"max_bytes_per_second", "9223372036854775807",
	     "at most 1 PiB (1125899906842624 bytes) per second"},
	    {"max_bytes_per_second", "-5", "must not be negative"},
	    {"max_bytes_per_second", "\"-5MB\"", "must not be negative"},
	    {"max_bytes_per_second", "\"0.5\"", "must be a whole number after its unit"},
	    {"max_bytes_per_second", "1.5",
	     "must be a whole number (or a string with a unit, like \"1.5GB\")"},
	    {"max_bytes_per_second", "\"nan\"",
	     "must be a whole number or a size like \"500MB\" or \"2GiB\""},
	    {"max_bytes_per_second", "\"inf\"",
	     "must be a whole number or a size like \"500MB\" or \"2GiB\""},
	    {"max_bytes_per_second", "\"5 parsecs\"",
	     "unknown unit: use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"},
	    {"max_bytes_per_second", "true",
	     "must be a whole number or a size like \"500MB\" or \"2GiB\""},
	    {"account_daily_bytes", "\"1025TiB\"",
	     "at most 1 PiB (1125899906842624 bytes) per day"},
	    {"account_daily_bytes", "\"-1\"", "must not be negative"},
	    {"max_messages_per_second", "1000001", "at most 1000000 messages per second"},
	    {"max_messages_per_second", "\"2.5\"", "must be a whole number after its unit"},
	    {"max_messages_per_second", "-1", "must not be negative"},
	    {"max_messages_per_second", "\"1e10\"", "at most 1000000 messages per second"},
	};
	struct plan *plan = NULL;
	char json[512], expected[512], err[ERRLEN] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(json, sizeof(json),
		               "{\"name\":\"n\",\"source\":{\"host\":\"s\",\"%s\":%s}," DST_OK "}",
		               bad[i].key, bad[i].value);
		(void)snprintf(expected, sizeof(expected), "@/plan.json: source.%s: %s", bad[i].key,
		               bad[i].error);
		check_plan_error(json, expected);
	}
	/* The bounds, and sizes that come out whole. */
	assert_int_equal(plan_load(write_file(0, "plan.json",
	                                      "{\"name\":\"n\",\"source\":{\"host\":\"s\","
	                                      "\"max_bytes_per_second\":\"1024TiB\","
	                                      "\"max_messages_per_second\":\"1000000\","
	                                      "\"account_daily_bytes\":\"1.5kB\"},"
	                                      "\"destination\":{\"host\":\"d\","
	                                      "\"max_bytes_per_second\":1125899906842624,"
	                                      "\"account_daily_bytes\":\" 2 GiB\"}}"),
	                           &plan, err, sizeof(err)),
	                 0);
	assert_string_equal(err, "");
	assert_true(plan->srcs[0].rate_bytes == PLAN_MAX_BYTES);
	assert_int_equal(plan->srcs[0].rate_messages, 1000000);
	assert_int_equal(plan->srcs[0].account_daily_bytes, 1500);
	assert_true(plan->dst.rate_bytes == PLAN_MAX_BYTES);
	assert_true(plan->dst.account_daily_bytes == 2147483648LL);
	plan_destroy(&plan);
}

/* Text fields must be UTF-8 (they go to PostgreSQL and IMAP); the error
 * names the file, line and column.  Passwords stay byte for byte. */
static void test_csv_utf8(void **state)
{
	struct plan plan = {0};
	char err[ERRLEN] = "";
	const char *path;

	(void)state;
	check_csv_error(
	    "source_login,source_password\nok@x,pw\nb\xe4r@x,pw\n",
	    "@/bad.csv:3: column 1 (source_login): not valid UTF-8: byte 0xe4 at byte 2 "
	    "of the field (save the file as UTF-8)");
	/* Overlong, surrogate, truncated, beyond U+10FFFF. */
	check_csv_error("source_login,source_password,destination_login\n"
	                "a@x,pw,\xc0\xafx\n"
	                "b@x,pw,\xed\xa0\x80\n"
	                "c@x,pw,ab\xe2\x82\n"
	                "d@x,pw,\xf4\x90\x80\x80\n",
	                "@/bad.csv:2: column 3 (destination_login): not valid UTF-8: byte 0xc0 at "
	                "byte 1 of the field (save the file as UTF-8)\n"
	                "@/bad.csv:3: column 3 (destination_login): not valid UTF-8: byte 0xed at "
	                "byte 1 of the field (save the file as UTF-8)\n"
	                "@/bad.csv:4: column 3 (destination_login): not valid UTF-8: byte 0xe2 at "
	                "byte 3 of the field (save the file as UTF-8)\n"
	                "@/bad.csv:5: column 3 (destination_login): not valid UTF-8: byte 0xf4 at "
	                "byte 1 of the field (save the file as UTF-8)");
	/* Well-formed multi-byte text passes; a Latin-1 password is kept. */
	path = write_file(1, "ok.csv",
	                  "source_login,source_password\n"
	                  "j\xc3\xbcrgen@x,p\xe4ss\n"
	                  "\xe2\x82\xac\xf0\x9f\x93\xa7@x,pw\n");
	assert_int_equal(plan_accounts_parse(path, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.naccounts, 2);
	assert_string_equal(plan.accounts[0].src_login, "j\xc3\xbcrgen@x");
	assert_string_equal(plan.accounts[0].src_password, "p\xe4ss");
	for (size_t i = 0; i < plan.naccounts; i++) {
		free(plan.accounts[i].src_login);
		free(plan.accounts[i].src_password);
		free(plan.accounts[i].dst_login);
		free(plan.accounts[i].dst_password);
	}
	free(plan.accounts);
}

/* A plan given as text (the API's import): the accounts inline, errors
 * labelled by key or CSV line, no file read. */
static void test_plan_text(void **state)
{
	static const char good[] =
	    "{\"name\": \"t\", \"source\": {\"host\": \"s\", \"tls\": \"none\"},"
	    " \"destination\": {\"host\": \"d\", \"port\": 1993},"
	    " \"accounts_csv\": \"source_login,source_password\\nu1,p1\\nu2,p2\\n\"}";
	struct plan *plan = NULL;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(plan_parse(good, strlen(good), &plan, err, sizeof(err)), 0);
	assert_string_equal(plan->name, "t");
	assert_int_equal(plan->srcs[0].port, 143);
	assert_int_equal(plan->dst.port, 1993);
	assert_int_equal(plan->naccounts, 2);
	assert_string_equal(plan->accounts[1].src_login, "u2");
	assert_null(plan->accounts_path);
	plan_destroy(&plan);

	/* A path is not taken from an API body: "accounts" is unknown there. */
	static const char with_path[] = "{\"name\": \"t\", \"source\": {\"host\": \"s\"},"
	                                " \"destination\": {\"host\": \"d\"},"
	                                " \"accounts\": \"/etc/passwd\", \"accounts_csv\": \"\"}";
	assert_int_equal(plan_parse(with_path, strlen(with_path), &plan, err, sizeof(err)), -1);
	assert_null(plan);
	assert_non_null(strstr(err, "plan: accounts: unknown key"));

	static const char bad_line[] =
	    "{\"name\": \"t\", \"source\": {\"host\": \"s\"}, \"destination\": {\"host\": \"d\"},"
	    " \"accounts_csv\": \"source_login,source_password\\nu1,p1\\n,p2\\n\"}";
	assert_int_equal(plan_parse(bad_line, strlen(bad_line), &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "accounts_csv:3:"));
	/* The passwords of the other lines are not in the error. */
	assert_null(strstr(err, "p1"));

	static const char no_csv[] = "{\"name\": \"t\", \"source\": {\"host\": \"s\"},"
	                             " \"destination\": {\"host\": \"d\"}}";
	assert_int_equal(plan_parse(no_csv, strlen(no_csv), &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "plan: accounts_csv: required"));
}

/* A server patch: only what is given changes; values checked as a plan's. */
static void test_server_patch(void **state)
{
	struct store_server_patch p;
	char err[ERRLEN];
	const char *body;

	(void)state;
	body = "{\"port\": 1143, \"max_connections\": 4, \"rate_bytes\": \"2MB\","
	       " \"ca_file\": null, \"blackouts\": [{\"days\": \"mon-fri\", \"from\": \"22:00\","
	       " \"to\": \"06:00\", \"time_zone\": \"Europe/Paris\"}]}";
	assert_int_equal(plan_server_patch_parse(body, strlen(body), &p, err, sizeof(err)), 0);
	assert_int_equal(p.port, 1143);
	assert_int_equal(p.max_connections, 4);
	assert_int_equal(p.rate_bytes, 2000000);
	assert_int_equal(p.rate_messages, -1); /* not given: unchanged */
	assert_int_equal(p.account_daily_bytes, -1);
	assert_null(p.host);
	assert_true(p.set_ca_file);
	assert_null(p.ca_file);
	assert_true(p.set_blackouts);
	assert_int_equal(p.nblackouts, 1);
	assert_int_equal(p.blackouts[0].weekdays, 0x1f);
	assert_int_equal(p.blackouts[0].from_s, 22 * 3600);
	assert_string_equal(p.blackouts[0].time_zone, "Europe/Paris");
	plan_server_patch_clear(&p);

	body = "{\"blackouts\": []}";
	assert_int_equal(plan_server_patch_parse(body, strlen(body), &p, err, sizeof(err)), 0);
	assert_true(p.set_blackouts);
	assert_int_equal(p.nblackouts, 0);
	assert_false(p.set_ca_file);
	plan_server_patch_clear(&p);

	body = "{\"port\": 0, \"tls\": \"ssl\", \"max_connections\": 5000, \"colour\": 1}";
	assert_int_equal(plan_server_patch_parse(body, strlen(body), &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "server: port:"));
	assert_non_null(strstr(err, "server: tls:"));
	assert_non_null(strstr(err, "server: max_connections:"));
	assert_non_null(strstr(err, "colour"));
	assert_null(p.tls);

	body = "[1]";
	assert_int_equal(plan_server_patch_parse(body, strlen(body), &p, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_plan),
	    cmocka_unit_test(test_port_default_starttls),
	    cmocka_unit_test(test_csv_each_error),
	    cmocka_unit_test(test_csv_all_errors),
	    cmocka_unit_test(test_csv_error_cap),
	    cmocka_unit_test(test_plan_errors),
	    cmocka_unit_test(test_profiles_limits_blackouts),
	    cmocka_unit_test(test_sizes_and_rates),
	    cmocka_unit_test(test_csv_utf8),
	    cmocka_unit_test(test_plan_text),
	    cmocka_unit_test(test_server_patch),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
