/* The handlers' helpers (api.h): replies, JSON errors, query and body
 * arguments, the request's store connection, views as JSON and pages. */
#include "api.h"

#include "store-account.h"
#include "store-pass.h"

#include <microhttpd.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a request waits for a store connection when all are busy. */
#define API_POOL_WAIT_MS 5000

void api_reply(struct api_req *r, int status, json_t *json)
{
	json_decref(r->json);
	r->json = json;
	r->status = status;
	if (json == NULL) {
		r->status = 500;
		r->json = json_pack("{s{ssssso}}", "error", "code", "internal", "message",
		                    "out of memory", "field", json_null());
	}
}

void api_reply_text(struct api_req *r, int status, const char *type, char *text, size_t len)
{
	free(r->text);
	json_decref(r->json);
	r->json = NULL;
	r->text = text;
	r->text_len = len;
	r->text_type = type;
	r->status = status;
}

void api_error(struct api_req *r, int status, const char *code, const char *field, const char *fmt,
               ...)
{
	char message[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	api_reply(r, status,
	          json_pack("{s{sssssO}}", "error", "code", code, "message", message, "field",
	                    field != NULL ? json_string(field) : json_null()));
}

void api_ops_error(struct api_req *r, int ret, const char *err)
{
	switch (ret) {
	case OPS_INVALID:
		api_error(r, 400, "invalid_field", NULL, "%s", err);
		break;
	case OPS_NOT_FOUND:
		api_error(r, 404, "not_found", NULL, "%s", err);
		break;
	case OPS_CONFLICT:
		api_error(r, 409, "conflict", NULL, "%s", err);
		break;
	default:
		/* A store that broke in the middle: the caller may try again. */
		if (r->st != NULL && !store_usable(r->st))
			api_error(r, 503, "unavailable", NULL, "%s", err);
		else
			api_error(r, 500, "internal", NULL, "%s", err);
		break;
	}
}

struct store *api_store(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";

	if (r->st != NULL)
		return r->st;
	r->st = api_pool_take(r->pool, API_POOL_WAIT_MS, err, sizeof(err));
	if (r->st == NULL) {
		api_error(r, 503, "unavailable", NULL, "%s", err);
		return NULL;
	}
	/* Every state change this request makes is recorded with its actor. */
	if (r->actor[0] != '\0' && store_actor_set(r->st, r->actor, err, sizeof(err)) < 0) {
		api_error(r, 503, "unavailable", NULL, "%s", err);
		return NULL;
	}
	return r->st;
}

struct ops api_ops(struct api_req *r)
{
	return (struct ops){.st = r->st,
	                    .db = r->cfg->db,
	                    .brokers = r->cfg->brokers,
	                    .key_file = r->cfg->key_file,
	                    .actor = r->actor};
}

json_t *api_body_object(struct api_req *r, bool empty_ok)
{
	json_error_t jerr;
	json_t *body;

	if (r->body_len == 0 && empty_ok)
		return json_object();
	body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL) {
		api_error(r, 400, "bad_request", NULL, "the body is not JSON: line %d: %s",
		          jerr.line, jerr.text);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		api_error(r, 400, "bad_request", NULL, "the body must be a JSON object");
		return NULL;
	}
	return body;
}

const char *api_query(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int api_query_int(struct api_req *r, const char *name, long min, long max, long def, long *v_r)
{
	const char *s = api_query(r, name);
	char *end;
	long v;

	if (s == NULL || *s == '\0') {
		*v_r = def;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		api_error(r, 400, "invalid_field", name, "%s: an integer %ld..%ld", name, min, max);
		return -1;
	}
	*v_r = v;
	return 0;
}

int api_page_args(struct api_req *r, int *limit_r, int64_t *after_r)
{
	long limit, after;

	if (api_query_int(r, "limit", 1, 1000, 100, &limit) < 0 ||
	    api_query_int(r, "after", 0, LONG_MAX, 0, &after) < 0)
		return -1;
	*limit_r = (int)limit;
	*after_r = after;
	return 0;
}

/* A positive id from a path segment, or -1. */
static int64_t segment_id(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' && end != s && v > 0 ? v : -1;
}

int api_migration(struct api_req *r, int64_t *mid_r)
{
	char err[STORE_ERRLEN] = "";
	int64_t mid = segment_id(r->seg[2]);

	if (mid < 0) {
		api_error(r, 404, "not_found", NULL, "no migration %s", r->seg[2]);
		return -1;
	}
	if (api_store(r) == NULL)
		return -1;
	if (store_migration_exists(r->st, mid, 0, err, sizeof(err)) < 0) {
		if (!store_usable(r->st))
			api_error(r, 503, "unavailable", NULL, "%s", err);
		else
			api_error(r, 404, "not_found", NULL, "%s", err);
		return -1;
	}
	*mid_r = mid;
	return 0;
}

int api_account(struct api_req *r, int64_t mid, const char *which, int64_t *aid_r)
{
	char err[STORE_ERRLEN] = "";

	if (api_store(r) == NULL)
		return -1;
	if (store_account_find(r->st, mid, which, aid_r, err, sizeof(err)) < 0) {
		if (!store_usable(r->st))
			api_error(r, 503, "unavailable", NULL, "%s", err);
		else
			api_error(r, 404, "not_found", NULL, "%s", err);
		return -1;
	}
	return 0;
}

int api_body_accounts(struct api_req *r, json_t *body, int64_t mid, int64_t **ids_r, size_t *n_r)
{
	json_t *list = json_object_get(body, "accounts"), *v;
	int64_t *ids;
	size_t i;
	char which[32];

	*ids_r = NULL;
	*n_r = 0;
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) == 0) {
		api_error(r, 400, "invalid_field", "accounts",
		          "accounts: a non-empty array of account ids or source logins");
		return -1;
	}
	ids = calloc(json_array_size(list), sizeof(*ids));
	if (ids == NULL) {
		api_error(r, 500, "internal", NULL, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, v)
	{
		const char *s = which;

		if (json_is_integer(v))
			snprintf(which, sizeof(which), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(v));
		else if (json_is_string(v))
			s = json_string_value(v);
		else {
			free(ids);
			api_error(r, 400, "invalid_field", "accounts",
			          "accounts[%zu]: an account id or a source login", i);
			return -1;
		}
		if (api_account(r, mid, s, &ids[i]) < 0) {
			free(ids);
			return -1;
		}
	}
	*ids_r = ids;
	*n_r = json_array_size(list);
	return 0;
}

json_t *api_view(struct api_req *r, enum store_view view, const struct store_view_args *args)
{
	char err[STORE_ERRLEN] = "";
	char *text = NULL;
	json_error_t jerr;
	json_t *json;

	if (api_store(r) == NULL)
		return NULL;
	if (store_view(r->st, view, args, &text, err, sizeof(err)) < 0) {
		api_ops_error(r, OPS_FAILED, err);
		return NULL;
	}
	json = json_loads(text, 0, &jerr);
	free(text);
	if (json == NULL)
		api_error(r, 500, "internal", NULL, "the store's answer is not JSON: %s",
		          jerr.text);
	return json;
}

json_t *api_view_page(struct api_req *r, enum store_view view, struct store_view_args *args,
                      const char *id_key)
{
	int limit = args->limit;
	json_t *items, *next = json_null();

	args->limit = limit + 1;
	items = api_view(r, view, args);
	if (items == NULL)
		return NULL;
	if (json_array_size(items) > (size_t)limit) {
		json_array_remove(items, (size_t)limit);
		next = json_sprintf("%" JSON_INTEGER_FORMAT,
		                    json_integer_value(json_object_get(
		                        json_array_get(items, (size_t)limit - 1), id_key)));
	}
	return json_pack("{soso}", "items", items, "next", next);
}

int api_buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = *cap - *len;

		va_start(ap, fmt);
		n = vsnprintf(*buf != NULL ? *buf + *len : NULL, *buf != NULL ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if (*buf != NULL && (size_t)n < room) {
			*len += (size_t)n;
			return 0;
		}
		size_t ncap = *cap == 0 ? 8192 : *cap * 2;
		while (ncap < *len + (size_t)n + 1)
			ncap *= 2;
		char *tmp = realloc(*buf, ncap);
		if (tmp == NULL)
			return -1;
		*buf = tmp;
		*cap = ncap;
	}
}
