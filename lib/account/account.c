#include "account.h"

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
	                   err, errlen) < 0) {
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
	memset(creds, 0, sizeof(*creds));
}
