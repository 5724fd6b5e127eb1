/* Internals of lib/dav shared by its files:
 *   client.c    the HTTP exchange (libcurl): one request, its answer
 *   xml.c       multistatus answers read with libxml2
 *   discover.c  well-known URLs, principal, home sets, collections
 *   objects.c   listing, GET, PUT, creating collections
 * Not a public interface. */
#ifndef MAILSHIFT_DAV_PRIVATE_H
#define MAILSHIFT_DAV_PRIVATE_H

#include "dav.h"

#include <libxml/tree.h>

#include <stdbool.h>
#include <stddef.h>

/* Largest answer body read (a multistatus of a big collection, one object). */
#define DAV_MAX_BODY (64u << 20)

#define NS_DAV "DAV:"
#define NS_CARDDAV "urn:ietf:params:xml:ns:carddav"
#define NS_CALDAV "urn:ietf:params:xml:ns:caldav"
#define NS_APPLE "http://apple.com/ns/ical/"

/* One HTTP answer. */
struct dav_response {
	long status;
	char *body; /* NUL-terminated, len bytes */
	size_t len;
	char *etag, *location, *content_type;
};
void dav_response_free(struct dav_response *r);

/* One request: method on href (an absolute path on the server, or "" for
 * the base URL itself), with extra header lines (NULL-terminated, may be
 * NULL) and a body (NULL: none).  follow: redirects are followed on the same
 * server (the well-known URLs).  0 whatever the status (in r->status), or
 * DAV_ENET / DAV_EFAIL with err. */
int dav_request(struct dav_client *c, const char *method, const char *href,
                const char *const *headers, const char *body, size_t len, bool follow,
                struct dav_response *r, char *err, size_t errlen);

/* An href from an answer as a path on this server: a path is kept, a full
 * URL of the same origin loses its origin; anything else is NULL.  Caller
 * frees. */
char *dav_client_path(const struct dav_client *c, const char *href);
/* The path of the base URL ("/" at least). */
const char *dav_client_base_path(const struct dav_client *c);

/* The first words of an answer's body (for an error text), control
 * characters and markup-free, into out. */
void dav_words(const struct dav_response *r, char *out, size_t outlen);
/* "METHOD href: HTTP status words" into err; returns DAV_EAUTH for 401,
 * DAV_ESTATUS otherwise. */
int dav_status_error(const char *method, const char *href, const struct dav_response *r, char *err,
                     size_t errlen);

/* xml.c: a multistatus answer (RFC 4918 13). */

/* Called for each response of a multistatus: its href, its own status
 * (0 when it has propstats instead; 404 of a removed member in
 * sync-collection), and the prop element of its 200 propstat (NULL: none). */
typedef int dav_response_cb(const char *href, int status, xmlNodePtr prop, void *context);
/* Parses body as a multistatus and calls cb per response; *sync_token_r
 * (if not NULL; caller frees) gets its top-level sync-token.  0, the first
 * nonzero return of cb, or DAV_EFAIL for a body that is not one. */
int dav_multistatus(const char *body, size_t len, dav_response_cb *cb, void *context,
                    char **sync_token_r, char *err, size_t errlen);
/* The first child element of node named ns:name, NULL if none. */
xmlNodePtr dav_xml_child(xmlNodePtr node, const char *ns, const char *name);
/* The text content of node, trimmed (caller frees); NULL when empty. */
char *dav_xml_text(xmlNodePtr node);
/* The text of the href inside ns:name of prop, NULL if none. */
char *dav_xml_href_of(xmlNodePtr prop, const char *ns, const char *name);
/* An XML request body: an element with text content escaped by libxml2
 * (for displaynames from a server).  Returns a malloc'ed document, or NULL. */
char *dav_xml_escape(const char *text);
/* Whether body is a DAV:error naming ns:name (a precondition, RFC 4918 16). */
bool dav_xml_error_is(const char *body, size_t len, const char *ns, const char *name);

#endif
