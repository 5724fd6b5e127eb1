/* What an operator asks of accounts outside a pass, shared by the
 * coordinator's commands and the HTTP API: an estimate (dry run) from the
 * source, a proof of completeness (source and destination compared message
 * by message), and emptying an account's destination before a re-run.
 *
 * Each returns a jansson object in the shape of the API contract
 * (/work/notes/api-contract.md, docs/openapi.yaml) that the caller owns
 * (json_decref), or NULL with the reason in err and a code in *code_r (may
 * be NULL).  They open their own IMAP sessions (within the servers'
 * connection budgets, as verify does) and use st on the calling thread only.
 * Files by role: estimate.c, proof.c (proof-compare.c is its pure core,
 * proof-report.c the files for the customer), empty.c, inspect-session.c. */
#ifndef MAILSHIFT_INSPECT_H
#define MAILSHIFT_INSPECT_H

#include "secret.h"
#include "store-conn.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why an inspection returned NULL, for the API's error codes. */
enum inspect_code {
	INSPECT_OK = 0,
	INSPECT_FAILED,       /* internal: the store, an IMAP server (err says which) */
	INSPECT_NOT_FOUND,    /* no such account in the migration */
	INSPECT_CONFIRMATION, /* confirm missing or not the destination login */
	INSPECT_CONFLICT,     /* the account is running */
};

/* Estimate of accounts ids[0..count) of the migration (ids NULL: every
 * account): per account the source's folders with messages and bytes
 * (STATUS SIZE where offered, else FETCH RFC822.SIZE; excluded folders
 * listed with "excluded": true and not counted), totals and an ETA:
 *   {"migration", "accounts": [{"account", "account_id", "folders": [{"name",
 *     "messages", "bytes", "excluded", "counted_by", "error"}], "messages",
 *     "bytes", "error"}], "messages", "bytes", "rate_bytes_per_s",
 *    "rate_messages_per_s", "rate_source", "eta_seconds"}
 * The ETA uses the rate the migration's passes measured ("measured"), else
 * the busiest server's rate budget for what goes through it ("budget"), else
 * none (rates and ETA null).  An account whose source cannot be read has
 * "error" (the server's words); the others are still estimated. */
json_t *inspect_estimate(struct store *st, const struct secret_key *key, int64_t migration_id,
                         const int64_t *ids, size_t count, char *err, size_t errlen,
                         enum inspect_code *code_r);

/* Proof of completeness of accounts ids[0..count) (NULL: every account),
 * each stored as the account's last proof (trigger "operator" or "final"):
 *   {"migration", "at", "exact", "accounts": [<account proof>]}
 * with <account proof> as inspect_proof_get returns it.  out_dir, if not
 * NULL, gets proof-migration-M.md (for the customer) and
 * proof-migration-M.csv (every difference). */
json_t *inspect_proof(struct store *st, const struct secret_key *key, int64_t migration_id,
                      const int64_t *ids, size_t count, const char *trigger, const char *out_dir,
                      char *err, size_t errlen, enum inspect_code *code_r);

/* The account's last stored proof:
 *   {"account", "account_id", "destination_login", "state", "at", "trigger",
 *    "exact", "missing", "extra", "changed", "folders": [{"name",
 *    "destination_name", "source", "destination", "missing", "extra",
 *    "changed", "filtered", "error"}], "differences": [{"folder", "kind",
 *    "source_uid", "destination_uid", "source", "destination", "detail"}],
 *    "error"}
 * or NULL with INSPECT_NOT_FOUND when it has none. */
json_t *inspect_proof_get(struct store *st, int64_t account_id, char *err, size_t errlen,
                          enum inspect_code *code_r);
/* The migration's last proofs, one summary per account proven:
 *   {"items": [{"account", "account_id", "at", "trigger", "exact", "missing",
 *    "extra", "changed"}]} */
json_t *inspect_proofs_summary(struct store *st, int64_t migration_id, char *err, size_t errlen,
                               enum inspect_code *code_r);

/* Proves the accounts whose final pass ended since the last call (each
 * once, claimed in the store, one at a time) until none is left or *stop
 * (may be NULL) is set; `coordinator run` calls it.  Returns how many were
 * proven, or -1. */
int inspect_final_proofs(struct store *st, const struct secret_key *key,
                         const volatile sig_atomic_t *stop, char *err, size_t errlen);

/* Deletes every message of the account's destination folders and forgets its
 * checkpoints, UID map and folder rows, so a later pass copies everything
 * again, once.  confirm must equal the destination login
 * (INSPECT_CONFIRMATION); refused while the account runs (INSPECT_CONFLICT).
 * actor names who asked ("cli", "api:NAME"), logged in the account history.
 *   {"account", "account_id", "destination_login", "folders": [{"name",
 *    "deleted"}], "deleted"} */
json_t *inspect_empty_destination(struct store *st, const struct secret_key *key,
                                  int64_t migration_id, int64_t account_id, const char *confirm,
                                  const char *actor, char *err, size_t errlen,
                                  enum inspect_code *code_r);

#endif
