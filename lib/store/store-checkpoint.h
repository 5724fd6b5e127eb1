/* Checkpoints and the UID map (lib/store/checkpoint.c): the worker's
 * crash-safe protocol, docs/DESIGN.md "2. Copy of a folder: the batch
 * protocol".  Every write is fenced by the lease epoch (store-lease.h) and
 * returns STORE_LEASE_LOST once it moved.  Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_CHECKPOINT_H
#define MAILSHIFT_STORE_CHECKPOINT_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checkpoint of one folder of an account, keyed by the source folder name. */
struct store_folder {
	int64_t id;
	char *src_name; /* source mailbox name as the server spells it (modified UTF-7) */
	char *dst_name;
	uint32_t src_uidvalidity;
	uint32_t dst_uidvalidity;
	uint32_t high_water;       /* highest source UID copied or recorded as failed */
	uint64_t highest_modseq;   /* source HIGHESTMODSEQ at the last completed sync, 0 = none */
	uint32_t src_uidnext;      /* source UIDNEXT at the last completed sync */
	uint32_t src_messages;     /* source EXISTS at the last completed sync */
	bool rematch;              /* UIDVALIDITY changed: match by identity before copying */
	uint32_t filtered_through; /* the filtered messages up to this UID are counted */
	/* Open batch intent, if intent_dst_uidnext != 0. */
	uint32_t intent_dst_uidnext;
	uint32_t *intent_uids;
	size_t intent_count;
	/* The folder's lane (schema 16; lane_lo 0: none): source UIDs
	 * lane_lo..lane_hi copied by a second stream, through lane_high_water,
	 * with its own open intent.  A struct with `lane` set is the lane's
	 * cursor: high_water and intent_* above are the lane's, and the batch
	 * protocol's writes (store_intent_begin, store_batch_commit) go to the
	 * lane's columns. */
	uint32_t lane_lo, lane_hi, lane_high_water;
	uint32_t lane_intent_dst_uidnext;
	uint32_t *lane_intent_uids;
	size_t lane_intent_count;
	bool lane;
};
void store_folder_clear(struct store_folder *f);

/* Finds or creates the folder row (fenced). A new row starts at zero. */
int store_folder_get(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                     const char *dst_name, struct store_folder *folder_r, char *err, size_t errlen);

/* Sets the folder's UIDVALIDITYs, resets high water and modseq, and sets the
 * rematch mark (used for a new folder, and with rematch after a UIDVALIDITY
 * change, in which case the UID map is cleared in the same transaction). */
int store_folder_reset(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       uint32_t src_uidvalidity, uint32_t dst_uidvalidity, bool rematch, char *err,
                       size_t errlen);

/* Step (a) of the batch protocol (docs/DESIGN.md, "2. Copy of a folder: the
 * batch protocol"): records the batch's source UIDs and the destination
 * UIDNEXT before it. */
int store_intent_begin(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       bool lane, uint32_t dst_uidnext, const uint32_t *uids, size_t count,
                       char *err, size_t errlen);

/* One source -> destination UID pair. */
struct store_uidpair {
	uint32_t src;
	uint32_t dst;
};

/* A message the destination refused, with the server's words. */
struct store_msg_error {
	uint32_t src_uid;
	const char *error;
};

/* The next batch's intent, written by the commit of the one before it. */
struct store_intent {
	uint32_t dst_uidnext; /* a lower bound of the UIDs its APPENDs get */
	const uint32_t *uids; /* its source UIDs, ascending */
	size_t count;
};

/* Batch protocol: docs/DESIGN.md, "2. Copy of a folder: the batch protocol".
 * Step (c): in one transaction stores the pairs as runs, records the errors,
 * sets high_water, adds `appended` messages and `bytes` to the folder's copy
 * counters (pairs found by re-matching are not copies: `matched` counts those
 * the destination already held), and clears the intent -- or, with next,
 * writes the next batch's intent in its place (its step (a), one commit
 * instead of two).  pairs sorted by src.  lane: the high water and intent
 * written are the folder's lane's (the pairs, errors and counts are the
 * folder's either way). */
int store_batch_commit(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                       bool lane, const struct store_uidpair *pairs, size_t npairs,
                       const struct store_msg_error *errors, size_t nerrors, uint32_t high_water,
                       size_t appended, uint64_t bytes, size_t matched,
                       const struct store_intent *next, char *err, size_t errlen);

/* Opens the folder's lane over source UIDs lo..hi (lo > the folder's high
 * water): nothing of it copied yet.  Fenced. */
int store_lane_open(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                    uint32_t lo, uint32_t hi, char *err, size_t errlen);
/* Closes the folder's lane once both cursors are through (the caller knows:
 * the folder's high water at lane_lo - 1 or above, the lane's at lane_hi):
 * high_water moves to lane_hi and the lane is cleared.  Fenced. */
int store_lane_close(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                     char *err, size_t errlen);

/* Records that a folder failed in this pass (fenced): the command and the
 * server's words in `error` (no secret in it).  Creates the folder row if the
 * folder never got one (dst_name NULL: not mapped).  The account goes on with
 * its other folders; store_folder_synced clears the error. */
int store_folder_error(struct store *st, int64_t account_id, int64_t epoch, const char *src_name,
                       const char *dst_name, const char *error, char *err, size_t errlen);

/* Records the folder as synced at this source state (UIDNEXT, EXISTS,
 * HIGHESTMODSEQ) and clears the rematch mark. */
int store_folder_synced(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                        uint32_t src_uidnext, uint32_t src_messages, uint64_t highest_modseq,
                        char *err, size_t errlen);

/* Looks up destination UIDs for the source UIDs (sorted ascending); unmapped
 * entries get 0. */
int store_uidmap_lookup(struct store *st, int64_t folder_id, const uint32_t *src_uids, size_t count,
                        uint32_t *dst_uids_r, char *err, size_t errlen);
/* The lowest mapped source UID >= from, or 0 in *uid_r when none. */
int store_uidmap_next(struct store *st, int64_t folder_id, uint32_t from, uint32_t *uid_r,
                      char *err, size_t errlen);
/* Messages the source profile's filters leave out (older than its since
 * date, larger than its max_message_size): count of them above the folder's
 * filtered_through are added to the folder's and the pass's filtered counts,
 * and filtered_through moves up to through, so that a window read again after
 * a crash is not counted twice.  skips: per-message reasons kept (those of
 * the size filter), once per message. */
int store_folder_filtered(struct store *st, int64_t account_id, int64_t epoch, int64_t folder_id,
                          uint32_t through, uint32_t count, const struct store_msg_error *skips,
                          size_t nskips, char *err, size_t errlen);
/* Merged folders: the destination UIDs the account's other source folders
 * (folder_id 0: every folder of the account) mapped into the same
 * destination folder, as runs starts[i] ..
 * starts[i] + lens[i] - 1 (caller frees both arrays). */
int store_uidmap_claimed(struct store *st, int64_t account_id, int64_t folder_id,
                         const char *dst_name, uint32_t **starts_r, uint32_t **lens_r,
                         size_t *count_r, char *err, size_t errlen);

#endif
