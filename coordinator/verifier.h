/* Credential verification ("test connection"): every account's source and
 * destination logins are tried, in parallel within the servers' connection
 * budgets, and each account becomes verified, auth_failed (with the server's
 * words) or verify_failed (unreachable, TLS refused). */
#ifndef MAILSHIFT_VERIFIER_H
#define MAILSHIFT_VERIFIER_H

#include "secret.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a run found: verified, auth_failed (refused), verify_failed. */
struct verifier_counts {
	size_t verified, refused, unreachable;
	bool all_verified; /* every account asked for (none left unchecked) */
};

/* Checks every account of the migration not yet being copied, or only the
 * accounts ids[0..count) when ids is not NULL; prints one line per account.
 * Returns 0 when all are verified, 1 when some are not, -1 on a setup
 * failure.  actor (may be NULL) is recorded with the state changes
 * (store_actor_set); *counts_r (may be NULL) gets the counts. */
int verifier_run(const char *db_conninfo, const struct secret_key *key, int64_t migration_id,
                 const int64_t *ids, size_t count, int parallel, const char *actor,
                 struct verifier_counts *counts_r);

#endif
