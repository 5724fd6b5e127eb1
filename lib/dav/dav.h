/* CardDAV (RFC 6352) and CalDAV (RFC 4791) client: discovery of an
 * account's address books and calendars (RFC 6764 well-known URLs, the
 * principal, the home sets), listing a collection's resources with their
 * ETags (PROPFIND Depth 1, or REPORT sync-collection RFC 6578), GET and
 * conditional PUT of one object, creation of a collection (extended MKCOL
 * RFC 5689, MKCALENDAR).  HTTP through libcurl (TLS verified, bounded
 * connect and total times, bounded bodies), every XML body through libxml2.
 *
 * A struct dav_client is one server as one user, used by one thread at a
 * time.  Hrefs given and returned are absolute paths on that server
 * ("/alice/contacts/"), percent-encoded as the server sent them; an href
 * naming another server is refused (the credentials go to this one only).
 * Functions return 0 or DAV_E* with the reason in err; the password never
 * appears in a reason. */
#ifndef MAILSHIFT_DAV_H
#define MAILSHIFT_DAV_H

#include <stdbool.h>
#include <stddef.h>

/* lib/dav's codes: -70..-79 (tests/unit/test_codes.c lists the others). */
#define DAV_EFAIL (-70)   /* the server answered, not as the protocol says */
#define DAV_ENET (-71)    /* connection, TLS or timeout: nothing was answered */
#define DAV_EAUTH (-72)   /* credentials refused (401) */
#define DAV_ESTATUS (-73) /* an HTTP status the call does not accept: *status_r */

struct dav_endpoint {
	const char *url;     /* the server's base URL: "https://dav.example/" */
	const char *ca_file; /* CA certificates to verify it with; NULL: system's */
	const char *user, *password;
	int connect_timeout_s; /* 0: 15 s */
	int timeout_s;         /* one request's whole time, 0: 120 s */
	/* Only reads (PROPFIND, REPORT, GET, HEAD): any other request is
	 * refused before it is sent.  A migration's source is one. */
	bool read_only;
};

struct dav_client;

/* Copies what it needs of ep (the password is wiped on destroy). */
int dav_client_create(const struct dav_endpoint *ep, struct dav_client **client_r, char *err,
                      size_t errlen);
void dav_client_destroy(struct dav_client **client);

/* Requests made by the client (for tests and cost logs). */
unsigned long dav_client_requests(const struct dav_client *client);

enum dav_kind {
	DAV_ADDRESSBOOK,
	DAV_CALENDAR,
};
const char *dav_kind_name(enum dav_kind kind); /* "addressbook", "calendar" */

/* A collection with the properties the copy carries over. */
struct dav_collection {
	enum dav_kind kind;
	char *href;
	char *displayname; /* NULL: none */
	char *description; /* addressbook-/calendar-description, NULL: none */
	char *color;       /* Apple calendar-color, NULL: none */
	char *components;  /* a calendar's supported components "VEVENT VTODO", NULL: any */
	char *sync_token;  /* the current one, NULL: none offered */
	bool can_sync;     /* REPORT sync-collection is in supported-report-set */
};
void dav_collections_free(struct dav_collection **cols, size_t count);

/* The user's home sets (addressbook-home-set, calendar-home-set) found
 * through the well-known URLs and the principal; NULL for a kind the
 * server does not offer.  Caller frees both. */
int dav_homes(struct dav_client *c, char **addressbook_home_r, char **calendar_home_r, char *err,
              size_t errlen);

/* Every address book and calendar of the user, in the order the server lists
 * them (both kinds in one array; caller frees with dav_collections_free). */
int dav_discover(struct dav_client *c, struct dav_collection **cols_r, size_t *count_r, char *err,
                 size_t errlen);

/* The collections directly under a home set (one kind's). */
int dav_home_collections(struct dav_client *c, const char *home, struct dav_collection **cols_r,
                         size_t *count_r, char *err, size_t errlen);

/* A member of a collection: removed only in a sync-collection answer. */
struct dav_resource {
	char *href;
	char *etag; /* as the server quotes it, NULL when removed */
	bool removed;
};
void dav_resources_free(struct dav_resource **res, size_t count);

/* The collection's members with their ETags.  With can_sync, a REPORT
 * sync-collection from token (NULL or "": the whole collection), else
 * PROPFIND Depth 1.  *new_token_r (caller frees) is the token to keep for
 * the next listing (NULL without sync); *full_r says the listing holds every
 * member (not only changes since token).  A token the server no longer
 * knows (RFC 6578 3.2: valid-sync-token) gives a full listing. */
int dav_list(struct dav_client *c, const char *href, bool can_sync, const char *token,
             struct dav_resource **res_r, size_t *count_r, char **new_token_r, bool *full_r,
             char *err, size_t errlen);

/* A body as the server sent it. */
struct dav_object {
	char *data; /* NUL-terminated for convenience, len bytes */
	size_t len;
	char *etag;         /* NULL: none sent */
	char *content_type; /* NULL: none sent */
};
void dav_object_free(struct dav_object *obj);

/* GET href: DAV_ESTATUS (with *status_r) for anything but 200. */
int dav_get(struct dav_client *c, const char *href, struct dav_object *obj_r, long *status_r,
            char *err, size_t errlen);

/* PUT of body byte for byte to href: with if_match the destination's ETag
 * (If-Match), without it only if nothing is there (If-None-Match: *).
 * 2xx: 0 with *etag_r the new ETag (caller frees; asked by a HEAD when the
 * answer has none; NULL if still unknown).  Another status: DAV_ESTATUS with
 * *status_r and the server's words in err (412: the precondition failed). */
int dav_put(struct dav_client *c, const char *href, const char *body, size_t len,
            const char *content_type, const char *if_match, char **etag_r, long *status_r,
            char *err, size_t errlen);

/* Creates a collection at href (which ends in '/') like col (kind,
 * displayname, description, color, components): extended MKCOL for an
 * address book, MKCALENDAR for a calendar. */
int dav_create(struct dav_client *c, const char *href, const struct dav_collection *col,
               long *status_r, char *err, size_t errlen);

/* An export file (the "export, then import" flow of sources without DAV)
 * cut into objects a server takes one by one: each vCard of a .vcf as it
 * is; for a .ics, the VEVENT/VTODO/VJOURNAL components of one UID (a
 * recurring event with its overrides) in one VCALENDAR with the calendar's
 * properties (not METHOD: RFC 4791 4.1) and the VTIMEZONEs they name.
 * Lines are kept byte for byte with their own line ends. */
struct dav_split_object {
	char *uid;  /* NULL: the object has none */
	char *name; /* its resource name: the UID percent-encoded, ".vcf"/".ics" */
	char *data;
	size_t len;
};
/* The kind comes from the content (BEGIN:VCARD or BEGIN:VCALENDAR). */
int dav_split(const char *data, size_t len, enum dav_kind *kind_r, struct dav_split_object **objs_r,
              size_t *count_r, char *err, size_t errlen);
void dav_split_free(struct dav_split_object **objs, size_t count);

/* The last path segment of href ("abc.vcf" of "/a/b/abc.vcf", "contacts" of
 * "/a/contacts/"), percent-encoded as it is, into out; -1 if none fits. */
int dav_href_name(const char *href, char *out, size_t outlen);

#endif
