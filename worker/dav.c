/* Contacts and calendars of one account, after its mail and inside its lease
 * (docs/DESIGN.md, "Contacts and calendars"): every address book and
 * calendar the source's CardDAV/CalDAV server discovers goes to the
 * destination's collection of the same name (found, or created with the
 * source's displayname); each object whose source ETag differs from the one
 * last copied is fetched and PUT byte for byte: If-None-Match: * for a new
 * one, If-Match with the destination's ETag for an update.  A refusal is
 * recorded for that object with the server's status and words, and the rest
 * goes on.  Nothing is ever written to the source.  Every record is a fenced
 * write (lib/store/dav.c); a collection's sync-token is kept only once
 * everything it listed is recorded, so an interrupted run lists it again. */
#include "sync-private.h"

#include "dav.h"
#include "log.h"
#include "store-dav.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state of one DAV run. */
struct dav_run {
	struct account_run *run;
	struct store *st;
	struct dav_client *src, *dst;
	/* The destination's homes and what is under them. */
	char *dst_home[2];
	struct dav_collection *dst_cols;
	size_t ndst;
	uint64_t contacts, events, matched, failed, collections_failed;
	char first_error[256];
};

bool dav_wanted(const struct store_account *acct)
{
	return acct->src.dav_url != NULL && acct->dst.dav_url != NULL;
}

/* A store result: a lost lease stops the run, another failure fails it. */
static int store_result(struct dav_run *d, int ret, const char *error)
{
	if (ret == STORE_LEASE_LOST)
		run_fail(d->run, SYNC_LEASE_LOST, error);
	else if (ret < 0)
		run_fail(d->run, SYNC_FAILED, error);
	return ret < 0 ? RUN_STOP : 0;
}

/* A failure of a DAV server as a whole (unreachable, credentials refused,
 * not a DAV server): the account fails and is tried again later. */
static int server_failed(struct dav_run *d, const char *side, const char *why)
{
	char msg[640];

	snprintf(msg, sizeof(msg), "contacts and calendars: %s: %s", side, why);
	run_fail(d->run, SYNC_FAILED, msg);
	return RUN_STOP;
}

static void note_error(struct dav_run *d, const char *what, const char *why)
{
	if (d->first_error[0] == '\0')
		snprintf(d->first_error, sizeof(d->first_error), "%s: %s", what, why);
}

static int client_open(struct dav_run *d, const struct store_server *srv, const char *login,
                       const char *secret, bool read_only, struct dav_client **c_r, char *err,
                       size_t errlen)
{
	const struct sync_config *cfg = d->run->cfg;
	struct dav_endpoint ep = {
	    .url = srv->dav_url,
	    .ca_file = srv->dav_ca_file != NULL ? srv->dav_ca_file : cfg->ca_file,
	    .user = login,
	    .password = secret,
	    .timeout_s = cfg->io_timeout_s > 0 ? cfg->io_timeout_s * 4 : 0,
	    .read_only = read_only,
	};
	return dav_client_create(&ep, c_r, err, errlen);
}

/* The destination collection for src: one of the same name and kind under
 * the destination's home, or created there.  *href_r (caller frees). */
static int dst_collection(struct dav_run *d, const struct dav_collection *src, char **href_r,
                          char *why, size_t whylen)
{
	const char *home = d->dst_home[src->kind];
	char name[256], mine[256];
	long status;
	int ret;

	*href_r = NULL;
	if (home == NULL) {
		snprintf(why, whylen, "the destination has no %s home", dav_kind_name(src->kind));
		return DAV_EFAIL;
	}
	if (dav_href_name(src->href, name, sizeof(name)) < 0) {
		snprintf(why, whylen, "no name in the collection's href");
		return DAV_EFAIL;
	}
	for (size_t i = 0; i < d->ndst; i++) {
		if (dav_href_name(d->dst_cols[i].href, mine, sizeof(mine)) < 0 ||
		    strcmp(mine, name) != 0)
			continue;
		if (d->dst_cols[i].kind != src->kind) {
			snprintf(why, whylen, "the destination's collection %.200s is a%s %s",
			         d->dst_cols[i].href,
			         d->dst_cols[i].kind == DAV_ADDRESSBOOK ? "n" : "",
			         dav_kind_name(d->dst_cols[i].kind));
			return DAV_EFAIL;
		}
		*href_r = strdup(d->dst_cols[i].href);
		return *href_r != NULL ? 0 : DAV_EFAIL;
	}
	if (asprintf(href_r, "%s%s%s/", home, home[strlen(home) - 1] == '/' ? "" : "/", name) < 0) {
		*href_r = NULL;
		snprintf(why, whylen, "out of memory");
		return DAV_EFAIL;
	}
	if (!lease_may_write(d->run)) {
		free(*href_r);
		*href_r = NULL;
		run_fail(d->run, SYNC_LEASE_LOST, "the lease may have expired: no write");
		return RUN_STOP;
	}
	ret = dav_create(d->dst, *href_r, src, &status, why, whylen);
	if (ret < 0) {
		free(*href_r);
		*href_r = NULL;
		return ret;
	}
	log_info("account %" PRId64 ": %s %s created on the destination", d->run->acct->id,
	         dav_kind_name(src->kind), name);
	return 0;
}

/* The stored row of src_href in objs (sorted by byte order), or NULL. */
static const struct store_dav_object *known_find(const struct store_dav_object *objs, size_t n,
                                                 const char *src_href)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(objs[mid].src_href, src_href);
		if (c == 0)
			return &objs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Copies one source object; 0 (copied, found equal or refused: recorded),
 * RUN_STOP. */
static int copy_object(struct dav_run *d, const struct dav_collection *col, int64_t col_id,
                       const char *dst_col, const struct dav_resource *res,
                       const struct store_dav_object *known)
{
	const struct store_account *acct = d->run->acct;
	bool cal = col->kind == DAV_CALENDAR, copied = false;
	struct dav_object obj = {0}, there = {0};
	char name[512], why[512] = "", error[STORE_ERRLEN] = "", *dst_href = NULL, *etag = NULL;
	const char *refusal = NULL;
	long status = 0;
	int ret;

	if (dav_href_name(res->href, name, sizeof(name)) < 0)
		return 0; /* not an object path */
	ret = dav_get(d->src, res->href, &obj, &status, why, sizeof(why));
	if (ret == DAV_ESTATUS && status == 404)
		return 0; /* deleted since it was listed: the next listing says so */
	if (ret < 0 && ret != DAV_ESTATUS)
		return server_failed(d, "source", why);
	if (known != NULL)
		dst_href = strdup(known->dst_href);
	else if (asprintf(&dst_href, "%s%s", dst_col, name) < 0)
		dst_href = NULL;
	if (dst_href == NULL) {
		ret = server_failed(d, "destination", "out of memory");
		goto out;
	}
	if (ret < 0) {
		/* The source would not give this one object: recorded like a
		 * refusal, tried again when its ETag changes. */
		refusal = why;
		goto record;
	}
	const char *ctype = obj.content_type != NULL ? obj.content_type
	                    : cal                    ? "text/calendar; charset=utf-8"
	                                             : "text/vcard; charset=utf-8";
	const char *if_match = known != NULL ? known->dst_etag : NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!lease_may_write(d->run)) {
			run_fail(d->run, SYNC_LEASE_LOST, "the lease may have expired: no write");
			ret = RUN_STOP;
			goto out;
		}
		free(etag);
		etag = NULL;
		ret = dav_put(d->dst, dst_href, obj.data, obj.len, ctype, if_match, &etag, &status,
		              why, sizeof(why));
		if (ret == 0) {
			copied = true;
			break;
		}
		if (ret != DAV_ESTATUS) {
			ret = server_failed(d, "destination", why);
			goto out;
		}
		if (status != 412 || if_match != NULL || attempt > 0) {
			/* Refused: recorded with the server's words.  412 with
			 * If-Match: changed on the destination since copied. */
			refusal = status == 412 && if_match != NULL
			              ? "changed on the destination since it was copied: not"
			                " overwritten"
			              : why;
			break;
		}
		/* Already there: stored by a run that stopped before recording
		 * it, or there before.  The same bytes count as copied;
		 * otherwise the source's version replaces it. */
		dav_object_free(&there);
		ret = dav_get(d->dst, dst_href, &there, &status, why, sizeof(why));
		if (ret < 0) {
			refusal = why;
			break;
		}
		if (there.len == obj.len && memcmp(there.data, obj.data, obj.len) == 0) {
			etag = there.etag != NULL ? strdup(there.etag) : NULL;
			d->matched++;
			break;
		}
		if (there.etag == NULL) {
			refusal = "already on the destination, different, and without an ETag";
			break;
		}
		if_match = there.etag;
	}
record:
	if (refusal != NULL) {
		d->failed++;
		note_error(d, res->href, refusal);
		log_warn("account %" PRId64 ": %s refused: %s", acct->id, res->href, refusal);
	} else if (copied) {
		if (cal)
			d->events++;
		else
			d->contacts++;
	}
	ret = store_dav_object_done(d->st, acct->id, d->run->epoch, col_id, cal, res->href,
	                            res->etag, dst_href, refusal != NULL ? NULL : etag, refusal,
	                            copied, error, sizeof(error));
	ret = store_result(d, ret, error);
out:
	dav_object_free(&obj);
	dav_object_free(&there);
	free(dst_href);
	free(etag);
	return ret;
}

/* One source collection: its destination collection, then each changed
 * object.  0 (done, or its error recorded), RUN_STOP. */
static int copy_collection(struct dav_run *d, const struct dav_collection *col)
{
	const struct store_account *acct = d->run->acct;
	struct store_dav_object *known = NULL;
	struct dav_resource *res = NULL;
	size_t nknown = 0, nres = 0;
	char *dst_href = NULL, *token = NULL, *new_token = NULL;
	char why[512] = "", error[STORE_ERRLEN] = "", name[256] = "";
	int64_t col_id = 0;
	bool full;
	int ret;

	(void)dav_href_name(col->href, name, sizeof(name));
	ret = dst_collection(d, col, &dst_href, why, sizeof(why));
	if (ret == RUN_STOP)
		return RUN_STOP;
	if (ret == DAV_ENET || ret == DAV_EAUTH)
		return server_failed(d, "destination", why);
	ret = store_dav_collection(d->st, acct->id, d->run->epoch, dav_kind_name(col->kind),
	                           col->href, dst_href != NULL ? dst_href : "",
	                           col->displayname != NULL ? col->displayname : name, &col_id,
	                           &token, error, sizeof(error));
	if (store_result(d, ret, error) != 0)
		goto out;
	if (dst_href == NULL) {
		/* This collection cannot be had on the destination: recorded,
		 * the others go on. */
		d->collections_failed++;
		note_error(d, col->href, why);
		log_warn("account %" PRId64 ": %s %s: %s", acct->id, dav_kind_name(col->kind),
		         col->href, why);
		ret = store_result(d,
		                   store_dav_collection_done(d->st, acct->id, d->run->epoch, col_id,
		                                             NULL, why, error, sizeof(error)),
		                   error);
		goto out;
	}
	ret = store_dav_objects(d->st, col_id, &known, &nknown, error, sizeof(error));
	if (store_result(d, ret, error) != 0)
		goto out;
	ret = dav_list(d->src, col->href, col->can_sync, token, &res, &nres, &new_token, &full, why,
	               sizeof(why));
	if (ret < 0) {
		if (ret != DAV_ESTATUS) {
			ret = server_failed(d, "source", why);
			goto out;
		}
		d->collections_failed++;
		note_error(d, col->href, why);
		ret = store_result(d,
		                   store_dav_collection_done(d->st, acct->id, d->run->epoch, col_id,
		                                             NULL, why, error, sizeof(error)),
		                   error);
		goto out;
	}
	for (size_t i = 0; i < nres; i++) {
		const struct store_dav_object *k = known_find(known, nknown, res[i].href);

		if (run_should_stop(d->run)) {
			ret = RUN_STOP;
			goto out;
		}
		/* Removed on the source: the destination keeps it (nothing is
		 * deleted by a migration).  Same ETag: nothing changed. */
		if (res[i].removed || (k != NULL && strcmp(k->src_etag, res[i].etag) == 0))
			continue;
		if ((ret = copy_object(d, col, col_id, dst_href, &res[i], k)) != 0)
			goto out;
	}
	ret = store_result(d,
	                   store_dav_collection_done(d->st, acct->id, d->run->epoch, col_id,
	                                             new_token, NULL, error, sizeof(error)),
	                   error);
out:
	store_dav_objects_free(&known, nknown);
	dav_resources_free(&res, nres);
	free(dst_href);
	free(token);
	free(new_token);
	return ret;
}

int dav_copy(struct account_run *run, struct store *st)
{
	const struct store_account *acct = run->acct;
	struct dav_run d = {.run = run, .st = st};
	struct dav_collection *cols = NULL;
	size_t ncols = 0;
	char why[512] = "";
	int ret = RUN_STOP;

	/* The source is only ever read: its client refuses anything else. */
	if (client_open(&d, &acct->src, acct->src_login, run->creds.src_secret, true, &d.src, why,
	                sizeof(why)) < 0) {
		server_failed(&d, "source", why);
		goto out;
	}
	if (client_open(&d, &acct->dst, acct->dst_login, run->creds.dst_secret, false, &d.dst, why,
	                sizeof(why)) < 0) {
		server_failed(&d, "destination", why);
		goto out;
	}
	if (dav_discover(d.src, &cols, &ncols, why, sizeof(why)) < 0) {
		server_failed(&d, "source", why);
		goto out;
	}
	if (dav_homes(d.dst, &d.dst_home[DAV_ADDRESSBOOK], &d.dst_home[DAV_CALENDAR], why,
	              sizeof(why)) < 0) {
		server_failed(&d, "destination", why);
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		struct dav_collection *more = NULL, *grown;
		size_t n = 0;

		if (d.dst_home[k] == NULL ||
		    (k == 1 && d.dst_home[0] != NULL && strcmp(d.dst_home[0], d.dst_home[1]) == 0))
			continue;
		if (dav_home_collections(d.dst, d.dst_home[k], &more, &n, why, sizeof(why)) < 0) {
			server_failed(&d, "destination", why);
			goto out;
		}
		if (n == 0)
			continue;
		grown = realloc(d.dst_cols, (d.ndst + n) * sizeof(*grown));
		if (grown == NULL) {
			dav_collections_free(&more, n);
			server_failed(&d, "destination", "out of memory");
			goto out;
		}
		d.dst_cols = grown;
		memcpy(d.dst_cols + d.ndst, more, n * sizeof(*more));
		d.ndst += n;
		free(more);
	}
	ret = 0;
	for (size_t i = 0; i < ncols && ret == 0; i++)
		ret = copy_collection(&d, &cols[i]);
	log_info("account %" PRId64 ": contacts and calendars: %zu collections, %" PRIu64
	         " contacts and %" PRIu64 " events copied, %" PRIu64 " already there, %" PRIu64
	         " refused, %" PRIu64 " collections failed (%lu + %lu requests)%s%s",
	         acct->id, ncols, d.contacts, d.events, d.matched, d.failed, d.collections_failed,
	         dav_client_requests(d.src), dav_client_requests(d.dst),
	         d.first_error[0] != '\0' ? "; first: " : "", d.first_error);
out:
	pthread_mutex_lock(&run->lock);
	run->stats.dav_contacts += d.contacts;
	run->stats.dav_events += d.events;
	run->stats.dav_failed += d.failed + d.collections_failed;
	pthread_mutex_unlock(&run->lock);
	dav_collections_free(&cols, ncols);
	dav_collections_free(&d.dst_cols, d.ndst);
	free(d.dst_home[0]);
	free(d.dst_home[1]);
	dav_client_destroy(&d.src);
	dav_client_destroy(&d.dst);
	return ret;
}
