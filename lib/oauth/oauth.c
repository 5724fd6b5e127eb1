/* The refresh_token grant against a provider's token endpoint, and the
 * per-account cache of access tokens (oauth.h). */
#include "oauth.h"

#include "secret.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest answer read from the endpoint: a token answer is a few KB. */
#define OAUTH_MAX_ANSWER (256 * 1024)
/* Largest client secret file. */
#define OAUTH_MAX_SECRET 4096
#define OAUTH_CONNECT_TIMEOUT_S 10

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* curl_global_init is not thread-safe in every libcurl: once per process. */
static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void oauth_grant_clear(struct oauth_grant *g)
{
	secret_free(&g->access_token);
	secret_free(&g->refresh_token);
	g->expires_in = 0;
}

const char *oauth_url_printable(const char *url, char *out, size_t outlen)
{
	size_t n = strcspn(url, "?#");

	snprintf(out, outlen, "%.*s", (int)n, url);
	for (char *c = out; *c != '\0'; c++)
		if (!isprint((unsigned char)*c))
			*c = '?';
	return out;
}

/* The client secret: the file's first line, without the line end. */
static int secret_file_read(const char *path, char **secret_r, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	*secret_r = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "client secret file %s: %s", path, strerror(errno));
		return -1;
	}
	buf = calloc(1, OAUTH_MAX_SECRET + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = fread(buf, 1, OAUTH_MAX_SECRET, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		secret_wipe(buf, OAUTH_MAX_SECRET);
		free(buf);
		snprintf(err, errlen, "client secret file %s: empty", path);
		return -1;
	}
	*secret_r = buf;
	return 0;
}

/* The answer, bounded. */
struct answer {
	char *data;
	size_t len;
	bool too_long;
};

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;
	char *grown;

	if (a->len + n > OAUTH_MAX_ANSWER) {
		a->too_long = true;
		return 0; /* ends the transfer */
	}
	grown = realloc(a->data, a->len + n + 1);
	if (grown == NULL)
		return 0;
	a->data = grown;
	memcpy(a->data + a->len, ptr, n);
	a->len += n;
	a->data[a->len] = '\0';
	return n;
}

/* Appends "&name=value" (value form-encoded) to *body; false out of memory. */
static bool form_add(CURL *curl, char **body, size_t *len, const char *name, const char *value)
{
	char *enc = curl_easy_escape(curl, value, 0);
	size_t add, need;
	char *grown;

	if (enc == NULL)
		return false;
	add = strlen(name) + strlen(enc) + 2;
	need = *len + add + 1;
	grown = malloc(need);
	if (grown != NULL) {
		if (*body != NULL)
			memcpy(grown, *body, *len);
		snprintf(grown + *len, need - *len, "%s%s=%s", *len > 0 ? "&" : "", name, enc);
		if (*body != NULL) {
			secret_wipe(*body, *len);
			free(*body);
		}
		*body = grown;
		*len = strlen(grown);
	}
	secret_wipe(enc, strlen(enc));
	curl_free(enc);
	return grown != NULL;
}

/* The provider's words, printable, with any secret of the request masked
 * (an endpoint that echoes what it was sent must not put it in a log). */
static void words(const char *in, const char *const *secrets, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *c = in; *c != '\0' && o + 1 < outlen;) {
		bool masked = false;
		for (size_t i = 0; secrets[i] != NULL; i++) {
			size_t n = strlen(secrets[i]);
			if (n >= 4 && strncmp(c, secrets[i], n) == 0) {
				o += (size_t)snprintf(out + o, outlen - o, "[secret]");
				if (o >= outlen)
					o = outlen - 1;
				c += n;
				masked = true;
				break;
			}
		}
		if (!masked) {
			out[o++] = isprint((unsigned char)*c) ? *c : '?';
			c++;
		}
	}
	out[o] = '\0';
}

/* Reads a token answer (RFC 6749 5.1) or an error answer (5.2). */
static int answer_parse(const char *where, long status, const struct answer *a,
                        const char *const *secrets, struct oauth_grant *g, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = a->data != NULL ? json_loadb(a->data, a->len, 0, &jerr) : NULL;
	const char *error = root != NULL ? json_string_value(json_object_get(root, "error")) : NULL;
	int ret = OAUTH_EDOWN;

	if (status == 200 && root != NULL && error == NULL) {
		const char *access = json_string_value(json_object_get(root, "access_token"));
		const char *refresh = json_string_value(json_object_get(root, "refresh_token"));
		json_t *exp = json_object_get(root, "expires_in");
		if (access == NULL || access[0] == '\0') {
			snprintf(err, errlen, "token endpoint %s: an answer without access_token",
			         where);
			goto out;
		}
		g->access_token = strdup(access);
		g->refresh_token = refresh != NULL && refresh[0] != '\0' ? strdup(refresh) : NULL;
		/* expires_in is RECOMMENDED only; some send it as a string. */
		g->expires_in = json_is_integer(exp)  ? json_integer_value(exp)
		                : json_is_string(exp) ? strtoll(json_string_value(exp), NULL, 10)
		                                      : 3600;
		if (g->expires_in <= 0)
			g->expires_in = 3600;
		if (g->access_token == NULL ||
		    (refresh != NULL && refresh[0] != '\0' && g->refresh_token == NULL)) {
			oauth_grant_clear(g);
			snprintf(err, errlen, "out of memory");
			ret = -1;
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (error != NULL && status >= 400 && status < 500 && status != 429) {
		/* The grant is refused: a revoked or expired refresh token, a
		 * wrong client.  The provider's words tell the operator which. */
		const char *desc = json_string_value(json_object_get(root, "error_description"));
		char e[128], d[256];
		words(error, secrets, e, sizeof(e));
		words(desc != NULL ? desc : "", secrets, d, sizeof(d));
		snprintf(err, errlen, "token endpoint %s: %s%s%s", where, e,
		         d[0] != '\0' ? ": " : "", d);
		ret = OAUTH_EREFUSED;
		goto out;
	}
	if (error != NULL) {
		char e[128];
		words(error, secrets, e, sizeof(e));
		snprintf(err, errlen, "token endpoint %s: HTTP %ld: %s", where, status, e);
	} else {
		snprintf(err, errlen, "token endpoint %s: HTTP %ld%s", where, status,
		         root == NULL ? ", not a JSON answer" : "");
	}
out:
	json_decref(root);
	return ret;
}

int oauth_refresh(const struct oauth_provider *p, const char *refresh_token, struct oauth_grant *g,
                  char *err, size_t errlen)
{
	char where[256], cerr[CURL_ERROR_SIZE] = "";
	char *client_secret = NULL, *body = NULL;
	size_t bodylen = 0;
	struct answer a = {0};
	CURL *curl = NULL;
	long status = 0;
	CURLcode rc;
	int ret = -1;

	memset(g, 0, sizeof(*g));
	oauth_url_printable(p->token_url, where, sizeof(where));
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK) {
		snprintf(err, errlen, "token endpoint %s: libcurl did not initialize", where);
		return -1;
	}
	if (p->client_secret_file != NULL &&
	    secret_file_read(p->client_secret_file, &client_secret, err, errlen) < 0)
		return -1;
	curl = curl_easy_init();
	if (curl == NULL || !form_add(curl, &body, &bodylen, "grant_type", "refresh_token") ||
	    !form_add(curl, &body, &bodylen, "refresh_token", refresh_token) ||
	    !form_add(curl, &body, &bodylen, "client_id", p->client_id) ||
	    (client_secret != NULL &&
	     !form_add(curl, &body, &bodylen, "client_secret", client_secret)) ||
	    (p->scope != NULL && p->scope[0] != '\0' &&
	     !form_add(curl, &body, &bodylen, "scope", p->scope))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, p->token_url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)bodylen);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (p->ca_file != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, p->ca_file);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* Threads: no SIGALRM for name resolution timeouts. */
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)OAUTH_CONNECT_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT,
	                 (long)(p->timeout_s > 0 ? p->timeout_s : OAUTH_TIMEOUT_S));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, answer_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "mailshift");
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "token endpoint %s: %s", where,
		         a.too_long        ? "answer too long"
		         : cerr[0] != '\0' ? cerr
		                           : curl_easy_strerror(rc));
		ret = OAUTH_EDOWN;
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	const char *secrets[] = {refresh_token, client_secret != NULL ? client_secret : "", NULL};
	ret = answer_parse(where, status, &a, secrets, g, err, errlen);
out:
	if (a.data != NULL) {
		secret_wipe(a.data, a.len);
		free(a.data);
	}
	if (body != NULL) {
		secret_wipe(body, bodylen);
		free(body);
	}
	if (client_secret != NULL) {
		secret_wipe(client_secret, OAUTH_MAX_SECRET);
		free(client_secret);
	}
	curl_easy_cleanup(curl);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int oauth_token_init(struct oauth_token *t, const struct oauth_provider *p, const char *refresh)
{
	memset(t, 0, sizeof(*t));
	t->provider = p;
	t->refresh = strdup(refresh);
	if (t->refresh == NULL)
		return -1;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void oauth_token_destroy(struct oauth_token *t)
{
	if (t->refresh == NULL && t->access == NULL)
		return;
	secret_free(&t->refresh);
	secret_free(&t->access);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

int oauth_token_get(struct oauth_token *t, const char *refused, oauth_rotated_fn rotated,
                    void *context, char **access_r, char *err, size_t errlen)
{
	struct oauth_grant g;
	int64_t now, margin;
	int ret = 0;

	*access_r = NULL;
	pthread_mutex_lock(&t->lock);
	now = now_ms();
	/* Refreshed when near expiry, or when a server refused the very
	 * token cached (not one another thread has replaced since). */
	if (t->access != NULL && now < t->renew_ms &&
	    (refused == NULL || strcmp(refused, t->access) != 0))
		goto copy;
	ret = oauth_refresh(t->provider, t->refresh, &g, err, errlen);
	t->refreshes++;
	if (ret < 0)
		goto out;
	secret_free(&t->access);
	t->access = g.access_token;
	g.access_token = NULL;
	t->expiry_ms = now + g.expires_in * 1000;
	/* A margin of a tenth of the lifetime, from 1 s to 60 s (at most half
	 * of it): a session opened near the end gets a fresh token, never one
	 * that lapses while the server checks it. */
	margin = g.expires_in * 100;
	if (margin < 1000)
		margin = 1000;
	if (margin > 60000)
		margin = 60000;
	if (margin > g.expires_in * 500)
		margin = g.expires_in * 500;
	t->renew_ms = t->expiry_ms - margin;
	if (g.refresh_token != NULL && strcmp(g.refresh_token, t->refresh) != 0) {
		/* Rotated: the old one may no longer work anywhere. */
		secret_free(&t->refresh);
		t->refresh = g.refresh_token;
		g.refresh_token = NULL;
		if (rotated != NULL)
			rotated(context, t->refresh);
	}
	oauth_grant_clear(&g);
copy:
	*access_r = strdup(t->access);
	if (*access_r == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}
