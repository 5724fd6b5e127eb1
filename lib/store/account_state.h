/* The states of an account (accounts.state, pass_accounts.state, the state
 * log): one enum, its names as stored, and the SQL list the schema's CHECK
 * constraints are built from.  Transitions and who makes them:
 * docs/DESIGN.md, "4. Account states". */
#ifndef MAILSHIFT_ACCOUNT_STATE_H
#define MAILSHIFT_ACCOUNT_STATE_H

/* X(id, name) for each state, SEP between two: the one list behind the enum,
 * the names table and ACCOUNT_STATE_SQL_LIST.  Adding a state: add it here
 * and to the enum, and append a schema migration that drops and re-adds the
 * CHECK constraints of migration 8 (lib/store/schema.c). */
/* clang-format off */
#define ACCOUNT_STATE_LIST(X, SEP)            \
	X(NEW, "new") SEP                     \
	X(VERIFIED, "verified") SEP           \
	X(AUTH_FAILED, "auth_failed") SEP     \
	X(VERIFY_FAILED, "verify_failed") SEP \
	X(QUEUED, "queued") SEP               \
	X(RUNNING, "running") SEP             \
	X(WAITING, "waiting") SEP             \
	X(PAUSED, "paused") SEP               \
	X(FAILED, "failed") SEP               \
	X(SYNCED, "synced") SEP               \
	X(DONE, "done") SEP                   \
	X(CANCELLED, "cancelled")
/* clang-format on */

enum account_state {
	ACCOUNT_STATE_NEW,           /* imported or added; credentials not checked */
	ACCOUNT_STATE_VERIFIED,      /* both logins accepted by verify */
	ACCOUNT_STATE_AUTH_FAILED,   /* a server refused the credentials */
	ACCOUNT_STATE_VERIFY_FAILED, /* a server could not be reached or talked to */
	ACCOUNT_STATE_QUEUED,        /* owed a run of its pass: the scheduler publishes it */
	ACCOUNT_STATE_RUNNING,       /* a worker holds its lease */
	ACCOUNT_STATE_WAITING,       /* daily cap, throttling server, key: runs at retry_at */
	ACCOUNT_STATE_PAUSED,        /* by the operator; resume queues it again */
	ACCOUNT_STATE_FAILED,        /* a run failed; retried at retry_at within its budget */
	ACCOUNT_STATE_SYNCED,        /* its last pass asked for is done */
	ACCOUNT_STATE_DONE,          /* never set: named only by cancel's filter */
	ACCOUNT_STATE_CANCELLED,     /* by the operator; final */
};
#define ACCOUNT_STATE_COUNT (ACCOUNT_STATE_CANCELLED + 1)

/* "'new', 'verified', ...": the names as an SQL list, a string literal. */
#define ACCOUNT_STATE_SQL_NAME(id, name) "'" name "'"
#define ACCOUNT_STATE_SQL_LIST ACCOUNT_STATE_LIST(ACCOUNT_STATE_SQL_NAME, ", ")

/* The state's name as stored; "?" for a value out of range. */
const char *account_state_name(enum account_state state);
/* The state named name (as stored): 0, or -1 when it names none. */
int account_state_parse(const char *name, enum account_state *state_r);

#endif
