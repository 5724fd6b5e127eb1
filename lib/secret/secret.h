/* Encryption of account passwords and tokens at rest: AES-256-GCM (OpenSSL).
 *
 * The key comes from a file or the MAILSHIFT_SECRET_KEY environment variable
 * (a Kubernetes Secret).  No function here ever puts key or plaintext bytes into
 * an error text.  All functions return 0 on success and a negative value on
 * failure with a message in the caller's err buffer (errlen bytes).
 *
 * Ciphertext format, version 1:
 *   0x01 || 12-byte random nonce || ciphertext (same length as plaintext) || 16-byte tag
 * The aad (additional authenticated data) binds a ciphertext to its context, e.g.
 * "src:" + login, so a blob copied to another account or role does not decrypt. */
#ifndef MAILSHIFT_SECRET_H
#define MAILSHIFT_SECRET_H

#include <stddef.h>

#define SECRET_KEY_ENV "MAILSHIFT_SECRET_KEY"
/* Set to 1: a key file readable by group or others is only warned about. */
#define SECRET_KEY_PERMISSIVE_ENV "MAILSHIFT_KEY_FILE_PERMISSIVE"
/* Hex characters of a key id (secret_key_id). */
#define SECRET_KEY_ID_LEN 16
/* Bytes a ciphertext adds to its plaintext: version, nonce, tag. */
#define SECRET_OVERHEAD (1 + 12 + 16)

struct secret_key;

/* Loads the key from a file holding 32 raw bytes or 64 hex characters
 * (optionally followed by a newline); if path is NULL, from the environment
 * variable MAILSHIFT_SECRET_KEY (64 hex characters).  A key file that group or
 * others may read or write is refused (only warned about on stderr when
 * MAILSHIFT_KEY_FILE_PERMISSIVE=1).  The key is kept on its own page, locked
 * in memory and excluded from core dumps where the system allows.  The error
 * names the file (or variable) and what is wrong, never the key.  Free with
 * secret_key_destroy. */
int secret_key_load(const char *path, struct secret_key **key_r, char *err, size_t errlen);

/* Writes a new random key file (mode 0600, 64 hex characters and a newline).
 * Fails if the file already exists: a key is never overwritten. */
int secret_key_generate(const char *path, char *err, size_t errlen);

/* Wipes and frees the key; accepts NULL and sets *key to NULL. */
void secret_key_destroy(struct secret_key **key);

/* Encrypts len bytes of plain.  aad may be NULL (same as "").  On success
 * *out_r (caller frees with free()) holds *outlen_r = len + SECRET_OVERHEAD
 * bytes.  Thread-safe: the key is only read. */
int secret_encrypt(const struct secret_key *key, const char *aad, const unsigned char *plain,
                   size_t len, unsigned char **out_r, size_t *outlen_r, char *err, size_t errlen);

/* Decrypts and authenticates a secret_encrypt() output with the same aad.  On
 * success *plain_r is a NUL-terminated copy of the plaintext, *len_r (may be
 * NULL) its length; the caller releases it with secret_free().  A wrong key,
 * wrong aad or any modified byte gives "cannot decrypt (wrong key or corrupted
 * data)". */
int secret_decrypt(const struct secret_key *key, const char *aad, const unsigned char *in,
                   size_t len, char **plain_r, size_t *len_r, char *err, size_t errlen);

/* The process holding keys and plaintext passwords: not dumpable
 * (prctl PR_SET_DUMPABLE 0) and RLIMIT_CORE 0, so a crash or an abort leaves
 * no core file with secrets in it.  Call once at start. */
int secret_process_protect(char *err, size_t errlen);
/* 1 if the key's memory is locked (mlock), 0 if the system refused. */
int secret_key_is_locked(const struct secret_key *key);

/* A key id: SECRET_KEY_ID_LEN hex characters of HMAC-SHA256(key, label),
 * which tells keys apart without revealing anything of the key.  id holds at
 * least SECRET_KEY_ID_LEN + 1 bytes. */
int secret_key_id(const struct secret_key *key, char *id, size_t idlen);
/* A key check value: a known constant encrypted under the key (stored at
 * import), and its test: 0 only if key decrypts it to that constant. */
int secret_key_check_make(const struct secret_key *key, unsigned char **out_r, size_t *outlen_r,
                          char *err, size_t errlen);
int secret_key_check_verify(const struct secret_key *key, const unsigned char *check, size_t len,
                            char *err, size_t errlen);

/* Overwrites n bytes at p with zeros in a way the compiler cannot drop. */
void secret_wipe(void *p, size_t n);

/* Wipes strlen(*plain) bytes, frees, sets *plain to NULL; accepts NULL. */
void secret_free(char **plain);

#endif
