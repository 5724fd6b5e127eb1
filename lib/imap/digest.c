/* Message identity, shared by the worker (which messages a destination
 * already holds) and the coordinator's proof of completeness (which messages
 * are the same on both sides): one rule, in one place. */
#include "imap.h"

#include <openssl/evp.h>
#include <unistd.h>

/* SHA-256 of the bytes with every CR left out, so that a destination which
 * normalises line endings on storage by adding or dropping CRs (bare LF to
 * CRLF, or CRLF to LF) still matches its copy.  One that turns a bare CR into
 * CRLF adds an LF: its copy does not match.  A message is fed in pieces
 * (spooled) the same way. */
static void digest_update_no_cr(EVP_MD_CTX *ctx, const char *data, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\r')
			continue;
		if (i > start)
			EVP_DigestUpdate(ctx, data + start, i - start);
		start = i + 1;
	}
	if (len > start)
		EVP_DigestUpdate(ctx, data + start, len - start);
}

int imap_msg_hash(const struct imap_msg *m, unsigned char out[IMAP_HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = IMAP_HASH_LEN;
	char buf[65536];
	int ret = 0;

	if (ctx == NULL)
		return -1;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	if (!m->spooled)
		digest_update_no_cr(ctx, m->body, m->body_len);
	for (size_t off = 0; m->spooled && off < m->body_len;) {
		size_t want = m->body_len - off < sizeof(buf) ? m->body_len - off : sizeof(buf);
		ssize_t got = pread(m->body_fd, buf, want, (off_t)off);
		if (got <= 0) {
			ret = -1;
			break;
		}
		digest_update_no_cr(ctx, buf, (size_t)got);
		off += (size_t)got;
	}
	EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
	return ret;
}
