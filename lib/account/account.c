#include "account.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int endpoint_setup(struct imap_endpoint *ep, const struct store_server *srv,
                          const char *login, const char *secret, const char *ca_file, char *err,
                          size_t errlen)
{
	memset(ep, 0, sizeof(*ep));
	ep->host = srv->host;
	ep->port = srv->port;
	if (imap_tls_mode_parse(srv->tls, &ep->tls) < 0 ||
	    imap_auth_mech_parse(srv->auth, &ep->auth) < 0) {
		snprintf(err, errlen, "server %s: bad tls or auth setting", srv->host);
		return -1;
	}
	ep->ca_file = srv->ca_file != NULL ? srv->ca_file : ca_file;
	ep->tls_verify = true;
	ep->user = login;
	ep->auth_user = srv->master_user;
	ep->secret = secret;
	ep->timeout_s = 60;
	return 0;
}

/* The associated data binding a secret to its side and login.  Logins long
 * enough to be cut here were sealed cut the same way: keep the size. */
static void secret_aad(enum account_side side, const char *login, char *aad, size_t size)
{
	snprintf(aad, size, "%s:%s", side == ACCOUNT_SRC ? "src" : "dst", login);
}

int account_secret_seal(const struct secret_key *key, enum account_side side, const char *login,
                        const char *plain, unsigned char **blob_r, size_t *len_r, char *err,
                        size_t errlen)
{
	char aad[512];

	secret_aad(side, login, aad, sizeof(aad));
	return secret_encrypt(key, aad, (const unsigned char *)plain, strlen(plain), blob_r, len_r,
	                      err, errlen);
}

int account_secret_open(const struct secret_key *key, enum account_side side, const char *login,
                        const unsigned char *blob, size_t len, char **plain_r, char *err,
                        size_t errlen)
{
	char aad[512];

	secret_aad(side, login, aad, sizeof(aad));
	return secret_decrypt(key, aad, blob, len, plain_r, NULL, err, errlen);
}

int account_key_open(struct store *st, const char *key_file, bool create, struct secret_key **key_r,
                     char *err, size_t errlen)
{
	const char *file = key_file != NULL ? key_file : "$" SECRET_KEY_ENV;
	struct secret_key *key = NULL;
	unsigned char *check = NULL;
	char *stored_id = NULL, id[SECRET_KEY_ID_LEN + 1], why[256];
	char error[STORE_ERRLEN] = "";
	size_t len = 0;
	int ret = -1, r;

	*key_r = NULL;
	if (secret_key_load(key_file, &key, err, errlen) < 0)
		return -1;
	if (secret_key_id(key, id, sizeof(id)) < 0) {
		snprintf(err, errlen, "%s: cannot compute the key id", file);
		goto out;
	}
	r = store_key_check_get(st, &check, &len, &stored_id, error, sizeof(error));
	if (r < 0) {
		snprintf(err, errlen, "key check: %s", error);
		goto out;
	}
	if (r == STORE_KEY_CHECK_NONE && create) {
		if (secret_key_check_make(key, &check, &len, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s", file, why);
			goto out;
		}
		if (store_key_check_put(st, check, len, id, error, sizeof(error)) < 0) {
			snprintf(err, errlen, "key check: %s", error);
			goto out;
		}
		free(check);
		check = NULL;
		/* Another import may have stored its key's first: check against it. */
		r = store_key_check_get(st, &check, &len, &stored_id, error, sizeof(error));
		if (r < 0) {
			snprintf(err, errlen, "key check: %s", error);
			goto out;
		}
	}
	if (r == STORE_KEY_CHECK_FOUND &&
	    secret_key_check_verify(key, check, len, why, sizeof(why)) < 0) {
		snprintf(err, errlen,
		         "%s: this key (id %s) cannot decrypt the database's key check: its secrets"
		         " were encrypted under the key with id %s.  Give the key file the plans"
		         " were imported with (--key-file or MAILSHIFT_KEY_FILE); nothing was done",
		         file, id, stored_id);
		goto out;
	}
	*key_r = key;
	key = NULL;
	/* 1: accepted without a check to prove it (a database from before key
	 * checks, with nothing imported since). */
	ret = r == STORE_KEY_CHECK_FOUND ? ACCOUNT_KEY_CHECKED : ACCOUNT_KEY_UNCHECKED;
out:
	free(check);
	free(stored_id);
	secret_key_destroy(&key);
	return ret;
}

/* A side whose server has a token endpoint: the stored secret is the
 * refresh token, never sent to the IMAP server (the endpoint's secret stays
 * NULL: an access token is put in a copy of it). */
static int oauth_setup(struct account_creds *creds, enum account_side side,
                       const struct store_server *srv, char *err, size_t errlen)
{
	struct oauth_provider *p =
	    side == ACCOUNT_SRC ? &creds->src_provider : &creds->dst_provider;
	struct oauth_token *t = side == ACCOUNT_SRC ? &creds->src_token : &creds->dst_token;
	struct imap_endpoint *ep = side == ACCOUNT_SRC ? &creds->src : &creds->dst;
	const char *refresh = side == ACCOUNT_SRC ? creds->src_secret : creds->dst_secret;

	if (srv->oauth_token_url == NULL)
		return 0;
	if (ep->auth != IMAP_AUTH_XOAUTH2 && ep->auth != IMAP_AUTH_OAUTHBEARER) {
		snprintf(err, errlen,
		         "server %s: an OAuth2 token endpoint needs auth xoauth2 or"
		         " oauthbearer",
		         srv->host);
		return -1;
	}
	p->token_url = srv->oauth_token_url;
	p->client_id = srv->oauth_client_id != NULL ? srv->oauth_client_id : "";
	p->client_secret_file = srv->oauth_client_secret_file;
	p->scope = srv->oauth_scope;
	p->ca_file = srv->oauth_ca_file;
	if (oauth_token_init(t, p, refresh) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ep->secret = NULL;
	if (side == ACCOUNT_SRC)
		creds->src_oauth = true;
	else
		creds->dst_oauth = true;
	return 0;
}

/* oauth_rotated_fn: seals and stores the new refresh token. */
static void rotated_store(void *context, const char *refresh)
{
	const struct account_rotate *rot = context;
	const char *login = rot->side == ACCOUNT_SRC ? rot->acct->src_login : rot->acct->dst_login;
	const char *side = rot->side == ACCOUNT_SRC ? "source" : "destination";
	unsigned char *blob = NULL;
	size_t len = 0;
	char err[STORE_ERRLEN];

	if (account_secret_seal(rot->key, rot->side, login, refresh, &blob, &len, err,
	                        sizeof(err)) < 0 ||
	    store_account_token_rotated(rot->st, rot->acct->id, side, blob, len, err, sizeof(err)) <
	        0)
		log_warn("account %lld: the %s refresh token the endpoint rotated was not stored"
		         " (%s): it works until this run ends",
		         (long long)rot->acct->id, side, err);
	else
		log_info("account %lld: %s refresh token rotated by the endpoint, stored",
		         (long long)rot->acct->id, side);
	free(blob);
}

int account_oauth_token(struct account_creds *creds, const struct account_rotate *rot,
                        const char *refused, char **token_r, char *err, size_t errlen)
{
	struct oauth_token *t = rot->side == ACCOUNT_SRC ? &creds->src_token : &creds->dst_token;

	return oauth_token_get(t, refused, rotated_store, (void *)rot, token_r, err, errlen);
}

int account_creds_open(const struct store_account *acct, const struct secret_key *key,
                       const char *ca_file, struct account_creds *creds, char *err, size_t errlen)
{
	memset(creds, 0, sizeof(*creds));
	if (account_secret_open(key, ACCOUNT_SRC, acct->src_login, acct->src_secret,
	                        acct->src_secret_len, &creds->src_secret, err, errlen) < 0 ||
	    account_secret_open(key, ACCOUNT_DST, acct->dst_login, acct->dst_secret,
	                        acct->dst_secret_len, &creds->dst_secret, err, errlen) < 0) {
		account_creds_close(creds);
		return ACCOUNT_KEY_FAILED;
	}
	if (endpoint_setup(&creds->src, &acct->src, acct->src_login, creds->src_secret, ca_file,
	                   err, errlen) < 0 ||
	    endpoint_setup(&creds->dst, &acct->dst, acct->dst_login, creds->dst_secret, ca_file,
	                   err, errlen) < 0 ||
	    oauth_setup(creds, ACCOUNT_SRC, &acct->src, err, errlen) < 0 ||
	    oauth_setup(creds, ACCOUNT_DST, &acct->dst, err, errlen) < 0) {
		account_creds_close(creds);
		return -1;
	}
	return 0;
}

void account_creds_close(struct account_creds *creds)
{
	if (creds->src_secret != NULL)
		secret_free(&creds->src_secret);
	if (creds->dst_secret != NULL)
		secret_free(&creds->dst_secret);
	if (creds->src_oauth)
		oauth_token_destroy(&creds->src_token);
	if (creds->dst_oauth)
		oauth_token_destroy(&creds->dst_token);
	memset(creds, 0, sizeof(*creds));
}
