/* Pseudo UIDs of POP3 maildrops (lib/store/pop3.c): a POP3 message has a
 * unique-id (UIDL, RFC 1939 7) but no UID, and the batch protocol, the UID
 * map and the high water all count in UIDs.  So each unique-id an account's
 * maildrop shows gets a UID of its own the first time it is seen, above
 * every UID given before, and keeps it: a message that arrives later always
 * gets a higher one, and the high water then tells what was copied.
 * Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_POP3_H
#define MAILSHIFT_STORE_POP3_H

#include "store-conn.h"

#include <stddef.h>
#include <stdint.h>

/* For the count unique-ids of the maildrop, in message-number order (the
 * order of arrival): their pseudo UIDs into uids_r, new ones assigned in that
 * order, and the epoch second each was first seen into first_seen_r (both
 * count long).  Fenced (STORE_LEASE_LOST). */
int store_pop3_uids(struct store *st, int64_t account_id, int64_t epoch, const char *const *uidls,
                    size_t count, uint32_t *uids_r, int64_t *first_seen_r, char *err,
                    size_t errlen);

#endif
