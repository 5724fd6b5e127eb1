/* A collection's members and its objects: listing with ETags (PROPFIND
 * Depth 1, REPORT sync-collection RFC 6578), GET, conditional PUT (RFC
 * 7232: If-Match / If-None-Match), and the creation of a collection. */
#include "dav-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dav_resources_free(struct dav_resource **res, size_t count)
{
	if (*res == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*res)[i].href);
		free((*res)[i].etag);
	}
	free(*res);
	*res = NULL;
}

void dav_object_free(struct dav_object *obj)
{
	free(obj->data);
	free(obj->etag);
	free(obj->content_type);
	memset(obj, 0, sizeof(*obj));
}

struct members {
	struct dav_client *c;
	const char *collection;
	struct dav_resource *res;
	size_t count, cap;
	bool oom;
	bool truncated; /* RFC 6578 3.6: 507 on the collection, more to ask */
};

/* Most sync-collection answers read for one listing of a truncating server. */
#define SYNC_MAX_ROUNDS 10000

static int member_cb(const char *href, int status, xmlNodePtr prop, void *context)
{
	struct members *m = context;
	char *path = dav_client_path(m->c, href);
	xmlNodePtr type = dav_xml_child(prop, NS_DAV, "resourcetype");

	/* The collection itself, sub-collections and members on another
	 * server are no objects of it. */
	if (path != NULL && strcmp(path, m->collection) == 0 && status == 507)
		m->truncated = true;
	if (path == NULL || strcmp(path, m->collection) == 0 ||
	    dav_xml_child(type, NS_DAV, "collection") != NULL || path[strlen(path) - 1] == '/') {
		free(path);
		return 0;
	}
	if (m->count == m->cap) {
		size_t cap = m->cap > 0 ? m->cap * 2 : 64;
		struct dav_resource *res = realloc(m->res, cap * sizeof(*res));
		if (res == NULL) {
			free(path);
			m->oom = true;
			return DAV_EFAIL;
		}
		m->res = res;
		m->cap = cap;
	}
	struct dav_resource *r = &m->res[m->count++];
	r->href = path;
	r->removed = status == 404;
	r->etag = r->removed ? NULL : dav_xml_text(dav_xml_child(prop, NS_DAV, "getetag"));
	if (!r->removed && r->etag == NULL)
		m->count--, free(path); /* no ETag: not an object we can follow */
	return 0;
}

static int list_answer(struct members *m, const char *method, const char *href,
                       struct dav_response *r, char **token_r, char *err, size_t errlen)
{
	int ret;

	if (r->status != 207)
		return dav_status_error(method, href, r, err, errlen);
	ret = dav_multistatus(r->body, r->len, member_cb, m, token_r, err, errlen);
	if (ret < 0 && m->oom)
		snprintf(err, errlen, "out of memory");
	return ret;
}

/* sync_round: the token is one the server no longer knows (RFC 6578 3.2). */
#define SYNC_FORGOTTEN 1

/* One REPORT sync-collection from token (NULL: from the start); its members
 * added to m, *token_r (caller frees) the token it gave.  0, SYNC_FORGOTTEN
 * or a DAV_E* code. */
static int sync_round(struct dav_client *c, const char *href, const char *token, struct members *m,
                      char **token_r, char *err, size_t errlen)
{
	static const char *const headers0[] = {"Content-Type: application/xml; charset=utf-8",
	                                       "Depth: 0", NULL};
	struct dav_response r;
	char *esc = dav_xml_escape(token != NULL ? token : ""), *body = NULL;
	int ret;

	*token_r = NULL;
	if (esc == NULL ||
	    asprintf(&body,
	             "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	             "<d:sync-collection xmlns:d=\"DAV:\"><d:sync-token>%s</d:sync-token>"
	             "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop>"
	             "</d:sync-collection>",
	             esc) < 0) {
		free(esc);
		snprintf(err, errlen, "out of memory");
		return DAV_EFAIL;
	}
	free(esc);
	ret = dav_request(c, "REPORT", href, headers0, body, strlen(body), false, &r, err, errlen);
	free(body);
	if (ret < 0)
		return ret;
	if ((r.status == 403 || r.status == 409) && token != NULL && token[0] != '\0' &&
	    dav_xml_error_is(r.body, r.len, NS_DAV, "valid-sync-token"))
		ret = SYNC_FORGOTTEN;
	else
		ret = list_answer(m, "REPORT", href, &r, token_r, err, errlen);
	dav_response_free(&r);
	return ret;
}

int dav_list(struct dav_client *c, const char *href, bool can_sync, const char *token,
             struct dav_resource **res_r, size_t *count_r, char **new_token_r, bool *full_r,
             char *err, size_t errlen)
{
	static const char *const headers1[] = {"Content-Type: application/xml; charset=utf-8",
	                                       "Depth: 1", NULL};
	static const char propfind_body[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:resourcetype/><d:getetag/></d:prop>"
	    "</d:propfind>";
	struct members m = {.c = c, .collection = href};
	struct dav_response r;
	char *tok = NULL;
	int ret;

	*res_r = NULL;
	*count_r = 0;
	*new_token_r = NULL;
	*full_r = true;
	if (can_sync) {
		/* A server may cut its answer (507 on the collection itself):
		 * asked again from the token it gave, until it is whole. */
		const char *from = token;
		char *prev = NULL;
		for (int round = 0;; round++) {
			m.truncated = false;
			ret = sync_round(c, href, from, &m, &tok, err, errlen);
			if (ret == SYNC_FORGOTTEN && round == 0) {
				dav_resources_free(&m.res, m.count);
				return dav_list(c, href, true, NULL, res_r, count_r, new_token_r,
				                full_r, err, errlen);
			}
			free(prev);
			prev = NULL;
			if (ret < 0 || ret == SYNC_FORGOTTEN) {
				if (ret == SYNC_FORGOTTEN) {
					snprintf(err, errlen,
					         "REPORT %.200s: the server forgot the token"
					         " it just gave",
					         href);
					ret = DAV_EFAIL;
				}
				free(tok);
				goto fail;
			}
			if (!m.truncated || tok == NULL || round == SYNC_MAX_ROUNDS)
				break;
			from = prev = tok;
			tok = NULL;
		}
		*full_r = token == NULL || token[0] == '\0';
		*new_token_r = tok;
		goto done;
	}
	ret = dav_request(c, "PROPFIND", href, headers1, propfind_body, strlen(propfind_body),
	                  false, &r, err, errlen);
	if (ret < 0)
		return ret;
	ret = list_answer(&m, "PROPFIND", href, &r, NULL, err, errlen);
	dav_response_free(&r);
	if (ret < 0)
		goto fail;
done:
	*res_r = m.res;
	*count_r = m.count;
	return 0;
fail:
	dav_resources_free(&m.res, m.count);
	return ret;
}

int dav_get(struct dav_client *c, const char *href, struct dav_object *obj_r, long *status_r,
            char *err, size_t errlen)
{
	struct dav_response r;
	int ret;

	memset(obj_r, 0, sizeof(*obj_r));
	*status_r = 0;
	if ((ret = dav_request(c, "GET", href, NULL, NULL, 0, false, &r, err, errlen)) < 0)
		return ret;
	*status_r = r.status;
	if (r.status != 200) {
		ret = dav_status_error("GET", href, &r, err, errlen);
		dav_response_free(&r);
		return ret;
	}
	obj_r->data = r.body;
	obj_r->len = r.len;
	obj_r->etag = r.etag;
	obj_r->content_type = r.content_type;
	free(r.location);
	return 0;
}

int dav_put(struct dav_client *c, const char *href, const char *body, size_t len,
            const char *content_type, const char *if_match, char **etag_r, long *status_r,
            char *err, size_t errlen)
{
	char ctype[256], cond[512];
	const char *headers[3] = {ctype, cond, NULL};
	struct dav_response r;
	int ret;

	*etag_r = NULL;
	*status_r = 0;
	if (strpbrk(content_type, "\r\n") != NULL ||
	    (if_match != NULL && strpbrk(if_match, "\r\n") != NULL)) {
		snprintf(err, errlen, "PUT %.200s: a header value with a line break", href);
		return DAV_EFAIL;
	}
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	if (if_match != NULL)
		snprintf(cond, sizeof(cond), "If-Match: %s", if_match);
	else
		snprintf(cond, sizeof(cond), "If-None-Match: *");
	if ((ret = dav_request(c, "PUT", href, headers, body, len, false, &r, err, errlen)) < 0)
		return ret;
	*status_r = r.status;
	if (r.status / 100 != 2) {
		ret = dav_status_error("PUT", href, &r, err, errlen);
		dav_response_free(&r);
		return ret;
	}
	/* A server that changed the object as it stored it may send no ETag
	 * (RFC 4791 5.3.4): ask for it. */
	if (r.etag == NULL) {
		struct dav_response h;
		if (dav_request(c, "HEAD", href, NULL, NULL, 0, false, &h, err, errlen) == 0) {
			if (h.status == 200) {
				r.etag = h.etag;
				h.etag = NULL;
			}
			dav_response_free(&h);
		}
	}
	*etag_r = r.etag;
	r.etag = NULL;
	dav_response_free(&r);
	return 0;
}

/* Appends "<tag>escaped text</tag>" to *buf when text is not NULL. */
static int prop_add(char **buf, const char *tag, const char *close, const char *text)
{
	char *esc, *next;

	if (text == NULL)
		return 0;
	if ((esc = dav_xml_escape(text)) == NULL)
		return -1;
	int n = asprintf(&next, "%s<%s>%s</%s>", *buf, tag, esc, close);
	free(esc);
	if (n < 0)
		return -1;
	free(*buf);
	*buf = next;
	return 0;
}

int dav_create(struct dav_client *c, const char *href, const struct dav_collection *col,
               long *status_r, char *err, size_t errlen)
{
	static const char *const headers[] = {"Content-Type: application/xml; charset=utf-8", NULL};
	bool cal = col->kind == DAV_CALENDAR;
	char *props = strdup(""), *body = NULL;
	struct dav_response r;
	int ret = DAV_EFAIL;

	*status_r = 0;
	if (props == NULL ||
	    prop_add(&props, "d:displayname", "d:displayname", col->displayname) < 0 ||
	    prop_add(&props, cal ? "cal:calendar-description" : "card:addressbook-description",
	             cal ? "cal:calendar-description" : "card:addressbook-description",
	             col->description) < 0 ||
	    (cal && prop_add(&props, "ical:calendar-color", "ical:calendar-color", col->color) < 0))
		goto oom;
	if (cal && col->components != NULL) {
		/* "VEVENT VTODO" -> <cal:comp name="VEVENT"/>...; names are
		 * tokens from the source's XML, escaped again. */
		char *list = strdup(col->components), *save = NULL, *set = strdup(""), *next;
		if (list == NULL || set == NULL) {
			free(list);
			free(set);
			goto oom;
		}
		for (char *t = strtok_r(list, " ", &save); t != NULL;
		     t = strtok_r(NULL, " ", &save)) {
			char *esc = dav_xml_escape(t);
			int n = esc != NULL ? asprintf(&next, "%s<cal:comp name=\"%s\"/>", set, esc)
			                    : -1;
			free(esc);
			if (n < 0) {
				free(list);
				free(set);
				goto oom;
			}
			free(set);
			set = next;
		}
		free(list);
		int n = asprintf(&next,
		                 "%s<cal:supported-calendar-component-set>%s"
		                 "</cal:supported-calendar-component-set>",
		                 props, set);
		free(set);
		if (n < 0)
			goto oom;
		free(props);
		props = next;
	}
	/* RFC 5689 extended MKCOL for an address book; MKCALENDAR (RFC 4791
	 * 5.3.1) for a calendar, which more servers know than the former. */
	if (asprintf(&body,
	             "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	             "<%s xmlns:d=\"DAV:\" xmlns:card=\"" NS_CARDDAV "\" xmlns:cal=\"" NS_CALDAV
	             "\" xmlns:ical=\"" NS_APPLE "\"><d:set><d:prop>%s%s</d:prop></d:set></%s>",
	             cal ? "cal:mkcalendar" : "d:mkcol",
	             cal ? ""
	                 : "<d:resourcetype><d:collection/><card:addressbook/></d:resourcetype>",
	             props, cal ? "cal:mkcalendar" : "d:mkcol") < 0) {
		body = NULL;
		goto oom;
	}
	ret = dav_request(c, cal ? "MKCALENDAR" : "MKCOL", href, headers, body, strlen(body), false,
	                  &r, err, errlen);
	if (ret == 0) {
		*status_r = r.status;
		if (r.status != 201)
			ret = dav_status_error(cal ? "MKCALENDAR" : "MKCOL", href, &r, err, errlen);
		dav_response_free(&r);
	}
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
	ret = DAV_EFAIL;
out:
	free(props);
	free(body);
	return ret;
}

int dav_href_name(const char *href, char *out, size_t outlen)
{
	size_t end = strlen(href), start;

	while (end > 0 && href[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && href[start - 1] != '/')
		start--;
	if (end == start || end - start >= outlen)
		return -1;
	memcpy(out, href + start, end - start);
	out[end - start] = '\0';
	return 0;
}
