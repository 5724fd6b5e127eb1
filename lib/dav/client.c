/* The HTTP exchange of lib/dav: one libcurl easy handle per client (its
 * connection kept alive between requests), TLS verified against the
 * profile's CA file or the system's, bounded connect and total times, every
 * answer body bounded (DAV_MAX_BODY).  Redirects are followed here, not by
 * libcurl, and only on the same server: the credentials go nowhere else. */
#include "dav-private.h"

#include <curl/curl.h>
#include <libxml/parser.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dav_client {
	CURL *curl;
	char *origin;    /* "https://host:port", no trailing slash */
	char *base_path; /* "/" or "/dav/" */
	char *user, *password, *ca_file;
	long connect_timeout_s, timeout_s;
	bool read_only;
	unsigned long requests;
	char curl_error[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* curl_global_init is not safe to race with other threads' first use, and
 * libxml2 wants its parser set up once before threads use it. */
static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
}

/* Splits url into origin and path; only http and https. */
static int url_split(const char *url, char **origin_r, char **path_r)
{
	const char *rest, *slash;

	if (strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else
		return -1;
	slash = strchr(rest, '/');
	const char *at = strchr(rest, '@');
	if (slash == rest || (at != NULL && (slash == NULL || at < slash)) ||
	    strpbrk(url, " \t\r\n") != NULL)
		return -1; /* no host, or credentials in the URL */
	*origin_r = slash != NULL ? strndup(url, (size_t)(slash - url)) : strdup(url);
	*path_r = strdup(slash != NULL ? slash : "/");
	if (*origin_r == NULL || *path_r == NULL) {
		free(*origin_r);
		free(*path_r);
		return -1;
	}
	return 0;
}

int dav_client_create(const struct dav_endpoint *ep, struct dav_client **client_r, char *err,
                      size_t errlen)
{
	struct dav_client *c = NULL;

	*client_r = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK) {
		snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(curl_init_result));
		return DAV_EFAIL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto oom;
	if (ep->url == NULL || url_split(ep->url, &c->origin, &c->base_path) < 0) {
		snprintf(err, errlen,
		         "DAV URL \"%.200s\": must be http:// or https://host[:port]/path",
		         ep->url != NULL ? ep->url : "");
		free(c);
		return DAV_EFAIL;
	}
	c->user = strdup(ep->user != NULL ? ep->user : "");
	c->password = strdup(ep->password != NULL ? ep->password : "");
	c->ca_file = ep->ca_file != NULL ? strdup(ep->ca_file) : NULL;
	c->curl = curl_easy_init();
	if (c->user == NULL || c->password == NULL || (ep->ca_file != NULL && c->ca_file == NULL) ||
	    c->curl == NULL)
		goto oom;
	c->connect_timeout_s = ep->connect_timeout_s > 0 ? ep->connect_timeout_s : 15;
	c->timeout_s = ep->timeout_s > 0 ? ep->timeout_s : 120;
	c->read_only = ep->read_only;
	*client_r = c;
	return 0;
oom:
	dav_client_destroy(&c);
	snprintf(err, errlen, "out of memory");
	return DAV_EFAIL;
}

void dav_client_destroy(struct dav_client **client)
{
	struct dav_client *c = *client;

	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	if (c->password != NULL) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->user);
	free(c->ca_file);
	free(c->origin);
	free(c->base_path);
	free(c);
	*client = NULL;
}

unsigned long dav_client_requests(const struct dav_client *client)
{
	return client->requests;
}

const char *dav_client_base_path(const struct dav_client *c)
{
	return c->base_path;
}

char *dav_client_path(const struct dav_client *c, const char *href)
{
	size_t n = strlen(c->origin);

	if (href == NULL || strpbrk(href, "\r\n") != NULL)
		return NULL;
	if (href[0] == '/' && href[1] != '/')
		return strdup(href);
	/* A full URL: only of this origin (scheme and host compared without
	 * regard to case, as URLs do). */
	if (strncasecmp(href, c->origin, n) == 0 && href[n] == '/')
		return strdup(href + n);
	return NULL;
}

void dav_response_free(struct dav_response *r)
{
	free(r->body);
	free(r->etag);
	free(r->location);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

struct sink {
	struct dav_response *r;
	size_t cap;
	bool too_big;
};

static size_t body_write(char *data, size_t size, size_t nmemb, void *context)
{
	struct sink *s = context;
	size_t n = size * nmemb;

	if (s->r->len + n > DAV_MAX_BODY) {
		s->too_big = true;
		return 0; /* ends the transfer */
	}
	if (s->r->len + n + 1 > s->cap) {
		size_t cap = s->cap > 0 ? s->cap : 16384;
		while (cap < s->r->len + n + 1)
			cap *= 2;
		char *body = realloc(s->r->body, cap);
		if (body == NULL)
			return 0;
		s->r->body = body;
		s->cap = cap;
	}
	memcpy(s->r->body + s->r->len, data, n);
	s->r->len += n;
	s->r->body[s->r->len] = '\0';
	return n;
}

/* Keeps the value of header name (the last one of the last answer). */
static void header_keep(const char *line, size_t n, const char *name, char **out)
{
	size_t k = strlen(name);

	if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	line += k + 1;
	n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	free(*out);
	*out = strndup(line, n);
}

static size_t header_write(char *data, size_t size, size_t nmemb, void *context)
{
	struct dav_response *r = context;
	size_t n = size * nmemb;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new answer (after a 100 Continue): forget the last one's. */
		free(r->etag);
		free(r->location);
		free(r->content_type);
		r->etag = r->location = r->content_type = NULL;
	}
	header_keep(data, n, "ETag", &r->etag);
	header_keep(data, n, "Location", &r->location);
	header_keep(data, n, "Content-Type", &r->content_type);
	return n;
}

/* One exchange, no redirect followed. */
static int request_once(struct dav_client *c, const char *method, const char *path,
                        const char *const *headers, const char *body, size_t len,
                        struct dav_response *r, char *err, size_t errlen)
{
	struct curl_slist *list = NULL, *more;
	struct sink sink = {.r = r};
	char *url = NULL;
	CURLcode rc;
	int ret = DAV_EFAIL;

	memset(r, 0, sizeof(*r));
	if (asprintf(&url, "%s%s", c->origin, path) < 0) {
		url = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
		if ((more = curl_slist_append(list, headers[i])) == NULL)
			goto oom;
		list = more;
	}
	/* No "Expect: 100-continue" wait before a body. */
	if ((more = curl_slist_append(list, "Expect:")) == NULL)
		goto oom;
	list = more;
	curl_easy_reset(c->curl); /* keeps the open connection */
	c->curl_error[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file != NULL)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(c->curl, CURLOPT_USERNAME, c->user);
	curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->password);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "mailshift");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, header_write);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, r);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(body != NULL ? len : 0));
	}
	c->requests++;
	rc = curl_easy_perform(c->curl);
	if (rc != CURLE_OK) {
		if (sink.too_big)
			snprintf(err, errlen, "%s %.200s: answer larger than %u bytes", method,
			         path, DAV_MAX_BODY);
		else
			snprintf(err, errlen, "%s %.200s: %s", method, path,
			         c->curl_error[0] != '\0' ? c->curl_error : curl_easy_strerror(rc));
		ret = sink.too_big ? DAV_EFAIL : DAV_ENET;
		dav_response_free(r);
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->body == NULL && (r->body = strdup("")) == NULL)
		goto oom;
	ret = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
	dav_response_free(r);
out:
	/* The password stays in the handle's options until the next reset. */
	curl_slist_free_all(list);
	free(url);
	return ret;
}

int dav_request(struct dav_client *c, const char *method, const char *href,
                const char *const *headers, const char *body, size_t len, bool follow,
                struct dav_response *r, char *err, size_t errlen)
{
	char *path;
	int ret = DAV_EFAIL;

	if (c->read_only && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    strcmp(method, "PROPFIND") != 0 && strcmp(method, "REPORT") != 0) {
		snprintf(err, errlen, "%s %.200s: refused: this server is only read", method, href);
		return DAV_EFAIL;
	}
	path = strdup(href[0] != '\0' ? href : c->base_path);
	if (path == NULL) {
		snprintf(err, errlen, "out of memory");
		return DAV_EFAIL;
	}
	for (int hops = 0;; hops++) {
		ret = request_once(c, method, path, headers, body, len, r, err, errlen);
		if (ret < 0 || !follow || r->status < 300 || r->status > 308 || r->location == NULL)
			break;
		char *next = dav_client_path(c, r->location);
		if (next == NULL || hops >= 5) {
			snprintf(err, errlen, "%s %.200s: redirected to %.200s: %s", method, path,
			         r->location,
			         next == NULL ? "another server (not followed)"
			                      : "too many redirects");
			free(next);
			dav_response_free(r);
			ret = DAV_EFAIL;
			break;
		}
		free(path);
		path = next;
		dav_response_free(r);
	}
	free(path);
	return ret;
}

void dav_words(const struct dav_response *r, char *out, size_t outlen)
{
	size_t o = 0;
	bool in_tag = false, space = true;

	if (outlen == 0)
		return;
	/* Text of an HTML or XML error page, or a plain one: tags dropped,
	 * white space and control characters folded into single spaces. */
	for (size_t i = 0; r->body != NULL && i < r->len && o + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)r->body[i];
		if (ch == '<') {
			in_tag = true;
			continue;
		}
		if (in_tag) {
			in_tag = ch != '>';
			continue;
		}
		if (ch < 0x20 || ch == 0x7f || ch == ' ') {
			if (!space)
				out[o++] = ' ';
			space = true;
			continue;
		}
		out[o++] = (char)ch;
		space = false;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

int dav_status_error(const char *method, const char *href, const struct dav_response *r, char *err,
                     size_t errlen)
{
	char words[256];

	dav_words(r, words, sizeof(words));
	snprintf(err, errlen, "%s %.200s: HTTP %ld%s%s", method, href, r->status,
	         words[0] != '\0' ? " " : "", words);
	return r->status == 401 ? DAV_EAUTH : DAV_ESTATUS;
}
