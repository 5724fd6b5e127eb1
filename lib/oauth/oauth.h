/* OAuth2 access tokens from a provider's token endpoint (RFC 6749 6: the
 * refresh_token grant), for IMAP's XOAUTH2 and OAUTHBEARER.
 *
 * The request goes out with libcurl: HTTPS only, the certificate and host
 * name verified, bounded connect and total times, no redirects, a bounded
 * answer parsed with jansson.  No function here puts a refresh token, an
 * access token or the client secret into an error text: the errors name the
 * endpoint (its URL without the query) and the provider's own words
 * ("invalid_grant: Token has been revoked").  All return 0 on success, a
 * negative value with a message in err (errlen bytes) on failure. */
#ifndef MAILSHIFT_OAUTH_H
#define MAILSHIFT_OAUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The endpoint refused the grant (RFC 6749 5.2: invalid_grant for a revoked
 * or expired refresh token, invalid_client ...): asking again will not help. */
#define OAUTH_EREFUSED (-60) /* lib/oauth's codes: -60..-69 (see store-conn.h) */
/* The endpoint could not be asked or gave no usable answer (down, timeout,
 * HTTP 5xx or 429, not JSON): a transient failure, to retry later. */
#define OAUTH_EDOWN (-61)

/* A provider's settings, as in the plan (strings borrowed). */
struct oauth_provider {
	const char *token_url;          /* https://... */
	const char *client_id;          /* required */
	const char *client_secret_file; /* NULL: a public client, no secret */
	const char *scope;              /* NULL: the grant's own */
	const char *ca_file;            /* NULL: the system CAs */
	int timeout_s;                  /* whole request; 0: OAUTH_TIMEOUT_S */
};
#define OAUTH_TIMEOUT_S 30

/* What the endpoint granted. */
struct oauth_grant {
	char *access_token;  /* wipe with oauth_grant_clear */
	char *refresh_token; /* a new refresh token (rotation), or NULL */
	int64_t expires_in;  /* seconds; 3600 when the endpoint does not say */
};
void oauth_grant_clear(struct oauth_grant *g);

/* Asks the endpoint for an access token with the refresh token (and the
 * client secret read from its file now).  OAUTH_EREFUSED, OAUTH_EDOWN, -1. */
int oauth_refresh(const struct oauth_provider *p, const char *refresh_token, struct oauth_grant *g,
                  char *err, size_t errlen);

/* The endpoint as errors name it: the URL up to its query.  Returns out. */
const char *oauth_url_printable(const char *url, char *out, size_t outlen);

/* One account's tokens on one server, shared by the threads that log in for
 * it: the refresh token and the cached access token with its expiry. */
struct oauth_token {
	pthread_mutex_t lock;
	const struct oauth_provider *provider;
	char *refresh;      /* plaintext, wiped by oauth_token_destroy */
	char *access;       /* NULL until the first refresh */
	int64_t expiry_ms;  /* CLOCK_MONOTONIC time the access token expires */
	int64_t renew_ms;   /* ... and when it is refreshed: a margin before */
	unsigned refreshes; /* how many times the endpoint was asked */
};

/* Takes a copy of refresh (the stored secret).  -1 out of memory. */
int oauth_token_init(struct oauth_token *t, const struct oauth_provider *p, const char *refresh);
void oauth_token_destroy(struct oauth_token *t);

/* Called with the token's lock held when the endpoint rotated the refresh
 * token, to store it (so that two rotations are stored in order); a failure
 * is only logged by the caller's callback: the new token works in memory. */
typedef void (*oauth_rotated_fn)(void *context, const char *refresh);

/* A copy of a current access token (*access_r, free with secret_free): the
 * cached one unless it is within its margin of expiry (a tenth of its
 * lifetime, from 1 s to 60 s, at most half of it) or is refused (the token a server refused: it is
 * refreshed once, unless another thread already did).  OAUTH_EREFUSED, OAUTH_EDOWN, -1 with err
 * set. */
int oauth_token_get(struct oauth_token *t, const char *refused, oauth_rotated_fn rotated,
                    void *context, char **access_r, char *err, size_t errlen);

#endif
