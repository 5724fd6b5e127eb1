/* An account's credentials turned into IMAP endpoints: the stored secrets are
 * decrypted (lib/secret) and the server settings mapped (lib/imap).  Used by
 * the worker (copy) and the coordinator (credential verification). */
#ifndef MAILSHIFT_ACCOUNT_H
#define MAILSHIFT_ACCOUNT_H

#include "imap.h"
#include "oauth.h"
#include "secret.h"
#include "store-account.h"

#include <stdbool.h>

/* account_creds_open's result when a secret does not decrypt with the key
 * (wrong key or corrupted data), as opposed to a bad setting. */
#define ACCOUNT_KEY_FAILED (-40) /* lib/account's codes: -40..-49 (see store-conn.h) */

/* Loads the key (key_file, or MAILSHIFT_SECRET_KEY when NULL) and checks it
 * against the database's key check: a key that cannot decrypt it is refused
 * with a message naming the key file, both key ids and what to do.  With
 * create, a database without a key check gets this key's (the first import);
 * without, a database without one is accepted.  Returns ACCOUNT_KEY_CHECKED
 * or ACCOUNT_KEY_UNCHECKED, <0 refused.
 * *key_r: free with secret_key_destroy. */
enum account_key_result {
	ACCOUNT_KEY_CHECKED = 0,   /* the key decrypted the database's key check */
	ACCOUNT_KEY_UNCHECKED = 1, /* accepted without a key check to prove it */
};
int account_key_open(struct store *st, const char *key_file, bool create, struct secret_key **key_r,
                     char *err, size_t errlen);

/* Which side of the migration a secret logs in to. */
enum account_side {
	ACCOUNT_SRC,
	ACCOUNT_DST,
};

/* A password at rest is bound to its account: the ciphertext authenticates
 * "src:<login>" or "dst:<login>", so a blob copied to another account or side
 * does not decrypt.  These two are the only places that binding is written.
 *
 * account_secret_seal encrypts plain; *blob_r (caller frees with free()) holds
 * *len_r bytes.  account_secret_open decrypts blob; *plain_r is released with
 * secret_free.  Both return 0 or <0 with a message in err. */
int account_secret_seal(const struct secret_key *key, enum account_side side, const char *login,
                        const char *plain, unsigned char **blob_r, size_t *len_r, char *err,
                        size_t errlen);
int account_secret_open(const struct secret_key *key, enum account_side side, const char *login,
                        const unsigned char *blob, size_t len, char **plain_r, char *err,
                        size_t errlen);

struct account_creds {
	struct imap_endpoint src, dst;
	char *src_secret, *dst_secret; /* plaintext, wiped by account_creds_close */
	/* A side whose server has an OAuth2 token endpoint: its secret is a
	 * refresh token, its endpoint's secret NULL until account_oauth_token
	 * fills a copy of the endpoint; provider and token set (oauth true). */
	bool src_oauth, dst_oauth;
	struct oauth_provider src_provider, dst_provider;
	struct oauth_token src_token, dst_token;
};

/* Fills creds for acct (which must outlive creds); ACCOUNT_KEY_FAILED when a
 * secret does not decrypt, -1 on other errors.  ca_file is an extra CA
 * file used for a server without its own, or NULL.  The secrets are opened
 * with account_secret_open. */
int account_creds_open(const struct store_account *acct, const struct secret_key *key,
                       const char *ca_file, struct account_creds *creds, char *err, size_t errlen);
/* Wipes and frees the plaintexts; safe on a zeroed or half-opened struct. */
void account_creds_close(struct account_creds *creds);

/* Where a refresh token the endpoint rotated is stored back (sealed), at
 * once: st the caller's connection (used by the calling thread only). */
struct account_rotate {
	struct store *st;
	const struct secret_key *key;
	const struct store_account *acct;
	enum account_side side;
};

/* For a side with OAuth2 (creds->src_oauth / dst_oauth): a current access
 * token into *token_r (free with secret_free), from the account's cache or
 * the endpoint (refused: the token a server just refused, refreshed once);
 * a rotated refresh token is stored through rot.  OAUTH_EREFUSED (the grant
 * refused: the account's credentials), OAUTH_EDOWN (try later), -1. */
int account_oauth_token(struct account_creds *creds, const struct account_rotate *rot,
                        const char *refused, char **token_r, char *err, size_t errlen);

#endif
