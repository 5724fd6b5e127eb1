/* The CLI's side of the HTTP API: one request at a time over libcurl, JSON in
 * and out, every answer sorted into the CLI's exit codes.
 *
 * Errors: the API's 4xx answers {"error": {"code", "message", "field"}} become
 * API_REFUSED with "CODE: message (field F)" in the caller's buffer; a refused
 * connection, a timeout or a 5xx become API_UNREACHABLE, naming the URL and
 * what failed.  The token is sent in the Authorization header only and never
 * appears in an error text. */
#ifndef MAILSHIFT_CLI_API_H
#define MAILSHIFT_CLI_API_H

#include <jansson.h>
#include <stddef.h>

/* Exit codes of the `mailshift` command (documented in --help and README). */
enum cli_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 1,       /* bad arguments, unreadable local file */
	EXIT_REFUSED = 2,     /* the API answered 4xx: its code and message printed */
	EXIT_UNREACHABLE = 3, /* no answer, a timeout, a 5xx or not JSON */
	EXIT_NOT_DONE = 4,    /* wait timed out or accounts not synced; proof not exact */
};

#define API_ERRLEN 1024

struct api;

/* base: "http://host:port" (a trailing slash is dropped); token may be NULL
 * (local mode).  timeout_s bounds every request (connect: at most 10 s).
 * Returns NULL only when libcurl cannot be set up. */
struct api *api_create(const char *base, const char *token, long timeout_s);
void api_destroy(struct api **api);

/* One request.  path starts with "/" and is already escaped (api_escape).
 * body: JSON sent as application/json, or NULL; raw/raw_type: a non-JSON
 * body (e.g. text/csv) instead.  On 2xx the answer's JSON goes to *reply_r
 * (owned by the caller; NULL for an empty body) and raw text to *text_r when
 * text_r is given (owned by the caller).  extra_timeout_s lengthens this
 * request's bound (long polls).  Returns an enum cli_exit. */
int api_call(struct api *api, const char *method, const char *path, json_t *body, const char *raw,
             const char *raw_type, long extra_timeout_s, json_t **reply_r, char **text_r, char *err,
             size_t errlen);

/* Shorthands of api_call with a JSON body or none. */
int api_get(struct api *api, const char *path, json_t **reply_r, char *err, size_t errlen);
int api_send(struct api *api, const char *method, const char *path, json_t *body, json_t **reply_r,
             char *err, size_t errlen);

/* GET of a paginated list ({"items": [...], "next": cursor}), following
 * "next" until the end or max items; *items_r is a new array (caller owns).
 * path may hold a query already. */
int api_get_all(struct api *api, const char *path, size_t max, json_t **items_r, char *err,
                size_t errlen);

/* A path segment escaped for a URL (an account login with @ or /); the
 * caller frees it with free().  NULL on out of memory. */
char *api_escape(const char *segment);

#endif
