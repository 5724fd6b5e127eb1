/* Discovery (RFC 6764 6): the well-known URL of each service, then the
 * principal (current-user-principal, RFC 5397), then its home sets
 * (addressbook-home-set RFC 6352 7.1.1, calendar-home-set RFC 4791 6.2.1),
 * then every collection one level under a home set. */
#include "dav-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const xml_headers[] = {"Content-Type: application/xml; charset=utf-8",
                                          "Depth: 0", NULL};
static const char *const xml_headers_depth1[] = {"Content-Type: application/xml; charset=utf-8",
                                                 "Depth: 1", NULL};

const char *dav_kind_name(enum dav_kind kind)
{
	return kind == DAV_CALENDAR ? "calendar" : "addressbook";
}

void dav_collections_free(struct dav_collection **cols, size_t count)
{
	if (*cols == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		struct dav_collection *c = &(*cols)[i];
		free(c->href);
		free(c->displayname);
		free(c->description);
		free(c->color);
		free(c->components);
		free(c->sync_token);
	}
	free(*cols);
	*cols = NULL;
}

/* A PROPFIND with body at href (Depth 0 or 1), its multistatus handed to cb. */
static int propfind(struct dav_client *c, const char *href, int depth, bool follow,
                    const char *body, dav_response_cb *cb, void *context, char *err, size_t errlen)
{
	struct dav_response r;
	int ret = dav_request(c, "PROPFIND", href, depth == 0 ? xml_headers : xml_headers_depth1,
	                      body, strlen(body), follow, &r, err, errlen);

	if (ret < 0)
		return ret;
	if (r.status != 207)
		ret = dav_status_error("PROPFIND", href[0] != '\0' ? href : "/", &r, err, errlen);
	else
		ret = dav_multistatus(r.body, r.len, cb, context, NULL, err, errlen);
	dav_response_free(&r);
	return ret;
}

struct found {
	struct dav_client *c;
	char *principal, *ab_home, *cal_home;
};

static void keep_path(struct dav_client *c, char **out, char *href)
{
	if (href != NULL && *out == NULL)
		*out = dav_client_path(c, href);
	free(href);
}

static int principal_cb(const char *href, int status, xmlNodePtr prop, void *context)
{
	struct found *f = context;

	(void)href;
	(void)status;
	keep_path(f->c, &f->principal, dav_xml_href_of(prop, NS_DAV, "current-user-principal"));
	return 0;
}

static int homes_cb(const char *href, int status, xmlNodePtr prop, void *context)
{
	struct found *f = context;

	(void)href;
	(void)status;
	keep_path(f->c, &f->ab_home, dav_xml_href_of(prop, NS_CARDDAV, "addressbook-home-set"));
	keep_path(f->c, &f->cal_home, dav_xml_href_of(prop, NS_CALDAV, "calendar-home-set"));
	return 0;
}

int dav_homes(struct dav_client *c, char **addressbook_home_r, char **calendar_home_r, char *err,
              size_t errlen)
{
	static const char principal_body[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:current-user-principal/></d:prop>"
	    "</d:propfind>";
	static const char homes_body[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<d:propfind xmlns:d=\"DAV:\" xmlns:card=\"" NS_CARDDAV "\" xmlns:cal=\"" NS_CALDAV
	    "\"><d:prop><card:addressbook-home-set/><cal:calendar-home-set/></d:prop>"
	    "</d:propfind>";
	static const char *const well_known[] = {"/.well-known/carddav", "/.well-known/caldav"};
	struct found f = {.c = c};
	char why[512] = "";
	int ret = 0;

	*addressbook_home_r = *calendar_home_r = NULL;
	/* The well-known URLs redirect to where the service lives (RFC 6764
	 * 5); a server without them is asked at the profile's URL. */
	for (size_t i = 0; i < 2 && f.principal == NULL; i++) {
		ret = propfind(c, well_known[i], 0, true, principal_body, principal_cb, &f, why,
		               sizeof(why));
		if (ret == DAV_EAUTH || ret == DAV_ENET)
			goto fail;
	}
	if (f.principal == NULL) {
		ret = propfind(c, "", 0, true, principal_body, principal_cb, &f, why, sizeof(why));
		if (ret < 0)
			goto fail;
	}
	/* No principal offered: the homes may be asked of the URL itself. */
	ret = propfind(c, f.principal != NULL ? f.principal : "", 0, true, homes_body, homes_cb, &f,
	               why, sizeof(why));
	if (ret < 0)
		goto fail;
	if (f.ab_home == NULL && f.cal_home == NULL) {
		snprintf(err, errlen,
		         "no address book or calendar home found (principal %.200s): not a CardDAV"
		         " or CalDAV server?",
		         f.principal != NULL ? f.principal : "none");
		ret = DAV_EFAIL;
		goto out;
	}
	*addressbook_home_r = f.ab_home;
	*calendar_home_r = f.cal_home;
	f.ab_home = f.cal_home = NULL;
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "discovery: %s", why);
out:
	free(f.principal);
	free(f.ab_home);
	free(f.cal_home);
	return ret;
}

struct listing {
	struct dav_client *c;
	const char *home;
	struct dav_collection *cols;
	size_t count, cap;
};

/* The names of a calendar's supported components, space separated. */
static char *components_of(xmlNodePtr prop)
{
	xmlNodePtr set = dav_xml_child(prop, NS_CALDAV, "supported-calendar-component-set");
	char buf[256] = "";
	size_t o = 0;

	if (set == NULL)
		return NULL;
	for (xmlNodePtr n = set->children; n != NULL; n = n->next) {
		xmlChar *name = n->type == XML_ELEMENT_NODE ? xmlGetProp(n, BAD_CAST "name") : NULL;
		if (name == NULL)
			continue;
		int w = snprintf(buf + o, sizeof(buf) - o, "%s%s", o > 0 ? " " : "",
		                 (const char *)name);
		xmlFree(name);
		if (w < 0 || (size_t)w >= sizeof(buf) - o)
			break;
		o += (size_t)w;
	}
	return o > 0 ? strdup(buf) : NULL;
}

static bool offers_sync(xmlNodePtr prop)
{
	xmlNodePtr set = dav_xml_child(prop, NS_DAV, "supported-report-set");

	for (xmlNodePtr sr = set != NULL ? set->children : NULL; sr != NULL; sr = sr->next) {
		xmlNodePtr report = dav_xml_child(sr, NS_DAV, "report");
		if (report != NULL && dav_xml_child(report, NS_DAV, "sync-collection") != NULL)
			return true;
	}
	return false;
}

static int collection_cb(const char *href, int status, xmlNodePtr prop, void *context)
{
	struct listing *l = context;
	xmlNodePtr type = dav_xml_child(prop, NS_DAV, "resourcetype");
	enum dav_kind kind;

	(void)status;
	if (dav_xml_child(type, NS_CARDDAV, "addressbook") != NULL)
		kind = DAV_ADDRESSBOOK;
	else if (dav_xml_child(type, NS_CALDAV, "calendar") != NULL)
		kind = DAV_CALENDAR;
	else
		return 0; /* the home itself, a principal, an inbox... */
	char *path = dav_client_path(l->c, href);
	if (path == NULL)
		return 0; /* on another server: not followed */
	if (l->count == l->cap) {
		size_t cap = l->cap > 0 ? l->cap * 2 : 8;
		struct dav_collection *cols = realloc(l->cols, cap * sizeof(*cols));
		if (cols == NULL) {
			free(path);
			return DAV_EFAIL;
		}
		l->cols = cols;
		l->cap = cap;
	}
	struct dav_collection *col = &l->cols[l->count++];
	memset(col, 0, sizeof(*col));
	col->kind = kind;
	col->href = path;
	col->displayname = dav_xml_text(dav_xml_child(prop, NS_DAV, "displayname"));
	col->description = dav_xml_text(dav_xml_child(
	    prop, kind == DAV_CALENDAR ? NS_CALDAV : NS_CARDDAV,
	    kind == DAV_CALENDAR ? "calendar-description" : "addressbook-description"));
	col->color = dav_xml_text(dav_xml_child(prop, NS_APPLE, "calendar-color"));
	col->components = components_of(prop);
	col->sync_token = dav_xml_text(dav_xml_child(prop, NS_DAV, "sync-token"));
	col->can_sync = offers_sync(prop);
	return 0;
}

int dav_home_collections(struct dav_client *c, const char *home, struct dav_collection **cols_r,
                         size_t *count_r, char *err, size_t errlen)
{
	static const char body[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<d:propfind xmlns:d=\"DAV:\" xmlns:card=\"" NS_CARDDAV "\" xmlns:cal=\"" NS_CALDAV
	    "\" xmlns:ical=\"" NS_APPLE "\"><d:prop><d:resourcetype/><d:displayname/>"
	    "<d:sync-token/><d:supported-report-set/><card:addressbook-description/>"
	    "<cal:calendar-description/><cal:supported-calendar-component-set/>"
	    "<ical:calendar-color/></d:prop></d:propfind>";
	struct listing l = {.c = c, .home = home};
	int ret = propfind(c, home, 1, false, body, collection_cb, &l, err, errlen);

	if (ret < 0) {
		dav_collections_free(&l.cols, l.count);
		if (ret == DAV_EFAIL && err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		return ret;
	}
	*cols_r = l.cols;
	*count_r = l.count;
	return 0;
}

int dav_discover(struct dav_client *c, struct dav_collection **cols_r, size_t *count_r, char *err,
                 size_t errlen)
{
	char *homes[2] = {NULL, NULL};
	struct dav_collection *all = NULL;
	size_t nall = 0;
	int ret;

	*cols_r = NULL;
	*count_r = 0;
	if ((ret = dav_homes(c, &homes[0], &homes[1], err, errlen)) < 0)
		return ret;
	for (int i = 0; i < 2; i++) {
		struct dav_collection *cols = NULL, *grown;
		size_t n = 0;

		/* One server often keeps both kinds under one home. */
		if (homes[i] == NULL ||
		    (i == 1 && homes[0] != NULL && strcmp(homes[0], homes[1]) == 0))
			continue;
		if ((ret = dav_home_collections(c, homes[i], &cols, &n, err, errlen)) < 0)
			goto out;
		if (n == 0)
			continue;
		grown = realloc(all, (nall + n) * sizeof(*all));
		if (grown == NULL) {
			dav_collections_free(&cols, n);
			snprintf(err, errlen, "out of memory");
			ret = DAV_EFAIL;
			goto out;
		}
		all = grown;
		memcpy(all + nall, cols, n * sizeof(*cols));
		nall += n;
		free(cols);
	}
	*cols_r = all;
	*count_r = nall;
	all = NULL;
	ret = 0;
out:
	dav_collections_free(&all, nall);
	free(homes[0]);
	free(homes[1]);
	return ret;
}
