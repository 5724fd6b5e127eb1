#include "account_state.h"

#include <stddef.h>
#include <string.h>

#define NAME(id, name) [ACCOUNT_STATE_##id] = name,
static const char *const names[ACCOUNT_STATE_COUNT] = {ACCOUNT_STATE_LIST(NAME, )};
#undef NAME

/* The enum and the list cannot drift apart: each id is named once. */
#define ONE(id, name) +1
_Static_assert(0 ACCOUNT_STATE_LIST(ONE, ) == ACCOUNT_STATE_COUNT,
               "ACCOUNT_STATE_LIST and enum account_state differ");
#undef ONE

const char *account_state_name(enum account_state state)
{
	return (unsigned)state < ACCOUNT_STATE_COUNT ? names[state] : "?";
}

int account_state_parse(const char *name, enum account_state *state_r)
{
	for (size_t i = 0; i < ACCOUNT_STATE_COUNT; i++) {
		if (strcmp(name, names[i]) == 0) {
			*state_r = (enum account_state)i;
			return 0;
		}
	}
	return -1;
}
