/* lib/secret: encryption round trip, authentication failures, key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "secret.h"

#define KEY_A_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B_HEX "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define DECRYPT_ERROR "cannot decrypt (wrong key or corrupted data)"

struct fixture {
	char dir[64];
	struct secret_key *key_a, *key_b;
};

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	/* Key files are private; test_key_file_mode tests the others. */
	assert_int_equal(chmod(path, 0600), 0);
}

static void path_in(const struct fixture *fx, const char *name, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", fx->dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[256];

	assert_non_null(fx);
	(void)snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_secret.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	assert_int_equal(setenv(SECRET_KEY_ENV, KEY_A_HEX, 1), 0);
	assert_int_equal(secret_key_load(NULL, &fx->key_a, err, sizeof(err)), 0);
	assert_int_equal(setenv(SECRET_KEY_ENV, KEY_B_HEX, 1), 0);
	assert_int_equal(secret_key_load(NULL, &fx->key_b, err, sizeof(err)), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	secret_key_destroy(&fx->key_a);
	secret_key_destroy(&fx->key_b);
	assert_null(fx->key_a);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static void encrypt_str(const struct secret_key *key, const char *aad, const char *plain,
                        unsigned char **out, size_t *outlen)
{
	char err[256];

	assert_int_equal(secret_encrypt(key, aad, (const unsigned char *)plain, strlen(plain), out,
	                                outlen, err, sizeof(err)),
	                 0);
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	const char *pw = "p@ss, w\"ord\n\xc3\xa9";
	unsigned char *ct = NULL, *ct2 = NULL;
	size_t ctlen, ct2len, len = 0;
	char *plain = NULL, err[256];

	encrypt_str(fx->key_a, "src:alice@example.com", pw, &ct, &ctlen);
	assert_int_equal(ctlen, strlen(pw) + SECRET_OVERHEAD);
	assert_int_equal(ct[0], 1);
	/* The plaintext does not appear in the output. */
	assert_null(memmem(ct, ctlen, "p@ss", 4));
	assert_int_equal(secret_decrypt(fx->key_a, "src:alice@example.com", ct, ctlen, &plain, &len,
	                                err, sizeof(err)),
	                 0);
	assert_string_equal(plain, pw);
	assert_int_equal(len, strlen(pw));
	secret_free(&plain);
	assert_null(plain);

	/* A fresh nonce each time: equal plaintexts give different blobs. */
	encrypt_str(fx->key_a, "src:alice@example.com", pw, &ct2, &ct2len);
	assert_int_equal(ct2len, ctlen);
	assert_memory_not_equal(ct, ct2, ctlen);
	free(ct);
	free(ct2);

	/* Empty plaintext and NULL aad (same as ""). */
	encrypt_str(fx->key_a, NULL, "", &ct, &ctlen);
	assert_int_equal(ctlen, SECRET_OVERHEAD);
	assert_int_equal(secret_decrypt(fx->key_a, "", ct, ctlen, &plain, &len, err, sizeof(err)),
	                 0);
	assert_string_equal(plain, "");
	assert_int_equal(len, 0);
	secret_free(&plain);
	free(ct);
}

static void assert_decrypt_fails(const struct secret_key *key, const char *aad,
                                 const unsigned char *ct, size_t ctlen)
{
	char *plain = (char *)"sentinel", err[256] = "";
	size_t len = 99;

	assert_int_equal(secret_decrypt(key, aad, ct, ctlen, &plain, &len, err, sizeof(err)), -1);
	assert_string_equal(err, DECRYPT_ERROR);
	assert_null(plain);
	assert_int_equal(len, 0);
}

static void test_wrong_key(void **state)
{
	struct fixture *fx = *state;
	unsigned char *ct = NULL;
	size_t ctlen;

	encrypt_str(fx->key_a, "src:bob", "hunter2", &ct, &ctlen);
	assert_decrypt_fails(fx->key_b, "src:bob", ct, ctlen);
	free(ct);
}

static void test_tampered(void **state)
{
	struct fixture *fx = *state;
	unsigned char *ct = NULL;
	size_t ctlen, i;

	encrypt_str(fx->key_a, "src:bob", "hunter2", &ct, &ctlen);
	/* Every byte after the version: nonce, ciphertext and tag. */
	for (i = 1; i < ctlen; i++) {
		ct[i] ^= 0x01;
		assert_decrypt_fails(fx->key_a, "src:bob", ct, ctlen);
		ct[i] ^= 0x01;
	}
	/* Truncated. */
	assert_decrypt_fails(fx->key_a, "src:bob", ct, ctlen - 1);
	assert_decrypt_fails(fx->key_a, "src:bob", ct, SECRET_OVERHEAD - 1);
	free(ct);
}

static void test_wrong_aad(void **state)
{
	struct fixture *fx = *state;
	unsigned char *ct = NULL;
	size_t ctlen;

	encrypt_str(fx->key_a, "src:bob", "hunter2", &ct, &ctlen);
	assert_decrypt_fails(fx->key_a, "dst:bob", ct, ctlen);
	assert_decrypt_fails(fx->key_a, "src:bob2", ct, ctlen);
	assert_decrypt_fails(fx->key_a, NULL, ct, ctlen);
	free(ct);
}

static void test_unknown_version(void **state)
{
	struct fixture *fx = *state;
	unsigned char *ct = NULL;
	char *plain = NULL, err[256];
	size_t ctlen;

	encrypt_str(fx->key_a, "x", "hunter2", &ct, &ctlen);
	ct[0] = 2;
	assert_int_equal(secret_decrypt(fx->key_a, "x", ct, ctlen, &plain, NULL, err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "cannot decrypt: unknown format version 2");
	free(ct);
}

static void test_key_file_forms(void **state)
{
	struct fixture *fx = *state;
	unsigned char raw[32], *ct = NULL;
	struct secret_key *key = NULL;
	char path[128], *plain = NULL, err[256];
	size_t ctlen, i;

	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	encrypt_str(fx->key_a, "a", "secret", &ct, &ctlen);

	/* Raw 32 bytes, hex, hex + LF, hex + CRLF, upper-case hex: all key A. */
	path_in(fx, "raw.key", path, sizeof(path));
	write_file(path, raw, sizeof(raw));
	assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), 0);
	assert_int_equal(secret_decrypt(key, "a", ct, ctlen, &plain, NULL, err, sizeof(err)), 0);
	assert_string_equal(plain, "secret");
	secret_free(&plain);
	secret_key_destroy(&key);

	static const char *const forms[] = {
	    KEY_A_HEX, KEY_A_HEX "\n", KEY_A_HEX "\r\n",
	    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"};
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		path_in(fx, "hex.key", path, sizeof(path));
		write_file(path, forms[i], strlen(forms[i]));
		assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), 0);
		assert_int_equal(
		    secret_decrypt(key, "a", ct, ctlen, &plain, NULL, err, sizeof(err)), 0);
		assert_string_equal(plain, "secret");
		secret_free(&plain);
		secret_key_destroy(&key);
	}
	free(ct);
}

static void test_key_file_errors(void **state)
{
	struct fixture *fx = *state;
	struct secret_key *key = NULL;
	char path[128], expected[512], err[256];

	path_in(fx, "short.key", path, sizeof(path));
	write_file(path, "0011223344\n", 11);
	assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), -1);
	assert_null(key);
	(void)snprintf(expected, sizeof(expected),
	               "%s: key file must hold 32 raw bytes or 64 hex characters, it holds 10 "
	               "bytes",
	               path);
	assert_string_equal(err, expected);

	/* 64 characters, not hex: the error must not show the content. */
	path_in(fx, "nothex.key", path, sizeof(path));
	write_file(path, "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65);
	assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), -1);
	(void)snprintf(expected, sizeof(expected),
	               "%s: key file of 64 characters contains a character that is not hex", path);
	assert_string_equal(err, expected);
	assert_null(strstr(err, "zz01"));

	path_in(fx, "missing.key", path, sizeof(path));
	assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), -1);
	(void)snprintf(expected, sizeof(expected),
	               "%s: cannot open key file: No such file or directory", path);
	assert_string_equal(err, expected);

	assert_int_equal(setenv(SECRET_KEY_ENV, "abcd", 1), 0);
	assert_int_equal(secret_key_load(NULL, &key, err, sizeof(err)), -1);
	assert_string_equal(err,
	                    "MAILSHIFT_SECRET_KEY: must be 64 hex characters, found 4 characters");
	assert_int_equal(unsetenv(SECRET_KEY_ENV), 0);
	assert_int_equal(secret_key_load(NULL, &key, err, sizeof(err)), -1);
	assert_string_equal(err, "MAILSHIFT_SECRET_KEY is not set and no key file was given");
	assert_null(key);
}

static void test_generate(void **state)
{
	struct fixture *fx = *state;
	struct secret_key *key = NULL;
	unsigned char *ct = NULL;
	char path[128], expected[512], *plain = NULL, err[256], buf[128];
	struct stat st;
	size_t ctlen, i, n;
	FILE *fp;

	path_in(fx, "new.key", path, sizeof(path));
	assert_int_equal(secret_key_generate(path, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(n, 65);
	assert_int_equal(buf[64], '\n');
	for (i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", buf[i]));

	assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), 0);
	encrypt_str(key, "a", "tok", &ct, &ctlen);
	assert_int_equal(secret_decrypt(key, "a", ct, ctlen, &plain, NULL, err, sizeof(err)), 0);
	assert_string_equal(plain, "tok");
	secret_free(&plain);
	/* A generated key is not the fixed test key. */
	assert_decrypt_fails(fx->key_a, "a", ct, ctlen);
	free(ct);
	secret_key_destroy(&key);

	/* Never overwrites. */
	assert_int_equal(secret_key_generate(path, err, sizeof(err)), -1);
	(void)snprintf(expected, sizeof(expected), "%s: cannot create key file: File exists", path);
	assert_string_equal(err, expected);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(expected, 1, sizeof(expected), fp), 65);
	assert_int_equal(fclose(fp), 0);
	assert_memory_equal(expected, buf, 65);
}

/* A key file group or others may read is refused with what to do, or only
 * warned about with MAILSHIFT_KEY_FILE_PERMISSIVE=1. */
static void test_key_file_mode(void **state)
{
	struct fixture *fx = *state;
	struct secret_key *key = NULL;
	char path[128], err[512], expected[512];

	path_in(fx, "open.key", path, sizeof(path));
	write_file(path, KEY_A_HEX "\n", 65);
	for (int i = 0; i < 3; i++) {
		mode_t mode = i == 0 ? 0644 : i == 1 ? 0640 : 0602;

		assert_int_equal(chmod(path, mode), 0);
		assert_int_equal(unsetenv(SECRET_KEY_PERMISSIVE_ENV), 0);
		assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), -1);
		assert_null(key);
		(void)snprintf(
		    expected, sizeof(expected),
		    "%s: key file is readable or writable by group or others (mode %04o):"
		    " run `chmod 600 %s` (or set %s=1 to only warn)",
		    path, (unsigned)mode, path, SECRET_KEY_PERMISSIVE_ENV);
		assert_string_equal(err, expected);
		/* Only "1" relaxes it. */
		assert_int_equal(setenv(SECRET_KEY_PERMISSIVE_ENV, "yes", 1), 0);
		assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), -1);
		assert_int_equal(setenv(SECRET_KEY_PERMISSIVE_ENV, "1", 1), 0);
		assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), 0);
		secret_key_destroy(&key);
	}
	assert_int_equal(unsetenv(SECRET_KEY_PERMISSIVE_ENV), 0);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(secret_key_load(path, &key, err, sizeof(err)), 0);
	secret_key_destroy(&key);
}

/* The key check value: made under one key, it verifies under that key only;
 * the key id tells keys apart and reveals none of the key's bytes. */
static void test_key_check(void **state)
{
	struct fixture *fx = *state;
	unsigned char *check = NULL, *check2 = NULL;
	size_t len = 0, len2 = 0;
	char id_a[SECRET_KEY_ID_LEN + 1], id_a2[SECRET_KEY_ID_LEN + 1], id_b[SECRET_KEY_ID_LEN + 1];
	char err[256] = "";

	assert_int_equal(secret_key_check_make(fx->key_a, &check, &len, err, sizeof(err)), 0);
	assert_int_equal(secret_key_check_verify(fx->key_a, check, len, err, sizeof(err)), 0);
	assert_int_equal(secret_key_check_verify(fx->key_b, check, len, err, sizeof(err)), -1);
	assert_string_equal(err, DECRYPT_ERROR);
	/* A password blob of the same key is not a key check (other aad). */
	encrypt_str(fx->key_a, "src:x", "mailshift key check v1", &check2, &len2);
	assert_int_equal(secret_key_check_verify(fx->key_a, check2, len2, err, sizeof(err)), -1);
	free(check2);
	check[len - 1] ^= 1;
	assert_int_equal(secret_key_check_verify(fx->key_a, check, len, err, sizeof(err)), -1);
	free(check);

	assert_int_equal(secret_key_id(fx->key_a, id_a, sizeof(id_a)), 0);
	assert_int_equal(secret_key_id(fx->key_a, id_a2, sizeof(id_a2)), 0);
	assert_int_equal(secret_key_id(fx->key_b, id_b, sizeof(id_b)), 0);
	assert_int_equal(strlen(id_a), SECRET_KEY_ID_LEN);
	assert_string_equal(id_a, id_a2);
	assert_string_not_equal(id_a, id_b);
	/* Not a piece of the key's hex. */
	assert_null(strstr(KEY_A_HEX, id_a));
	assert_int_equal(secret_key_id(fx->key_a, id_a, SECRET_KEY_ID_LEN), -1);
}

/* Wiping: secret_wipe zeroes, secret_free wipes and clears the pointer, and
 * a key lives on its own page-aligned allocation. */
static void test_wipe(void **state)
{
	struct fixture *fx = *state;
	char buf[16] = "hunter2-hunter2", zero[16] = {0};
	char *plain = strdup("hunter2");

	secret_wipe(buf, sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	secret_wipe(NULL, 5);
	assert_non_null(plain);
	secret_free(&plain);
	assert_null(plain);
	secret_free(&plain);
	secret_free(NULL);
	assert_int_equal((uintptr_t)fx->key_a % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
	/* Locked in memory: this process has locked pages now (ASan makes
	 * mlock a no-op, so only the uninstrumented build can tell). */
	assert_int_equal(secret_key_is_locked(fx->key_a), 1);
#if !defined(__SANITIZE_ADDRESS__)
	{
		char line[256];
		long kb = -1;
		FILE *fp = fopen("/proc/self/status", "r");

		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp) != NULL)
			if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
				break;
		assert_int_equal(fclose(fp), 0);
		assert_true(kb > 0);
	}
#endif
}

/* secret_process_protect: no core dumps (checked in a child, which it
 * changes for good). */
static void test_process_protect(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl;
		char err[256];

		if (secret_process_protect(err, sizeof(err)) < 0)
			_exit(1);
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
			_exit(2);
		if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_wrong_aad),
	    cmocka_unit_test(test_unknown_version),
	    cmocka_unit_test(test_key_file_forms),
	    cmocka_unit_test(test_key_file_errors),
	    cmocka_unit_test(test_generate),
	    cmocka_unit_test(test_key_file_mode),
	    cmocka_unit_test(test_key_check),
	    cmocka_unit_test(test_wipe),
	    cmocka_unit_test(test_process_protect),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
