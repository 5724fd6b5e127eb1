/* Contacts and calendars (lib/store/dav.c): per account, the source's
 * CardDAV/CalDAV collections with their destination collection and
 * sync-token, and per object the source ETag copied and the destination's
 * href and ETag, or its refusal.  Writes are fenced by the account's lease
 * (store-lease.h) like the mail checkpoints.  Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_DAV_H
#define MAILSHIFT_STORE_DAV_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records (or finds) the source collection src_href of kind "addressbook"
 * or "calendar", going to dst_href with the name name: *id_r is its row,
 * *sync_token_r (caller frees; NULL: none) the token of its last complete
 * listing.  Fenced. */
int store_dav_collection(struct store *st, int64_t account_id, int64_t epoch, const char *kind,
                         const char *src_href, const char *dst_href, const char *name,
                         int64_t *id_r, char **sync_token_r, char *err, size_t errlen);
/* Keeps the collection's sync-token (after every change it listed is
 * recorded) and its error (NULL: none).  Fenced. */
int store_dav_collection_done(struct store *st, int64_t account_id, int64_t epoch,
                              int64_t collection_id, const char *sync_token, const char *error,
                              char *err, size_t errlen);

/* What the store knows of an object of a collection. */
struct store_dav_object {
	char *src_href, *src_etag, *dst_href, *dst_etag; /* dst_etag NULL: unknown */
	bool failed; /* the destination refused this source ETag */
};
/* The collection's objects, by src_href (caller frees with
 * store_dav_objects_free). */
int store_dav_objects(struct store *st, int64_t collection_id, struct store_dav_object **objs_r,
                      size_t *count_r, char *err, size_t errlen);
void store_dav_objects_free(struct store_dav_object **objs, size_t count);

/* Records an object copied (error NULL, dst_etag what the destination
 * answered) or refused (error: the server's status and words), and counts
 * it in the account's current pass: contacts for an address book, events
 * for a calendar (copied true), or failed.  Fenced. */
int store_dav_object_done(struct store *st, int64_t account_id, int64_t epoch,
                          int64_t collection_id, bool calendar, const char *src_href,
                          const char *src_etag, const char *dst_href, const char *dst_etag,
                          const char *error, bool copied, char *err, size_t errlen);

/* An account's contacts and calendars, for status: objects on the
 * destination, refused, and what its current pass copied. */
struct store_dav_status {
	int64_t account_id;
	int64_t collections, contacts, events, failed;
	int64_t pass_contacts, pass_events, pass_failed;
	const char *first_error; /* one refusal or collection error, "" if none */
};
typedef void store_dav_status_cb(const struct store_dav_status *row, void *context);
/* Calls cb for each account of the migration (or only account_id if not 0)
 * that has DAV collections, in id order. */
int store_dav_status(struct store *st, int64_t migration_id, int64_t account_id,
                     store_dav_status_cb *cb, void *context, char *err, size_t errlen);

#endif
