/* Proof of completeness: every folder the worker mapped is read on both
 * sides (EXAMINE: nothing changes), every message's identity, size, flags and
 * INTERNALDATE compared (proof-compare.c), and the result kept as the
 * account's last proof. */
#include "inspect-private.h"

#include "log.h"
#include "names.h"
#include "proof-compare.h"
#include "proof-report.h"
#include "store-account.h"
#include "store-proof.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bounds of one body fetch, as the worker's batches. */
#define FETCH_COUNT 100
#define FETCH_BYTES (8u << 20)
#define SIZE_WINDOW 20000
#define SPOOL_CHUNK (1u << 20)

struct side_msgs {
	struct proof_msg *msgs;
	size_t count;
	bool absent; /* the folder does not exist on this side */
};

static void msg_fill(struct proof_msg *p, const struct imap_msg *m)
{
	p->uid = m->uid;
	p->size = m->size;
	snprintf(p->flags, sizeof(p->flags), "%s", m->flags);
	snprintf(p->date, sizeof(p->date), "%s", m->internaldate);
}

/* One large message through a temporary file (memory stays bounded). */
static int fetch_spooled(struct imap_session *s, uint32_t uid, struct proof_msg *p, bool *gone_r,
                         char *err, size_t errlen)
{
	struct imap_msg m = {0};
	FILE *f = tmpfile();
	int ret;

	*gone_r = false;
	if (f == NULL) {
		snprintf(err, errlen, "no temporary file for a large message");
		return -1;
	}
	ret = imap_fetch_body_to_file(s, uid, fileno(f), SPOOL_CHUNK, &m, err, errlen);
	if (ret == 1)
		*gone_r = true;
	else if (ret == 0 && imap_msg_hash(&m, p->hash) < 0) {
		snprintf(err, errlen, "spool file read failed");
		ret = -1;
	}
	if (ret == 0)
		msg_fill(p, &m);
	fclose(f);
	return ret < 0 ? ret : 0;
}

/* Every message of a folder with its identity: sizes first (UID windows),
 * then the bodies in bounded batches. */
static int side_fetch(struct inspect_side *side, const char *name, struct side_msgs *out, char *err,
                      size_t errlen)
{
	struct imap_session *s = side->session;
	struct imap_status st;
	struct imap_batch sizes = {0};
	size_t cap = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = imap_folder_open(s, name, true, &st, err, errlen);
	if (ret == IMAP_ENO) {
		out->absent = true;
		return 0;
	}
	if (ret < 0)
		return ret;
	for (uint64_t first = 1; first < st.uidnext; first += SIZE_WINDOW) {
		uint64_t last = first + SIZE_WINDOW - 1;
		if (last >= st.uidnext)
			last = UINT32_MAX;
		ret = imap_fetch_sizes(s, (uint32_t)first, (uint32_t)last, &sizes, err, errlen);
		if (ret < 0)
			return ret;
		if (out->count + sizes.count > cap) {
			size_t ncap = (out->count + sizes.count) * 2 + 16;
			struct proof_msg *nm = realloc(out->msgs, ncap * sizeof(*nm));
			if (nm == NULL) {
				imap_batch_free(&sizes);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			out->msgs = nm;
			cap = ncap;
		}
		for (size_t i = 0; i < sizes.count;) {
			uint32_t uids[FETCH_COUNT];
			size_t n = 0, bytes = 0;
			struct imap_batch b = {0};

			if (sizes.msgs[i].size > FETCH_BYTES) {
				bool gone;
				struct proof_msg *p = &out->msgs[out->count];
				memset(p, 0, sizeof(*p));
				ret = fetch_spooled(s, sizes.msgs[i].uid, p, &gone, err, errlen);
				if (ret < 0)
					goto fail;
				out->count += !gone;
				i++;
				continue;
			}
			while (i < sizes.count && n < FETCH_COUNT &&
			       sizes.msgs[i].size <= FETCH_BYTES &&
			       (n == 0 || bytes + sizes.msgs[i].size <= FETCH_BYTES)) {
				bytes += sizes.msgs[i].size;
				uids[n++] = sizes.msgs[i++].uid;
			}
			inspect_side_keep(side);
			ret = imap_fetch_bodies(s, uids, n, &b, err, errlen);
			if (ret < 0)
				goto fail;
			/* Messages expunged meanwhile are simply not there. */
			for (size_t k = 0; k < b.count; k++) {
				struct proof_msg *p = &out->msgs[out->count++];
				memset(p, 0, sizeof(*p));
				msg_fill(p, &b.msgs[k]);
				imap_msg_hash(&b.msgs[k], p->hash);
			}
			imap_batch_free(&b);
		}
		imap_batch_free(&sizes);
		if (last == UINT32_MAX)
			break;
	}
	return 0;
fail:
	imap_batch_free(&sizes);
	return ret;
}

static json_t *uid_json(uint32_t uid)
{
	return uid != 0 ? json_integer(uid) : json_null();
}

static json_t *diff_json(const char *folder, const struct proof_diff *d)
{
	json_t *j = json_object();

	json_object_set_new(j, "folder", json_string(folder));
	json_object_set_new(j, "kind", json_string(proof_kind_name(d->kind)));
	json_object_set_new(j, "source_uid", uid_json(d->src_uid));
	json_object_set_new(j, "destination_uid", uid_json(d->dst_uid));
	json_object_set_new(j, "source", d->src[0] != '\0' ? json_string(d->src) : json_null());
	json_object_set_new(j, "destination",
	                    d->dst[0] != '\0' ? json_string(d->dst) : json_null());
	json_object_set_new(j, "detail", json_string(d->detail));
	return j;
}

/* Compares one mapped folder; appends its row and its differences. */
/* Takes the messages the profile's filters leave out of s (they are not
 * copied by choice); *out_r (caller frees) holds them. */
static int filter_out(const struct inspect_filter *flt, struct side_msgs *s,
                      struct proof_msg **out_r, size_t *n_r)
{
	size_t kept = 0;

	*n_r = 0;
	*out_r = calloc(s->count + 1, sizeof(**out_r));
	if (*out_r == NULL)
		return -1;
	for (size_t i = 0; i < s->count; i++) {
		if (inspect_filtered(flt, s->msgs[i].size, s->msgs[i].date))
			(*out_r)[(*n_r)++] = s->msgs[i];
		else
			s->msgs[kept++] = s->msgs[i];
	}
	s->count = kept;
	return 0;
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PROOF_HASH_LEN);
}

/* The message with this UID in d (ascending by UID), or NULL. */
static const struct proof_msg *msg_by_uid(const struct side_msgs *d, uint32_t uid)
{
	size_t lo = 0, hi = d->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->count && d->msgs[lo].uid == uid ? &d->msgs[lo] : NULL;
}

/* Drops the destination messages that are not this folder's to explain:
 * "extra" ones that are source messages the filters left out (copied before
 * the filter was set), or, where folders are merged into one destination
 * folder, "extra" and "duplicate" ones that are another merged folder's
 * messages (known: those other messages). */
static int extras_known(struct proof_result *r, const struct proof_msg *known_msgs, size_t n,
                        const struct side_msgs *d, bool duplicates)
{
	unsigned char(*hashes)[PROOF_HASH_LEN] = calloc(n + 1, sizeof(*hashes));
	size_t kept = 0;

	if (hashes == NULL)
		return -1;
	for (size_t k = 0; k < n; k++)
		memcpy(hashes[k], known_msgs[k].hash, PROOF_HASH_LEN);
	qsort(hashes, n, sizeof(*hashes), hash_cmp);
	for (size_t i = 0; i < r->count; i++) {
		const struct proof_msg *m = NULL;
		if (r->diffs[i].kind == PROOF_EXTRA ||
		    (duplicates && r->diffs[i].kind == PROOF_DUPLICATE))
			m = msg_by_uid(d, r->diffs[i].dst_uid);
		if (m != NULL && bsearch(m->hash, hashes, n, sizeof(*hashes), hash_cmp) != NULL) {
			r->extra--;
			continue;
		}
		r->diffs[kept++] = r->diffs[i];
	}
	r->count = kept;
	free(hashes);
	return 0;
}

static int folder_prove(struct store *st, struct inspect_side *src, struct inspect_side *dst,
                        const struct inspect_filter *flt, const struct store_proof_folder *f,
                        const struct proof_msg *others, size_t nothers, json_t *folders,
                        json_t *diffs, size_t *missing, size_t *extra, size_t *changed, char *err,
                        size_t errlen)
{
	struct side_msgs s = {0}, d = {0};
	struct store_uidpair *pairs = NULL;
	struct store_uid_note *errs = NULL, *drops = NULL;
	struct proof_note *en = NULL, *dn = NULL;
	struct proof_result r = {0};
	struct proof_msg *filtered = NULL;
	size_t npairs = 0, nerrs = 0, ndrops = 0, nfiltered = 0;
	char shown[1024], dshown[1024], error[STORE_ERRLEN] = "";
	int ret = -1;

	inspect_folder_shown(f->src_name, shown, sizeof(shown));
	inspect_folder_shown(f->dst_name, dshown, sizeof(dshown));
	if (side_fetch(src, f->src_name, &s, err, errlen) < 0 ||
	    side_fetch(dst, f->dst_name, &d, err, errlen) < 0)
		goto out;
	if (filter_out(flt, &s, &filtered, &nfiltered) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (store_uidmap_all(st, f->id, &pairs, &npairs, error, sizeof(error)) < 0 ||
	    store_folder_notes(st, f->id, false, &errs, &nerrs, error, sizeof(error)) < 0 ||
	    store_folder_notes(st, f->id, true, &drops, &ndrops, error, sizeof(error)) < 0) {
		snprintf(err, errlen, "%s", error);
		goto out;
	}
	en = calloc(nerrs + 1, sizeof(*en));
	dn = calloc(ndrops + 1, sizeof(*dn));
	if (en == NULL || dn == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nerrs; i++)
		en[i] = (struct proof_note){errs[i].src_uid, NULL, errs[i].error};
	for (size_t i = 0; i < ndrops; i++)
		dn[i] = (struct proof_note){drops[i].src_uid, drops[i].keywords, drops[i].error};
	_Static_assert(sizeof(struct proof_map) == sizeof(struct store_uidpair), "same pairs");
	if (proof_compare(s.msgs, s.count, d.msgs, d.count, (const struct proof_map *)pairs, npairs,
	                  en, nerrs, dn, ndrops, &r) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((nfiltered > 0 && extras_known(&r, filtered, nfiltered, &d, false) < 0) ||
	    (nothers > 0 && extras_known(&r, others, nothers, &d, true) < 0)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	json_t *jf = json_object();
	json_object_set_new(jf, "name", json_string(shown));
	json_object_set_new(jf, "destination_name", json_string(dshown));
	json_object_set_new(jf, "source", json_integer((json_int_t)s.count));
	json_object_set_new(jf, "destination", json_integer((json_int_t)d.count));
	json_object_set_new(jf, "missing", json_integer((json_int_t)r.missing));
	json_object_set_new(jf, "extra", json_integer((json_int_t)r.extra));
	json_object_set_new(jf, "changed", json_integer((json_int_t)r.changed));
	json_object_set_new(jf, "filtered", json_integer((json_int_t)nfiltered));
	if (f->error != NULL)
		json_object_set_new(jf, "error", json_string(f->error));
	else if (d.absent)
		json_object_set_new(jf, "error",
		                    json_string("the destination folder does not exist"));
	json_array_append_new(folders, jf);
	for (size_t i = 0; i < r.count; i++)
		json_array_append_new(diffs, diff_json(shown, &r.diffs[i]));
	*missing += r.missing;
	*extra += r.extra;
	*changed += r.changed;
	ret = 0;
out:
	proof_result_free(&r);
	free(filtered);
	free(s.msgs);
	free(d.msgs);
	free(pairs);
	free(en);
	free(dn);
	store_uid_notes_free(&errs, nerrs);
	store_uid_notes_free(&drops, ndrops);
	return ret;
}

/* Where folder rules merge source folders into one destination folder: the
 * messages of the other source folders of rows[i]'s destination folder, so
 * that its comparison does not take them for extra (a message in two merged
 * folders has a copy from each).  others is empty when none is merged. */
static int merged_others(struct inspect_side *src, const struct store_proof_folder *rows,
                         size_t nrows, size_t i, struct side_msgs *others, char *err, size_t errlen)
{
	memset(others, 0, sizeof(*others));
	for (size_t k = 0; k < nrows; k++) {
		struct side_msgs m = {0};
		if (k == i || strcmp(rows[k].dst_name, rows[i].dst_name) != 0)
			continue;
		if (side_fetch(src, rows[k].src_name, &m, err, errlen) < 0)
			return -1;
		struct proof_msg *all =
		    realloc(others->msgs, (others->count + m.count + 1) * sizeof(*all));
		if (all == NULL) {
			free(m.msgs);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(all + others->count, m.msgs, m.count * sizeof(*all));
		others->msgs = all;
		others->count += m.count;
		free(m.msgs);
	}
	return 0;
}

/* A selectable source folder the worker has no row for (created on the
 * source since the last pass, or never copied): every message is missing. */
static int folder_uncopied(struct inspect_side *src, const struct inspect_filter *flt,
                           const char *name, const char *why, json_t *folders, json_t *diffs,
                           size_t *missing, char *err, size_t errlen)
{
	struct imap_status st;
	char shown[1024];
	size_t count = 0;
	int ret;

	inspect_folder_shown(name, shown, sizeof(shown));
	ret = imap_folder_open(src->session, name, true, &st, err, errlen);
	if (ret < 0)
		return ret;
	for (uint64_t first = 1; first < st.uidnext; first += SIZE_WINDOW) {
		struct imap_batch b = {0};
		uint64_t last = first + SIZE_WINDOW - 1;
		if (last >= st.uidnext)
			last = UINT32_MAX;
		ret = flt->since > 0 ? imap_fetch_sizes_dates(src->session, (uint32_t)first,
		                                              (uint32_t)last, &b, err, errlen)
		                     : imap_fetch_sizes(src->session, (uint32_t)first,
		                                        (uint32_t)last, &b, err, errlen);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < b.count; i++) {
			struct proof_diff d = {.kind = PROOF_MISSING, .src_uid = b.msgs[i].uid};
			if (inspect_filtered(flt, b.msgs[i].size, b.msgs[i].internaldate))
				continue;
			count++;
			snprintf(d.src, sizeof(d.src), "%u bytes", b.msgs[i].size);
			snprintf(d.detail, sizeof(d.detail), "the folder was not copied: %s", why);
			json_array_append_new(diffs, diff_json(shown, &d));
		}
		imap_batch_free(&b);
		if (last == UINT32_MAX)
			break;
	}
	json_t *jf = json_object();
	json_object_set_new(jf, "name", json_string(shown));
	json_object_set_new(jf, "destination_name", json_null());
	json_object_set_new(jf, "source", json_integer((json_int_t)count));
	json_object_set_new(jf, "destination", json_integer(0));
	json_object_set_new(jf, "missing", json_integer((json_int_t)count));
	json_object_set_new(jf, "extra", json_integer(0));
	json_object_set_new(jf, "changed", json_integer(0));
	json_object_set_new(jf, "error", json_string(why));
	json_array_append_new(folders, jf);
	*missing += count;
	return 0;
}

/* The source folders a pass would copy and the worker has no row for. */
static int folders_uncopied(struct inspect_side *src, const struct store_account *acct,
                            const struct inspect_filter *flt, const struct store_proof_folder *rows,
                            size_t nrows, json_t *folders, json_t *diffs, size_t *missing,
                            char *err, size_t errlen)
{
	struct imap_folder *list = NULL;
	size_t n = 0;
	int ret = imap_folders_list(src->session, acct->src.prefix, &list, &n, err, errlen);

	for (size_t i = 0; i < n && ret == 0; i++) {
		bool known = false;
		/* The worker's own rule (worker/folders.c). */
		if ((list[i].flags & IMAP_FOLDER_NOSELECT) != 0 ||
		    imap_name_excluded(list[i].name, list[i].delimiter, acct->src.exclude))
			continue;
		for (size_t k = 0; k < nrows && !known; k++)
			known = strcmp(rows[k].src_name, list[i].name) == 0;
		if (!known)
			ret = folder_uncopied(src, flt, list[i].name, "no pass has seen it yet",
			                      folders, diffs, missing, err, errlen);
	}
	imap_folders_free(&list, n);
	return ret;
}

static void now_rfc3339(char *out, size_t outlen)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One account's proof, stored; its JSON (never NULL: a failure is in "error"
 * and the proof is not exact). */
static json_t *account_prove(struct store *st, const struct secret_key *key, int64_t id,
                             const char *trigger)
{
	struct store_account acct = {0};
	struct account_creds creds = {0};
	struct inspect_side src = {0}, dst = {0};
	struct store_proof_folder *rows = NULL;
	struct inspect_filter flt = {0};
	size_t nrows = 0, missing = 0, extra = 0, changed = 0;
	char error[STORE_ERRLEN] = "", err[1024] = "", at[32];
	json_t *a = json_object(), *folders = json_array(), *diffs = json_array();
	bool exact;

	now_rfc3339(at, sizeof(at));
	json_object_set_new(a, "account_id", json_integer(id));
	if (store_account_get(st, id, &acct, error, sizeof(error)) < 0) {
		snprintf(err, sizeof(err), "%s", error);
		goto out;
	}
	json_object_set_new(a, "account", json_string(acct.src_login));
	json_object_set_new(a, "destination_login", json_string(acct.dst_login));
	/* A proof of an account being copied shows a copy in progress. */
	json_object_set_new(a, "state", json_string(acct.state));
	if (store_proof_folders(st, id, &rows, &nrows, error, sizeof(error)) < 0) {
		snprintf(err, sizeof(err), "%s", error);
		goto out;
	}
	if (account_creds_open(&acct, key, NULL, &creds, err, sizeof(err)) < 0 ||
	    inspect_side_open(&src, st, acct.src.id, &creds.src, "source", err, sizeof(err)) < 0 ||
	    inspect_side_open(&dst, st, acct.dst.id, &creds.dst, "destination", err, sizeof(err)) <
	        0)
		goto out;
	if (nrows == 0)
		snprintf(err, sizeof(err), "no folder copied yet: nothing to compare");
	inspect_filter_init(&flt, &acct.src);
	for (size_t i = 0; i < nrows && err[0] == '\0'; i++) {
		struct side_msgs others = {0};
		/* A folder the worker could not map or create: nothing of it is
		 * on the destination, and its error says why. */
		if (rows[i].dst_name == NULL || rows[i].dst_name[0] == '\0') {
			folder_uncopied(&src, &flt, rows[i].src_name,
			                rows[i].error != NULL ? rows[i].error
			                                      : "it has no destination",
			                folders, diffs, &missing, err, sizeof(err));
			continue;
		}
		if (merged_others(&src, rows, nrows, i, &others, err, sizeof(err)) == 0)
			folder_prove(st, &src, &dst, &flt, &rows[i], others.msgs, others.count,
			             folders, diffs, &missing, &extra, &changed, err, sizeof(err));
		free(others.msgs);
	}
	if (err[0] == '\0')
		folders_uncopied(&src, &acct, &flt, rows, nrows, folders, diffs, &missing, err,
		                 sizeof(err));
out:
	exact = err[0] == '\0' && missing == 0 && extra == 0 && changed == 0;
	json_object_set_new(a, "at", json_string(at));
	json_object_set_new(a, "trigger", json_string(trigger));
	json_object_set_new(a, "exact", json_boolean(exact));
	json_object_set_new(a, "missing", json_integer((json_int_t)missing));
	json_object_set_new(a, "extra", json_integer((json_int_t)extra));
	json_object_set_new(a, "changed", json_integer((json_int_t)changed));
	json_object_set_new(a, "folders", folders);
	json_object_set_new(a, "differences", diffs);
	json_object_set_new(a, "error", err[0] != '\0' ? json_string(err) : json_null());
	if (acct.src_login != NULL) {
		char *text = json_dumps(a, JSON_COMPACT);
		if (text == NULL ||
		    store_proof_put(st, id, trigger, exact, (int64_t)missing, (int64_t)extra,
		                    (int64_t)changed, text, error, sizeof(error)) < 0)
			log_error("account %" PRId64 ": proof not stored: %s", id,
			          text == NULL ? "out of memory" : error);
		free(text);
	}
	log_info("account %" PRId64 ": proof (%s) %s: %zu missing, %zu extra, %zu changed%s%s", id,
	         trigger, exact ? "exact" : "not exact", missing, extra, changed,
	         err[0] != '\0' ? "; " : "", err);
	store_proof_folders_free(&rows, nrows);
	inspect_side_close(&src);
	inspect_side_close(&dst);
	account_creds_close(&creds);
	store_account_clear(&acct);
	return a;
}

json_t *inspect_proof(struct store *st, const struct secret_key *key, int64_t migration_id,
                      const int64_t *ids, size_t count, const char *trigger, const char *out_dir,
                      char *err, size_t errlen, enum inspect_code *code_r)
{
	int64_t *todo = NULL;
	size_t n = 0;
	bool exact = true;
	char at[32];
	json_t *out = NULL, *accounts;
	enum inspect_code code = INSPECT_FAILED;

	if (inspect_ids(st, migration_id, ids, count, &todo, &n, err, errlen) < 0)
		goto out;
	now_rfc3339(at, sizeof(at));
	out = json_object();
	accounts = json_array();
	json_object_set_new(out, "migration", json_integer(migration_id));
	json_object_set_new(out, "at", json_string(at));
	json_object_set_new(out, "accounts", accounts);
	for (size_t i = 0; i < n; i++) {
		json_t *a = account_prove(st, key, todo[i], trigger);
		exact &= json_is_true(json_object_get(a, "exact"));
		json_array_append_new(accounts, a);
	}
	json_object_set_new(out, "exact", json_boolean(exact));
	if (out_dir != NULL && proof_report_write(out, out_dir, err, errlen) < 0) {
		json_decref(out);
		out = NULL;
		goto out;
	}
	code = INSPECT_OK;
out:
	free(todo);
	if (code_r != NULL)
		*code_r = code;
	return out;
}

json_t *inspect_proof_get(struct store *st, int64_t account_id, char *err, size_t errlen,
                          enum inspect_code *code_r)
{
	char *text = NULL;
	json_error_t jerr;
	json_t *out = NULL;
	int ret = store_proof_get(st, account_id, &text, err, errlen);

	if (ret == 1) {
		snprintf(err, errlen, "account %" PRId64 " has no proof yet", account_id);
		if (code_r != NULL)
			*code_r = INSPECT_NOT_FOUND;
		return NULL;
	}
	if (ret == 0) {
		out = json_loads(text, 0, &jerr);
		if (out == NULL)
			snprintf(err, errlen, "stored proof unreadable: %s", jerr.text);
	}
	free(text);
	if (code_r != NULL)
		*code_r = out != NULL ? INSPECT_OK : INSPECT_FAILED;
	return out;
}

json_t *inspect_proofs_summary(struct store *st, int64_t migration_id, char *err, size_t errlen,
                               enum inspect_code *code_r)
{
	char *text = NULL;
	json_error_t jerr;
	json_t *items = NULL, *out = NULL;

	if (store_proofs_summary(st, migration_id, &text, err, errlen) == 0) {
		items = json_loads(text, 0, &jerr);
		if (items == NULL)
			snprintf(err, errlen, "proofs unreadable: %s", jerr.text);
	}
	free(text);
	if (items != NULL) {
		out = json_object();
		json_object_set_new(out, "items", items);
	}
	if (code_r != NULL)
		*code_r = out != NULL ? INSPECT_OK : INSPECT_FAILED;
	return out;
}

int inspect_final_proofs(struct store *st, const struct secret_key *key,
                         const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	int proven = 0;

	while (stop == NULL || !*stop) {
		int64_t *ids = NULL;
		size_t n = 0;
		if (store_final_proofs_claim(st, &ids, &n, err, errlen) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			json_decref(account_prove(st, key, ids[i], "final"));
		free(ids);
		if (n == 0)
			return proven;
		proven += (int)n;
	}
	return proven;
}
