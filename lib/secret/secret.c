/* AES-256-GCM with a 96-bit random nonce per message (NIST SP 800-38D 8.2.2):
 * with random nonces one key stays safe for well over the 2^32 encryptions
 * bound, far beyond the number of account secrets a deployment stores. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SECRET_VERSION 1
#define SECRET_KEY_LEN 32
#define SECRET_NONCE_LEN 12
#define SECRET_TAG_LEN 16
#define SECRET_HEX_LEN (SECRET_KEY_LEN * 2)
/* Enough to tell a key file from something else without reading a big file. */
#define SECRET_KEY_FILE_MAX 128

static const char secret_decrypt_failed[] = "cannot decrypt (wrong key or corrupted data)";

/* The key lives alone on its own page(s): locked in RAM (never swapped out)
 * and excluded from core dumps (MADV_DONTDUMP), both best effort. */
struct secret_key {
	unsigned char bytes[SECRET_KEY_LEN];
	size_t alloc; /* bytes allocated, page-aligned */
	int locked;   /* mlock succeeded */
};

/* The plaintext a key check value holds, and its aad. */
static const char key_check_plain[] = "mailshift key check v1";
static const char key_check_aad[] = "mailshift:key-check";

static void secret_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void secret_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list args;

	if (err == NULL || errlen == 0)
		return;
	va_start(args, fmt);
	/* Truncation of an error message is acceptable. */
	(void)vsnprintf(err, errlen, fmt, args);
	va_end(args);
}

void secret_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void secret_free(char **plain)
{
	if (plain == NULL || *plain == NULL)
		return;
	secret_wipe(*plain, strlen(*plain));
	free(*plain);
	*plain = NULL;
}

static struct secret_key *key_alloc(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = page > 0 ? (size_t)page : 4096;
	struct secret_key *key = NULL;

	while (size < sizeof(*key))
		size *= 2;
	if (posix_memalign((void **)&key, size, size) != 0)
		return NULL;
	memset(key, 0, size);
	key->alloc = size;
	/* A failed mlock (RLIMIT_MEMLOCK) is no reason to stop: the dump
	 * exclusion and the process's own dump settings still hold. */
	key->locked = mlock(key, size) == 0;
#ifdef MADV_DONTDUMP
	(void)madvise(key, size, MADV_DONTDUMP);
#endif
	return key;
}

void secret_key_destroy(struct secret_key **key)
{
	struct secret_key *k;
	size_t size;

	if (key == NULL || *key == NULL)
		return;
	k = *key;
	size = k->alloc;
	secret_wipe(k->bytes, sizeof(k->bytes));
#ifdef MADV_DODUMP
	(void)madvise(k, size, MADV_DODUMP);
#endif
	if (k->locked)
		(void)munlock(k, size);
	free(k);
	*key = NULL;
}

int secret_process_protect(char *err, size_t errlen)
{
	struct rlimit none = {0, 0};

	/* Not dumpable: no core file, no ptrace attach by the same user, and
	 * /proc/PID/mem unreadable to others. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		secret_error(err, errlen, "cannot disable core dumps (prctl): %s", strerror(errno));
		return -1;
	}
	if (setrlimit(RLIMIT_CORE, &none) < 0) {
		secret_error(err, errlen, "cannot disable core dumps (RLIMIT_CORE): %s",
		             strerror(errno));
		return -1;
	}
	return 0;
}

int secret_key_is_locked(const struct secret_key *key)
{
	return key->locked;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes exactly SECRET_HEX_LEN hex characters; no partial output is left on
 * failure. */
static int hex_decode_key(const unsigned char *hex, unsigned char *out)
{
	size_t i;

	for (i = 0; i < SECRET_KEY_LEN; i++) {
		int hi = hex_value(hex[2 * i]);
		int lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			secret_wipe(out, SECRET_KEY_LEN);
			return -1;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Reads at most SECRET_KEY_FILE_MAX bytes; *len_r > SECRET_KEY_FILE_MAX tells
 * "too long" without keeping the excess. */
static int read_key_file(const char *path, unsigned char *buf, size_t *len_r, char *err,
                         size_t errlen)
{
	struct stat st;
	size_t len = 0;
	int fd = -1, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		secret_error(err, errlen, "%s: cannot open key file: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		secret_error(err, errlen, "%s: cannot stat key file: %s", path, strerror(errno));
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		const char *permissive = getenv(SECRET_KEY_PERMISSIVE_ENV);
		char what[512];

		(void)snprintf(
		    what, sizeof(what),
		    "%s: key file is readable or writable by group or others (mode %04o):"
		    " run `chmod 600 %s`",
		    path, (unsigned)(st.st_mode & 07777), path);
		if (permissive == NULL || strcmp(permissive, "1") != 0) {
			secret_error(err, errlen, "%s (or set %s=1 to only warn)", what,
			             SECRET_KEY_PERMISSIVE_ENV);
			goto out;
		}
		fprintf(stderr, "warning: %s (accepted: %s=1)\n", what, SECRET_KEY_PERMISSIVE_ENV);
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, SECRET_KEY_FILE_MAX + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			secret_error(err, errlen, "%s: cannot read key file: %s", path,
			             strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_KEY_FILE_MAX)
			break;
	}
	*len_r = len;
	ret = 0;
out:
	if (fd >= 0)
		(void)close(fd);
	return ret;
}

int secret_key_load(const char *path, struct secret_key **key_r, char *err, size_t errlen)
{
	unsigned char buf[SECRET_KEY_FILE_MAX + 1];
	struct secret_key *key = NULL;
	size_t len = 0;
	int ret = -1;

	*key_r = NULL;
	key = key_alloc();
	if (key == NULL) {
		secret_error(err, errlen, "out of memory");
		goto out;
	}

	if (path == NULL) {
		const char *env = getenv(SECRET_KEY_ENV);

		if (env == NULL || env[0] == '\0') {
			secret_error(err, errlen, "%s is not set and no key file was given",
			             SECRET_KEY_ENV);
			goto out;
		}
		len = strlen(env);
		if (len != SECRET_HEX_LEN) {
			secret_error(err, errlen,
			             "%s: must be %d hex characters, found %zu characters",
			             SECRET_KEY_ENV, SECRET_HEX_LEN, len);
			goto out;
		}
		if (hex_decode_key((const unsigned char *)env, key->bytes) < 0) {
			secret_error(err, errlen, "%s: contains a character that is not hex",
			             SECRET_KEY_ENV);
			goto out;
		}
		ret = 0;
		goto out;
	}

	if (read_key_file(path, buf, &len, err, errlen) < 0)
		goto out;
	if (len == SECRET_KEY_LEN) {
		memcpy(key->bytes, buf, SECRET_KEY_LEN);
		ret = 0;
		goto out;
	}
	/* Hex form, with at most one trailing LF or CRLF. */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len != SECRET_HEX_LEN) {
		if (len > SECRET_KEY_FILE_MAX)
			secret_error(err, errlen,
			             "%s: key file must hold 32 raw bytes or 64 hex characters, "
			             "it holds more than %d bytes",
			             path, SECRET_KEY_FILE_MAX);
		else
			secret_error(err, errlen,
			             "%s: key file must hold 32 raw bytes or 64 hex characters, "
			             "it holds %zu bytes",
			             path, len);
		goto out;
	}
	if (hex_decode_key(buf, key->bytes) < 0) {
		secret_error(err, errlen,
		             "%s: key file of 64 characters contains a character that is not hex",
		             path);
		goto out;
	}
	ret = 0;
out:
	secret_wipe(buf, sizeof(buf));
	if (ret == 0) {
		*key_r = key;
		key = NULL;
	}
	secret_key_destroy(&key);
	return ret;
}

int secret_key_generate(const char *path, char *err, size_t errlen)
{
	static const char hexdigits[] = "0123456789abcdef";
	unsigned char raw[SECRET_KEY_LEN];
	char hex[SECRET_HEX_LEN + 1];
	size_t i, done = 0;
	int fd = -1, ret = -1, created = 0;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		secret_error(err, errlen, "%s: cannot get random bytes for a key", path);
		goto out;
	}
	for (i = 0; i < SECRET_KEY_LEN; i++) {
		hex[2 * i] = hexdigits[raw[i] >> 4];
		hex[2 * i + 1] = hexdigits[raw[i] & 0x0f];
	}
	hex[SECRET_HEX_LEN] = '\n';

	/* O_EXCL: never replace an existing key, which would make every stored
	 * secret unreadable. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		secret_error(err, errlen, "%s: cannot create key file: %s", path, strerror(errno));
		goto out;
	}
	created = 1;
	/* The umask may only remove bits; make sure group/other have none. */
	if (fchmod(fd, 0600) < 0) {
		secret_error(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(errno));
		goto out;
	}
	while (done < sizeof(hex)) {
		ssize_t n = write(fd, hex + done, sizeof(hex) - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			secret_error(err, errlen, "%s: cannot write key file: %s", path,
			             strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		secret_error(err, errlen, "%s: cannot sync key file: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		secret_error(err, errlen, "%s: cannot close key file: %s", path, strerror(errno));
		ret = -1;
	}
	if (ret < 0 && created)
		(void)unlink(path);
	secret_wipe(raw, sizeof(raw));
	secret_wipe(hex, sizeof(hex));
	return ret;
}

int secret_encrypt(const struct secret_key *key, const char *aad, const unsigned char *plain,
                   size_t len, unsigned char **out_r, size_t *outlen_r, char *err, size_t errlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *out = NULL;
	size_t aadlen = aad == NULL ? 0 : strlen(aad);
	int n, ret = -1;

	*out_r = NULL;
	*outlen_r = 0;
	if (len > (size_t)INT_MAX - SECRET_OVERHEAD || aadlen > (size_t)INT_MAX) {
		secret_error(err, errlen, "cannot encrypt: secret too long");
		goto out;
	}
	out = malloc(len + SECRET_OVERHEAD);
	if (out == NULL) {
		secret_error(err, errlen, "out of memory");
		goto out;
	}
	out[0] = SECRET_VERSION;
	if (RAND_bytes(out + 1, SECRET_NONCE_LEN) != 1) {
		secret_error(err, errlen, "cannot encrypt: no random bytes for the nonce");
		goto out;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key->bytes, out + 1) != 1 ||
	    (aadlen > 0 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aadlen) != 1) ||
	    (len > 0 &&
	     EVP_EncryptUpdate(ctx, out + 1 + SECRET_NONCE_LEN, &n, plain, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + 1 + SECRET_NONCE_LEN + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRET_TAG_LEN,
	                        out + 1 + SECRET_NONCE_LEN + len) != 1) {
		secret_error(err, errlen, "cannot encrypt: OpenSSL AES-256-GCM failed");
		goto out;
	}
	*out_r = out;
	*outlen_r = len + SECRET_OVERHEAD;
	out = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (out != NULL) {
		secret_wipe(out, len + SECRET_OVERHEAD);
		free(out);
	}
	return ret;
}

int secret_decrypt(const struct secret_key *key, const char *aad, const unsigned char *in,
                   size_t len, char **plain_r, size_t *len_r, char *err, size_t errlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char tag[SECRET_TAG_LEN];
	char *plain = NULL;
	size_t aadlen = aad == NULL ? 0 : strlen(aad);
	size_t ctlen = 0;
	int n, ret = -1;

	*plain_r = NULL;
	if (len_r != NULL)
		*len_r = 0;
	if (len < SECRET_OVERHEAD || len > (size_t)INT_MAX || aadlen > (size_t)INT_MAX) {
		secret_error(err, errlen, "%s", secret_decrypt_failed);
		goto out;
	}
	if (in[0] != SECRET_VERSION) {
		secret_error(err, errlen, "cannot decrypt: unknown format version %u",
		             (unsigned)in[0]);
		goto out;
	}
	ctlen = len - SECRET_OVERHEAD;
	plain = malloc(ctlen + 1);
	if (plain == NULL) {
		secret_error(err, errlen, "out of memory");
		goto out;
	}
	/* OpenSSL's SET_TAG wants a writable buffer. */
	memcpy(tag, in + 1 + SECRET_NONCE_LEN + ctlen, SECRET_TAG_LEN);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key->bytes, in + 1) != 1) {
		secret_error(err, errlen, "cannot decrypt: OpenSSL AES-256-GCM failed");
		goto out;
	}
	if ((aadlen > 0 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aadlen) != 1) ||
	    (ctlen > 0 && EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n,
	                                    in + 1 + SECRET_NONCE_LEN, (int)ctlen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRET_TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + ctlen, &n) != 1) {
		secret_error(err, errlen, "%s", secret_decrypt_failed);
		goto out;
	}
	plain[ctlen] = '\0';
	*plain_r = plain;
	if (len_r != NULL)
		*len_r = ctlen;
	plain = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (plain != NULL) {
		/* Unauthenticated output must not leak either. */
		secret_wipe(plain, ctlen + 1);
		free(plain);
	}
	return ret;
}

int secret_key_id(const struct secret_key *key, char *id, size_t idlen)
{
	static const char hexdigits[] = "0123456789abcdef";
	static const char label[] = "mailshift key id v1";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (idlen < SECRET_KEY_ID_LEN + 1 ||
	    HMAC(EVP_sha256(), key->bytes, SECRET_KEY_LEN, (const unsigned char *)label,
	         sizeof(label) - 1, mac, &maclen) == NULL ||
	    maclen < SECRET_KEY_ID_LEN / 2)
		return -1;
	for (size_t i = 0; i < SECRET_KEY_ID_LEN / 2; i++) {
		id[2 * i] = hexdigits[mac[i] >> 4];
		id[2 * i + 1] = hexdigits[mac[i] & 0x0f];
	}
	id[SECRET_KEY_ID_LEN] = '\0';
	return 0;
}

int secret_key_check_make(const struct secret_key *key, unsigned char **out_r, size_t *outlen_r,
                          char *err, size_t errlen)
{
	return secret_encrypt(key, key_check_aad, (const unsigned char *)key_check_plain,
	                      sizeof(key_check_plain) - 1, out_r, outlen_r, err, errlen);
}

int secret_key_check_verify(const struct secret_key *key, const unsigned char *check, size_t len,
                            char *err, size_t errlen)
{
	char *plain = NULL;
	int ret = -1;

	if (secret_decrypt(key, key_check_aad, check, len, &plain, NULL, err, errlen) < 0)
		return -1;
	if (strcmp(plain, key_check_plain) == 0)
		ret = 0;
	else
		secret_error(err, errlen, "%s", secret_decrypt_failed);
	secret_free(&plain);
	return ret;
}
