/* An account's credentials turned into IMAP endpoints: the stored secrets are
 * decrypted (lib/secret) and the server settings mapped (lib/imap).  Used by
 * the worker (copy) and the coordinator (credential verification). */
#ifndef MAILSHIFT_ACCOUNT_H
#define MAILSHIFT_ACCOUNT_H

#include "imap.h"
#include "secret.h"
#include "store.h"

struct account_creds {
	struct imap_endpoint src, dst;
	char *src_secret, *dst_secret; /* plaintext, wiped by account_creds_close */
};

/* Fills creds for acct (which must outlive creds).  ca_file is an extra CA
 * file used for a server without its own, or NULL.  The ciphertexts are bound
 * to "src:<login>" and "dst:<login>" (see the coordinator's import). */
int account_creds_open(const struct store_account *acct, const struct secret_key *key,
		       const char *ca_file, struct account_creds *creds, char *err, size_t errlen);
/* Wipes and frees the plaintexts; safe on a zeroed or half-opened struct. */
void account_creds_close(struct account_creds *creds);

#endif
