/* What the inspections' files share (inspect.h is their interface). */
#ifndef MAILSHIFT_INSPECT_PRIVATE_H
#define MAILSHIFT_INSPECT_PRIVATE_H

#include "account.h"
#include "imap.h"
#include "inspect.h"
#include "store-account.h"

#include <stdbool.h>
#include <time.h>

/* One side's session of an inspection, holding a slot of its server's
 * connection budget (as verify does), so inspecting never exceeds
 * max_connections while workers copy. */
struct inspect_side {
	struct store *st;
	int64_t server_id;
	int slot;
	bool slot_held;
	char owner[64];
	struct imap_session *session;
	time_t renewed; /* when the slot's lease was last renewed */
};
/* Waits up to 2 minutes for a slot, then logs in (waiting for a throttling
 * server as verify does).  0, or <0 with the reason in err (side named). */
int inspect_side_open(struct inspect_side *side, struct store *st, int64_t server_id,
                      const struct imap_endpoint *ep, const char *what, char *err, size_t errlen);
/* Renews the slot's lease once a minute at most (a proof of a large
 * account outlasts the 10 minutes a slot is taken for); call it between
 * batches. */
void inspect_side_keep(struct inspect_side *side);
/* Logs out and gives the slot back; safe on a side never opened. */
void inspect_side_close(struct inspect_side *side);

/* The account ids to inspect: ids[0..count), or every account of the
 * migration when ids is NULL (caller frees *out_r). */
int inspect_ids(struct store *st, int64_t migration_id, const int64_t *ids, size_t count,
                int64_t **out_r, size_t *n_r, char *err, size_t errlen);

/* A source profile's filters as the worker applies them (worker/batch.c
 * filter_window): a message larger than max_bytes, or (a date it can read)
 * older than since, is left out by the operator's choice: not counted by an
 * estimate, not missing from a proof. */
struct inspect_filter {
	int64_t since;     /* UTC midnight of the profile's day, 0: none */
	int64_t max_bytes; /* 0: none */
};
void inspect_filter_init(struct inspect_filter *f, const struct store_server *src);
bool inspect_filter_active(const struct inspect_filter *f);
bool inspect_filtered(const struct inspect_filter *f, uint32_t size, const char *internaldate);

/* The folder name as an operator reads it (modified UTF-7 decoded). */
void inspect_folder_shown(const char *mutf7, char *out, size_t outlen);

#endif
