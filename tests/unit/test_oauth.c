/* lib/oauth against tests/infra/oauth_server.py (HTTPS with a certificate
 * made here): the grant and its rotation, the provider's refusals in its own
 * words without any secret, TLS verification, an endpoint down, and the
 * cache of access tokens (reused, refreshed near expiry and when refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "oauth.h"
#include "secret.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
	char dir[64];
	char url[128], ca[128], secret_file[128];
	char alice[128], bob[128]; /* refresh tokens granted at start */
	pid_t pid;
} fx;

static int setup(void **state)
{
	char cmd[1024], line[256], cert[128], key[128], st[128];
	int pipefd[2];
	FILE *out;

	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test-oauth.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", fx.dir);
	snprintf(key, sizeof(key), "%s/key.pem", fx.dir);
	snprintf(st, sizeof(st), "%s/state.json", fx.dir);
	snprintf(fx.ca, sizeof(fx.ca), "%s", cert);
	snprintf(fx.secret_file, sizeof(fx.secret_file), "%s/client-secret", fx.dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
	         " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s -out %s"
	         " >/dev/null 2>&1 && printf 'cs-unit-S3cret\\n' >%s",
	         key, cert, fx.secret_file);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pipe(pipefd), 0);
	fx.pid = fork();
	assert_true(fx.pid >= 0);
	if (fx.pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execl(PYTHON, PYTHON, OAUTH_SERVER, "--port", "0", "--introspect-port", "0",
		      "--cert", cert, "--key", key, "--state", st, "--client-id", "app",
		      "--client-secret", "cs-unit-S3cret", "--lifetime", "4", "--rotate", "--grant",
		      "alice", "--grant", "bob", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	out = fdopen(pipefd[0], "r");
	assert_non_null(out);
	while (fgets(line, sizeof(line), out) != NULL) {
		char user[32], token[128];
		int port;
		if (sscanf(line, "grant %31s %127s", user, token) == 2)
			snprintf(strcmp(user, "alice") == 0 ? fx.alice : fx.bob, sizeof(fx.alice),
			         "%s", token);
		if (sscanf(line, "listening on 127.0.0.1:%d", &port) == 1) {
			snprintf(fx.url, sizeof(fx.url), "https://127.0.0.1:%d/token", port);
			break;
		}
	}
	fclose(out);
	assert_true(fx.url[0] != '\0' && fx.alice[0] != '\0' && fx.bob[0] != '\0');
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (fx.pid > 0) {
		kill(fx.pid, SIGTERM);
		waitpid(fx.pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct oauth_provider provider(void)
{
	struct oauth_provider p = {.token_url = fx.url,
	                           .client_id = "app",
	                           .client_secret_file = fx.secret_file,
	                           .scope = "mail",
	                           .ca_file = fx.ca,
	                           .timeout_s = 10};
	return p;
}

static void assert_no_secret(const char *err, const char *token)
{
	if (strstr(err, token) != NULL || strstr(err, "S3cret") != NULL)
		fail_msg("a secret in an error: %s", err);
}

/* A grant, rotated: the old refresh token is then refused with the
 * provider's words, naming the endpoint. */
static void test_grant_and_rotation(void **state)
{
	struct oauth_provider p = provider();
	struct oauth_grant g;
	char err[512] = "", expected[256];

	(void)state;
	if (oauth_refresh(&p, fx.bob, &g, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(strncmp(g.access_token, "at-", 3) == 0);
	assert_non_null(g.refresh_token);
	assert_string_not_equal(g.refresh_token, fx.bob);
	assert_int_equal(g.expires_in, 4);
	oauth_grant_clear(&g);
	assert_null(g.access_token);
	assert_int_equal(oauth_refresh(&p, fx.bob, &g, err, sizeof(err)), OAUTH_EREFUSED);
	snprintf(expected, sizeof(expected),
	         "token endpoint %s: invalid_grant: Token has been revoked", fx.url);
	assert_string_equal(err, expected);
	assert_no_secret(err, fx.bob);
	assert_int_equal(oauth_refresh(&p, "rt-never-issued", &g, err, sizeof(err)),
	                 OAUTH_EREFUSED);
	assert_non_null(strstr(err, "invalid_grant: Unknown refresh token"));
}

/* The client's own mistakes, the certificate, the endpoint down. */
static void test_failures(void **state)
{
	struct oauth_provider p = provider();
	struct oauth_grant g;
	char err[512] = "", other[128];

	(void)state;
	p.client_id = "not-app";
	assert_int_equal(oauth_refresh(&p, fx.alice, &g, err, sizeof(err)), OAUTH_EREFUSED);
	assert_non_null(strstr(err, ": invalid_client: Unknown client or wrong secret"));
	assert_no_secret(err, fx.alice);

	p = provider();
	p.client_secret_file = "/nonexistent/client-secret";
	assert_int_equal(oauth_refresh(&p, fx.alice, &g, err, sizeof(err)), -1);
	assert_string_equal(
	    err, "client secret file /nonexistent/client-secret: No such file or directory");

	/* Not signed by a CA it trusts: refused before anything is sent. */
	p = provider();
	p.ca_file = NULL;
	assert_int_equal(oauth_refresh(&p, fx.alice, &g, err, sizeof(err)), OAUTH_EDOWN);
	assert_non_null(strstr(err, "token endpoint https://127.0.0.1:"));

	/* http:// is never spoken: the token would travel in clear. */
	p = provider();
	snprintf(other, sizeof(other), "http%s", fx.url + 5);
	p.token_url = other;
	assert_int_equal(oauth_refresh(&p, fx.alice, &g, err, sizeof(err)), OAUTH_EDOWN);

	/* Nobody listening: transient. */
	p = provider();
	p.token_url = "https://127.0.0.1:1/token";
	assert_int_equal(oauth_refresh(&p, fx.alice, &g, err, sizeof(err)), OAUTH_EDOWN);
	assert_non_null(strstr(err, "token endpoint https://127.0.0.1:1/token: "));

	/* The query is not printed (it could hold anything). */
	p.token_url = "https://127.0.0.1:1/token?key=S3cret";
	assert_int_equal(oauth_refresh(&p, fx.alice, &g, err, sizeof(err)), OAUTH_EDOWN);
	assert_no_secret(err, fx.alice);
}

struct rotations {
	int count;
	char last[128];
};

static void rotated(void *context, const char *refresh)
{
	struct rotations *r = context;

	r->count++;
	snprintf(r->last, sizeof(r->last), "%s", refresh);
}

/* The cache: one refresh for many logins, another near expiry (4 s tokens:
 * a margin of 1 s from the request) and when the cached token is refused, none when a
 * token already replaced is; each rotation handed over. */
static void test_cache(void **state)
{
	struct oauth_provider p = provider();
	struct oauth_token t;
	struct rotations r = {0};
	char err[512] = "", *a1 = NULL, *a2 = NULL, *a3 = NULL, *a4 = NULL;

	(void)state;
	assert_int_equal(oauth_token_init(&t, &p, fx.alice), 0);
	assert_int_equal(oauth_token_get(&t, NULL, rotated, &r, &a1, err, sizeof(err)), 0);
	assert_int_equal(oauth_token_get(&t, NULL, rotated, &r, &a2, err, sizeof(err)), 0);
	assert_string_equal(a1, a2);
	assert_int_equal(t.refreshes, 1);
	assert_int_equal(r.count, 1);
	assert_string_equal(r.last, t.refresh);
	secret_free(&a2);
	/* Refused: refreshed once. */
	assert_int_equal(oauth_token_get(&t, a1, rotated, &r, &a2, err, sizeof(err)), 0);
	assert_string_not_equal(a1, a2);
	assert_int_equal(t.refreshes, 2);
	assert_int_equal(r.count, 2);
	/* A stale refusal (another thread already refreshed): no refresh. */
	assert_int_equal(oauth_token_get(&t, a1, rotated, &r, &a3, err, sizeof(err)), 0);
	assert_string_equal(a2, a3);
	assert_int_equal(t.refreshes, 2);
	/* Near expiry (not yet expired): a fresh one. */
	usleep(3200 * 1000);
	assert_int_equal(oauth_token_get(&t, NULL, rotated, &r, &a4, err, sizeof(err)), 0);
	assert_string_not_equal(a3, a4);
	assert_int_equal(t.refreshes, 3);
	assert_int_equal(r.count, 3);
	secret_free(&a1);
	secret_free(&a2);
	secret_free(&a3);
	secret_free(&a4);
	oauth_token_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grant_and_rotation),
	    cmocka_unit_test(test_failures),
	    cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
