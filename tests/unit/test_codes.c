/* The named error codes of every layer are pairwise distinct: a value that
 * travels up from lib/store through a worker function returning IMAP codes
 * can never be taken for another layer's code.  Ranges (-1 is "failed, see
 * err" everywhere): lib/imap -2..-9, lib/store -20..-29, lib/queue -30..-39,
 * lib/account -40..-49, lib/secret -50..-59, lib/oauth -60..-69, the worker
 * lib/account -40..-49, lib/secret -50..-59, lib/dav -70..-79, the worker
 * -100..-109. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "account.h"
#include "dav.h"
#include "imap.h"
#include "oauth.h"
#include "store-lease.h"
#include "sync-private.h"

#define IN_RANGE(code, lo, hi) ((code) >= (lo) && (code) <= (hi))

_Static_assert(IN_RANGE(IMAP_ENET, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(IMAP_EAUTH, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(IMAP_ENO, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(IMAP_ETHROTTLED, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(IMAP_ELIMIT, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(IMAP_EPROTO, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(IMAP_EARG, -9, -2), "lib/imap codes in -2..-9");
_Static_assert(IN_RANGE(STORE_LEASE_LOST, -29, -20), "lib/store codes in -20..-29");
_Static_assert(IN_RANGE(ACCOUNT_KEY_FAILED, -49, -40), "lib/account codes in -40..-49");
_Static_assert(IN_RANGE(OAUTH_EREFUSED, -69, -60), "lib/oauth codes in -60..-69");
_Static_assert(IN_RANGE(OAUTH_EDOWN, -69, -60), "lib/oauth codes in -60..-69");
_Static_assert(IN_RANGE(DAV_EFAIL, -79, -70), "lib/dav codes in -70..-79");
_Static_assert(IN_RANGE(DAV_ENET, -79, -70), "lib/dav codes in -70..-79");
_Static_assert(IN_RANGE(DAV_EAUTH, -79, -70), "lib/dav codes in -70..-79");
_Static_assert(IN_RANGE(DAV_ESTATUS, -79, -70), "lib/dav codes in -70..-79");
_Static_assert(IN_RANGE(FOLDERS_TOO_MANY, -109, -100), "worker codes in -100..-109");
/* Positive results are not errors: a caller testing ret < 0 sees none. */
_Static_assert(STORE_TAKEN == 0 && STORE_BUSY > 0, "store_*_take results");
_Static_assert(RUN_STOP > 0, "a stop is not an error");

struct code {
	const char *name;
	int value;
};

#define CODE(c)                                                                                    \
	{                                                                                          \
#c, c                                                                              \
	}
static const struct code codes[] = {
    {"generic failure", -1}, CODE(IMAP_ENET),          CODE(IMAP_EAUTH),       CODE(IMAP_ENO),
    CODE(IMAP_ETHROTTLED),   CODE(IMAP_ELIMIT),        CODE(IMAP_EPROTO),      CODE(IMAP_EARG),
    CODE(STORE_LEASE_LOST),  CODE(ACCOUNT_KEY_FAILED), CODE(FOLDERS_TOO_MANY), CODE(OAUTH_EREFUSED),
    CODE(OAUTH_EDOWN),       CODE(DAV_EFAIL),          CODE(DAV_ENET),         CODE(DAV_EAUTH),
    CODE(DAV_ESTATUS),
};

static void test_codes_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_true(codes[i].value < 0);
		for (size_t j = i + 1; j < sizeof(codes) / sizeof(codes[0]); j++) {
			if (codes[i].value == codes[j].value)
				fail_msg("%s and %s are both %d", codes[i].name, codes[j].name,
				         codes[i].value);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codes_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
