/* The account states (lib/store/account_state.h): names round-trip, and the
 * database's CHECK constraints list exactly the names table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "account_state.h"
#include "schema.h"

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < ACCOUNT_STATE_COUNT; i++) {
		enum account_state parsed = ACCOUNT_STATE_COUNT;
		const char *name = account_state_name((enum account_state)i);

		assert_string_not_equal(name, "?");
		assert_int_equal(account_state_parse(name, &parsed), 0);
		assert_int_equal(parsed, i);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(name, account_state_name((enum account_state)j));
	}
	assert_int_equal(ACCOUNT_STATE_COUNT, 12);
	assert_string_equal(account_state_name(ACCOUNT_STATE_SYNCED), "synced");
	assert_string_equal(account_state_name(ACCOUNT_STATE_COUNT), "?");
}

static void test_parse_unknown(void **state)
{
	enum account_state parsed = ACCOUNT_STATE_NEW;

	(void)state;
	assert_int_equal(account_state_parse("", &parsed), -1);
	assert_int_equal(account_state_parse("Synced", &parsed), -1);
	assert_int_equal(account_state_parse("synced ", &parsed), -1);
	assert_int_equal(account_state_parse("removed", &parsed), -1);
	assert_int_equal(parsed, ACCOUNT_STATE_NEW); /* untouched */
}

/* The list the names table makes: 'new', 'verified', ... */
static void names_sql(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < ACCOUNT_STATE_COUNT; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s'%s'", i > 0 ? ", " : "",
		                      account_state_name((enum account_state)i));
	assert_true(n < len);
}

/* Every column holding an account state has a CHECK with exactly the
 * names, in one migration after the tables exist. */
static void test_check_constraints_match(void **state)
{
	const char *constraints[] = {
	    "accounts_state  CHECK (state IN (%s))",
	    "pass_accounts_state  CHECK (state IN (%s))",
	    "account_log_to_state  CHECK (to_state IN (%s))",
	};
	char list[512], want[1400];
	const char *sql = NULL;

	(void)state;
	names_sql(list, sizeof(list));
	for (size_t i = 0; i < schema_count(); i++)
		if (strstr(schema_sql(i), "ADD CONSTRAINT accounts_state") != NULL)
			sql = schema_sql(i);
	assert_non_null(sql);
	for (size_t i = 0; i < sizeof(constraints) / sizeof(constraints[0]); i++) {
		snprintf(want, sizeof(want), constraints[i], list);
		if (strstr(sql, want) == NULL)
			fail_msg("migration lacks \"%s\":\n%s", want, sql);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_round_trip),
	    cmocka_unit_test(test_parse_unknown),
	    cmocka_unit_test(test_check_constraints_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
