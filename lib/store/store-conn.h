/* PostgreSQL store: the connection and the schema.  The store is the
 * system of record (plans, accounts, leases, folder checkpoints, batch
 * intents, UID map runs, message errors, state log); its functions are cut by
 * role, each with its header: store-plan.h, store-account.h, store-lease.h,
 * store-checkpoint.h, store-schedule.h, store-pass.h.
 *
 * A struct store wraps one connection and is used by one thread at a time.
 * All functions return 0 on success and a negative value on failure, with the
 * error text in the caller's buffer err (errlen bytes; STORE_ERRLEN carries
 * every text whole).  STORE_LEASE_LOST is returned by every fenced write whose
 * lease epoch no longer matches: the caller must stop working on the account. */
#ifndef MAILSHIFT_STORE_CONN_H
#define MAILSHIFT_STORE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: -1 is any failure (see err); the store's named codes are in
 * -20..-29, apart from lib/imap's (-2..-9), lib/queue's (-30..-39), lib/account's
 * (-40..-49) and lib/secret's (-50..-59) (tests/unit/test_codes.c). */
#define STORE_LEASE_LOST (-20)
/* An err buffer of this size carries any store error text whole. */
#define STORE_ERRLEN 768

struct store;

/* conn.c: a connection with bounded waits (docs/DESIGN.md, "6. Bounds");
 * store_close does nothing for *store NULL and sets *store to NULL. */
int store_open(const char *conninfo, struct store **store_r, char *err, size_t errlen);
void store_close(struct store **store);
/* store_open with its own connect timeout (seconds; 0: the default or
 * MAILSHIFT_DB_TIMEOUT): a readiness probe waits less than a command. */
int store_open_bounded(const char *conninfo, int connect_timeout_s, struct store **store_r,
                       char *err, size_t errlen);
/* False once the connection broke or timed out: every call on it fails, the
 * holder closes it and opens another (a pool of connections checks this). */
bool store_usable(const struct store *st);
/* A setting of this session (set_config): "TimeZone" to "UTC", ... */
int store_session_set(struct store *st, const char *name, const char *value, char *err,
                      size_t errlen);
/* Who or what acts through this connection ("api:NAME", "scheduler",
 * "command"): recorded as account_log.actor of every state change it makes
 * (a session setting read by the column's default, so every statement that
 * logs a change records it without being told). */
int store_actor_set(struct store *st, const char *actor, char *err, size_t errlen);

/* schema.c: applies the numbered schema migrations not applied yet (idempotent; safe with
 * several processes starting at once: serialised by an advisory lock). */
int store_schema_apply(struct store *st, char *err, size_t errlen);
/* Whether every schema migration this build knows is applied (a readiness
 * check: a coordinator serving an older schema answers wrongly). */
int store_schema_current(struct store *st, bool *current_r, char *err, size_t errlen);

/* store_key_check_get's results besides a negative error. */
enum store_key_check_result {
	STORE_KEY_CHECK_FOUND = 0, /* *check_r and *key_id_r are set */
	STORE_KEY_CHECK_NONE = 1,  /* no key check stored yet */
};
/* The key check of this database (see lib/secret): *check_r (caller frees)
 * and *key_id_r (caller frees), or STORE_KEY_CHECK_NONE. */
int store_key_check_get(struct store *st, unsigned char **check_r, size_t *len_r, char **key_id_r,
                        char *err, size_t errlen);
/* Stores the key check if none is stored (a concurrent first one wins);
 * callers read it back with store_key_check_get. */
int store_key_check_put(struct store *st, const unsigned char *check, size_t len,
                        const char *key_id, char *err, size_t errlen);

#endif
