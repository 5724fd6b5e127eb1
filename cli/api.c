/* HTTP requests to the coordinator's API with libcurl (see api.h). */
#include "api.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An answer larger than this is not one the API sends: stop reading. */
#define API_MAX_ANSWER (64u * 1024 * 1024)
#define API_CONNECT_TIMEOUT_S 10L

struct api {
	CURL *curl;
	char *base;
	char *auth_header; /* "Authorization: Bearer ..." or NULL */
	long timeout_s;
};

struct answer {
	char *data;
	size_t len, cap;
	int too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;

	if (a->len + n + 1 > API_MAX_ANSWER) {
		a->too_big = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (a->len + n + 1 > a->cap) {
		size_t cap = a->cap == 0 ? 16384 : a->cap;
		char *p;

		while (cap < a->len + n + 1)
			cap *= 2;
		p = realloc(a->data, cap);
		if (p == NULL)
			return 0;
		a->data = p;
		a->cap = cap;
	}
	memcpy(a->data + a->len, ptr, n);
	a->len += n;
	a->data[a->len] = '\0';
	return n;
}

struct api *api_create(const char *base, const char *token, long timeout_s)
{
	struct api *api;
	size_t len;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	api = calloc(1, sizeof(*api));
	if (api == NULL)
		return NULL;
	api->curl = curl_easy_init();
	api->base = strdup(base);
	api->timeout_s = timeout_s;
	if (token != NULL && asprintf(&api->auth_header, "Authorization: Bearer %s", token) < 0)
		api->auth_header = NULL;
	if (api->curl == NULL || api->base == NULL || (token != NULL && api->auth_header == NULL)) {
		api_destroy(&api);
		return NULL;
	}
	len = strlen(api->base);
	while (len > 0 && api->base[len - 1] == '/')
		api->base[--len] = '\0';
	return api;
}

void api_destroy(struct api **api)
{
	if (api == NULL || *api == NULL)
		return;
	if ((*api)->curl != NULL)
		curl_easy_cleanup((*api)->curl);
	free((*api)->base);
	if ((*api)->auth_header != NULL) {
		/* The header holds the token: wiped before it is freed. */
		memset((*api)->auth_header, 0, strlen((*api)->auth_header));
		free((*api)->auth_header);
	}
	free(*api);
	*api = NULL;
	curl_global_cleanup();
}

char *api_escape(const char *segment)
{
	char *e = curl_easy_escape(NULL, segment, 0), *copy;

	if (e == NULL)
		return NULL;
	copy = strdup(e); /* callers free with free(), not curl_free() */
	curl_free(e);
	return copy;
}

/* The API's error body as "CODE: message (field F)", or the status line and
 * the start of the body when it is not the API's JSON. */
static void describe_error(long status, const struct answer *a, char *err, size_t errlen)
{
	json_t *root = a->data != NULL ? json_loads(a->data, 0, NULL) : NULL;
	json_t *e = json_object_get(root, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *message = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));

	if (code != NULL || message != NULL)
		snprintf(err, errlen, "HTTP %ld %s: %s%s%s%s", status,
		         code != NULL ? code : "error", message != NULL ? message : "(no message)",
		         field != NULL ? " (field " : "", field != NULL ? field : "",
		         field != NULL ? ")" : "");
	else
		snprintf(err, errlen, "HTTP %ld: %.200s", status,
		         a->data != NULL && a->len > 0 ? a->data : "(empty answer)");
	json_decref(root);
}

int api_call(struct api *api, const char *method, const char *path, json_t *body, const char *raw,
             const char *raw_type, long extra_timeout_s, json_t **reply_r, char **text_r, char *err,
             size_t errlen)
{
	struct curl_slist *headers = NULL;
	struct answer a = {0};
	char *url = NULL, *payload = NULL, type_header[128];
	char curl_err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	int ret = EXIT_UNREACHABLE;

	if (reply_r != NULL)
		*reply_r = NULL;
	if (text_r != NULL)
		*text_r = NULL;
	if (asprintf(&url, "%s%s", api->base, path) < 0) {
		url = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		if (payload == NULL) {
			snprintf(err, errlen, "cannot encode the request body as JSON");
			ret = EXIT_USAGE;
			goto out;
		}
		raw = payload;
		raw_type = "application/json";
	}
	curl_easy_reset(api->curl);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (api->auth_header != NULL)
		headers = curl_slist_append(headers, api->auth_header);
	if (raw != NULL) {
		snprintf(type_header, sizeof(type_header), "Content-Type: %s", raw_type);
		headers = curl_slist_append(headers, type_header);
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, raw);
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(raw));
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	curl_easy_setopt(api->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(api->curl, CURLOPT_URL, url);
	curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(api->curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(api->curl, CURLOPT_CONNECTTIMEOUT, API_CONNECT_TIMEOUT_S);
	curl_easy_setopt(api->curl, CURLOPT_TIMEOUT, api->timeout_s + extra_timeout_s);
	curl_easy_setopt(api->curl, CURLOPT_NOSIGNAL, 1L);
	/* Redirects are not followed: the bearer token must not go elsewhere. */
	curl_easy_setopt(api->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(api->curl, CURLOPT_USERAGENT, "mailshift-cli");

	rc = curl_easy_perform(api->curl);
	if (rc != CURLE_OK) {
		if (a.too_big)
			snprintf(err, errlen, "%s %s: the answer is larger than %u MiB", method,
			         url, API_MAX_ANSWER >> 20);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			snprintf(err, errlen, "%s %s: no answer within %ld s (%s)", method, url,
			         api->timeout_s + extra_timeout_s, curl_err);
		else
			snprintf(err, errlen, "%s %s: API unreachable: %s", method, url,
			         curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 400 || status < 200 || (status >= 300 && status < 400)) {
		describe_error(status, &a, err, errlen);
		ret = status >= 400 && status < 500 ? EXIT_REFUSED : EXIT_UNREACHABLE;
		goto out;
	}
	if (text_r != NULL) {
		*text_r = a.data != NULL ? a.data : strdup("");
		a.data = NULL;
		ret = EXIT_OK;
		goto out;
	}
	if (a.len > 0 && reply_r != NULL) {
		json_error_t jerr;

		*reply_r = json_loadb(a.data, a.len, JSON_DECODE_ANY, &jerr);
		if (*reply_r == NULL) {
			snprintf(err, errlen, "%s %s: the answer is not JSON: %s", method, url,
			         jerr.text);
			goto out;
		}
	}
	ret = EXIT_OK;
out:
	curl_slist_free_all(headers);
	free(payload);
	free(url);
	free(a.data);
	return ret;
}

int api_get(struct api *api, const char *path, json_t **reply_r, char *err, size_t errlen)
{
	return api_call(api, "GET", path, NULL, NULL, NULL, 0, reply_r, NULL, err, errlen);
}

int api_send(struct api *api, const char *method, const char *path, json_t *body, json_t **reply_r,
             char *err, size_t errlen)
{
	return api_call(api, method, path, body, NULL, NULL, 0, reply_r, NULL, err, errlen);
}

int api_get_all(struct api *api, const char *path, size_t max, json_t **items_r, char *err,
                size_t errlen)
{
	json_t *all = json_array(), *page = NULL;
	char *cursor = NULL, *url = NULL;
	int ret = EXIT_OK;

	*items_r = NULL;
	for (;;) {
		const char *sep = strchr(path, '?') != NULL ? "&" : "?";
		json_t *items, *next;

		free(url);
		url = NULL;
		if (asprintf(&url, "%s%slimit=1000%s%s", path, sep, cursor != NULL ? "&after=" : "",
		             cursor != NULL ? cursor : "") < 0) {
			url = NULL;
			snprintf(err, errlen, "out of memory");
			ret = EXIT_UNREACHABLE;
			break;
		}
		ret = api_get(api, url, &page, err, errlen);
		if (ret != EXIT_OK)
			break;
		/* A plain array is a whole list (throughput, servers). */
		items = json_is_array(page) ? page : json_object_get(page, "items");
		if (!json_is_array(items)) {
			snprintf(err, errlen, "GET %s: the answer has no \"items\" list", path);
			ret = EXIT_UNREACHABLE;
			break;
		}
		json_array_extend(all, items);
		next = json_is_object(page) ? json_object_get(page, "next") : NULL;
		free(cursor);
		cursor = NULL;
		if (json_is_string(next))
			cursor = api_escape(json_string_value(next));
		else if (json_is_integer(next) &&
		         asprintf(&cursor, "%lld", (long long)json_integer_value(next)) < 0)
			cursor = NULL;
		json_decref(page);
		page = NULL;
		if (cursor == NULL || json_array_size(all) >= max)
			break;
	}
	json_decref(page);
	free(cursor);
	free(url);
	if (ret == EXIT_OK)
		*items_r = all;
	else
		json_decref(all);
	return ret;
}
