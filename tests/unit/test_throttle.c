/* Recognising "slow down" answers (lib/imap/throttle). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "throttle.h"

/* Asserts that text is throttling with the given suggested wait. */
static void throttled(const char *text, int expected_s)
{
	int backoff = -1;

	assert_true(imap_throttle_classify(text, &backoff));
	assert_int_equal(backoff, expected_s);
}

static void not_throttled(const char *text)
{
	int backoff = -1;

	assert_false(imap_throttle_classify(text, &backoff));
	assert_int_equal(backoff, -1); /* untouched */
}

static void test_exchange_backoff_ms(void **state)
{
	(void)state;
	/* Office 365's wording; milliseconds round up to whole seconds. */
	throttled("A12 NO [THROTTLED] Request is throttled. Suggested Backoff Time: 2000 "
	          "milliseconds",
	          2);
	throttled("NO [THROTTLED] Request is throttled. Suggested Backoff Time: 1001 milliseconds",
	          2);
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 250 ms", 1);
	throttled("a1 no [throttled] suggested backoff time: 0 MILLISECONDS", 0);
	/* The phrase alone is enough, code or not. */
	throttled("a1 NO Request is throttled. Suggested Backoff Time: 4000 milliseconds", 4);
	/* No wait given. */
	throttled("a1 NO [THROTTLED] Account is temporarily throttled", 0);
	/* The backoff does not depend on the tag being there. */
	throttled("* BYE [THROTTLED] Suggested Backoff Time: 1500 milliseconds", 2);
}

static void test_seconds_units(void **state)
{
	(void)state;
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 30 seconds", 30);
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 1 second", 1);
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 7 s", 7);
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 12sec", 12);
	/* Without a unit: seconds. */
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 5", 5);
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 5.", 5);
	/* A server bug does not park us for years. */
	throttled("a1 NO [THROTTLED] Suggested Backoff Time: 99999999999999999999 seconds", 86400);
}

static void test_unavailable(void **state)
{
	(void)state;
	/* RFC 5530 3: temporary failure, try again later. */
	throttled("a3 NO [UNAVAILABLE] Temporary failure, try again", 0);
	throttled("a3 BAD [UNAVAILABLE]", 0);
	throttled("* BYE [UNAVAILABLE] Server busy, try again later", 0);
	/* A code is only a code where RFC 3501 puts it. */
	not_throttled("a3 NO Mailbox [UNAVAILABLE] is a strange name");
}

static void test_bye_load(void **state)
{
	(void)state;
	throttled("* BYE Server busy", 0);
	throttled("* BYE Too many simultaneous connections. (Failure)", 0);
	throttled("* BYE System overloaded, please try again later", 0);
	throttled("* BYE Rate limit exceeded", 0);
	throttled("* BYE You are being throttled", 0);
	throttled("BYE Try Again Later", 0);
}

static void test_plain_bye(void **state)
{
	(void)state;
	not_throttled("* BYE Logging out");
	not_throttled("* BYE Server shutting down.");
	not_throttled("* BYE Disconnected for inactivity.");
	not_throttled("* BYE");
	/* Dovecot's connection limit: not load, stays a lost connection. */
	not_throttled("* BYE Maximum number of connections from user+IP exceeded "
	              "(mail_max_userip_connections=10)");
}

static void test_limit_is_not_throttling(void **state)
{
	(void)state;
	/* RFC 5530 [LIMIT]: a size or count limit; retrying will not help. */
	not_throttled("a7 NO [LIMIT] Message too large");
	not_throttled("a7 NO [LIMIT] Too many messages in this folder");
	not_throttled("* BYE [LIMIT] Too many connections, try again later");
	not_throttled("a7 NO [LIMIT] Suggested Backoff Time: 10 seconds");
}

static void test_other_refusals(void **state)
{
	(void)state;
	not_throttled("a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
	not_throttled("a1 NO [AUTHORIZATIONFAILED] Authorization failed");
	not_throttled("a2 NO [NONEXISTENT] Mailbox doesn't exist: Foo");
	not_throttled("a2 NO [TRYCREATE] Mailbox doesn't exist: Foo");
	not_throttled("a2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)");
	not_throttled("a2 BAD Error in IMAP command: Unknown command");
	/* Only a BYE is judged by its words. */
	not_throttled("a2 NO Server busy");
	/* OK is never a refusal. */
	not_throttled("a4 OK [THROTTLED] done");
	not_throttled("* OK [UNAVAILABLE] Suggested Backoff Time: 10 seconds");
	not_throttled("");
	not_throttled("garbage");
}

static void test_null_backoff(void **state)
{
	(void)state;
	assert_true(imap_throttle_classify("a1 NO [THROTTLED] x", NULL));
	assert_false(imap_throttle_classify("a1 NO [LIMIT] x", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exchange_backoff_ms),
	    cmocka_unit_test(test_seconds_units),
	    cmocka_unit_test(test_unavailable),
	    cmocka_unit_test(test_bye_load),
	    cmocka_unit_test(test_plain_bye),
	    cmocka_unit_test(test_limit_is_not_throttling),
	    cmocka_unit_test(test_other_refusals),
	    cmocka_unit_test(test_null_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
