/* Credential verification ("test connection"): every account's source and
 * destination logins are tried, in parallel within the servers' connection
 * budgets, and each account becomes verified, auth_failed (with the server's
 * words) or verify_failed (unreachable, TLS refused). */
#ifndef MAILSHIFT_VERIFIER_H
#define MAILSHIFT_VERIFIER_H

#include "secret.h"

#include <stddef.h>
#include <stdint.h>

/* Checks every account of the migration not yet being copied, or only the
 * accounts ids[0..count) when ids is not NULL; prints one line per account.
 * Returns 0 when all are verified, 1 when some are not, -1 on a setup
 * failure. */
int verifier_run(const char *db_conninfo, const struct secret_key *key, int64_t migration_id,
                 const int64_t *ids, size_t count, int parallel);

#endif
