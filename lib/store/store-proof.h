/* What the coordinator's inspections read and write (lib/store/proof.c): the
 * folder mapping and UID map a proof compares against, the keywords a
 * destination refused (written by the worker, fenced), the proofs kept per
 * account, the destination reset, the measured copy rate.  Conventions:
 * store-conn.h. */
#ifndef MAILSHIFT_STORE_PROOF_H
#define MAILSHIFT_STORE_PROOF_H

#include "store-checkpoint.h"
#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of store_destination_reset besides a negative error. */
#define STORE_BUSY_RUNNING (-21) /* a worker holds the account (or it is running) */

/* A folder of an account as the worker recorded it (folders table). */
struct store_proof_folder {
	int64_t id;
	char *src_name, *dst_name; /* dst_name "": the folder could not be mapped */
	char *error;               /* the folder's error in its last try, or NULL */
};
/* The account's folder rows by source name; free with store_proof_folders_free. */
int store_proof_folders(struct store *st, int64_t account_id, struct store_proof_folder **rows_r,
                        size_t *count_r, char *err, size_t errlen);
void store_proof_folders_free(struct store_proof_folder **rows, size_t count);

/* The folder's UID map, expanded to pairs ascending by source UID (caller frees). */
int store_uidmap_all(struct store *st, int64_t folder_id, struct store_uidpair **pairs_r,
                     size_t *count_r, char *err, size_t errlen);

/* One message recorded against a source UID: a message error (text in
 * error), or keywords dropped (keywords space-separated, error the
 * destination's words). */
struct store_uid_note {
	uint32_t src_uid;
	uint32_t dst_uid;
	char *keywords; /* NULL for a message error */
	char *error;
};
/* The folder's message errors and keywords dropped (caller frees with
 * store_uid_notes_free). */
int store_folder_notes(struct store *st, int64_t folder_id, bool keywords,
                       struct store_uid_note **notes_r, size_t *count_r, char *err, size_t errlen);
void store_uid_notes_free(struct store_uid_note **notes, size_t count);

/* Records, fenced by the lease, that these messages were copied without the
 * keywords named (the destination refused them, its words in error). */
int store_keywords_dropped_put(struct store *st, int64_t account_id, int64_t epoch,
                               int64_t folder_id, const struct store_uid_note *notes, size_t n,
                               char *err, size_t errlen);

/* Every message of the migration (or of account_id, unless 0) copied
 * without keywords the destination refused, for status and the API's
 * errors: the folder, source UID, the keywords and the server's words. */
typedef void store_keywords_dropped_cb(int64_t account_id, const char *src_name, uint32_t src_uid,
                                       const char *keywords, const char *error, void *context);
int store_keywords_dropped_each(struct store *st, int64_t migration_id, int64_t account_id,
                                store_keywords_dropped_cb *cb, void *context, char *err,
                                size_t errlen);

/* Keeps report_json (a JSON object) as the account's last proof. */
int store_proof_put(struct store *st, int64_t account_id, const char *trigger, bool exact,
                    int64_t missing, int64_t extra, int64_t changed, const char *report_json,
                    char *err, size_t errlen);
/* The account's last proof as JSON text (caller frees), or 1 when none. */
int store_proof_get(struct store *st, int64_t account_id, char **json_r, char *err, size_t errlen);
/* The migration's last proofs, one JSON array of {account, account_id, at,
 * trigger, exact, missing, extra, changed} (caller frees). */
int store_proofs_summary(struct store *st, int64_t migration_id, char **json_r, char *err,
                         size_t errlen);

/* Claims the next account whose final pass ended synced and was not
 * proven since (*count_r 0 or 1): each is returned once (caller frees
 * *ids_r). */
int store_final_proofs_claim(struct store *st, int64_t **ids_r, size_t *count_r, char *err,
                             size_t errlen);

/* Before the destination is emptied: refuses (STORE_BUSY_RUNNING, with the
 * holder in err) while the account runs or a worker holds its lease; else,
 * in one transaction, takes the lease for actor (a new epoch, so a late worker
 * is fenced out; for ttl_s), forgets the account's folder rows (UID map,
 * errors, keywords dropped go with them) so the next pass copies everything,
 * and logs it. */
int store_destination_reset(struct store *st, int64_t account_id, const char *actor, int ttl_s,
                            char *err, size_t errlen);
/* Gives the lease back and logs what was done (reason). */
int store_destination_reset_end(struct store *st, int64_t account_id, const char *actor,
                                const char *reason, char *err, size_t errlen);

/* The migration's measured copy rate: bytes and messages of the folders its
 * passes finished over the time they took (NaN-free: 0 when nothing was
 * measured). */
int store_rate_measured(struct store *st, int64_t migration_id, double *bytes_per_s_r,
                        double *messages_per_s_r, char *err, size_t errlen);

#endif
