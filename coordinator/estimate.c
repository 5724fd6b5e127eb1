/* The estimate (dry run): what a pass would copy, read from the source over
 * IMAP without changing anything, and how long it would take at the rate the
 * migration measured or its servers' budgets allow. */
#include "inspect-private.h"

#include "log.h"
#include "names.h"
#include "store-account.h"
#include "store-proof.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* UIDs per size fetch: bounds the memory of one answer on a large folder. */
#define SIZE_WINDOW 20000

/* Messages and bytes of one source folder, where STATUS had no SIZE: EXAMINE (never changes \Recent
 * or \Seen), then RFC822.SIZE of every message in UID windows. */
static int folder_count(struct imap_session *s, const char *name, const struct inspect_filter *f,
                        uint64_t *messages_r, uint64_t *bytes_r, uint64_t *filtered_r, char *err,
                        size_t errlen)
{
	struct imap_status st;
	int ret;

	*messages_r = *bytes_r = *filtered_r = 0;
	ret = imap_folder_open(s, name, true, &st, err, errlen);
	if (ret < 0)
		return ret;
	if (st.messages == 0)
		return 0;
	for (uint64_t first = 1; first < st.uidnext; first += SIZE_WINDOW) {
		struct imap_batch b = {0};
		uint64_t last = first + SIZE_WINDOW - 1;
		if (last >= st.uidnext)
			last = UINT32_MAX; /* and whatever arrived since */
		ret = f->since > 0
		          ? imap_fetch_sizes_dates(s, (uint32_t)first, (uint32_t)last, &b, err,
		                                   errlen)
		          : imap_fetch_sizes(s, (uint32_t)first, (uint32_t)last, &b, err, errlen);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < b.count; i++) {
			if (inspect_filtered(f, b.msgs[i].size, b.msgs[i].internaldate)) {
				(*filtered_r)++;
				continue;
			}
			*bytes_r += b.msgs[i].size;
			(*messages_r)++;
		}
		imap_batch_free(&b);
		if (last == UINT32_MAX)
			break;
	}
	return 0;
}

/* What the estimated accounts put through one server, against its budget
 * (rate limits are fleet-wide, per server profile). */
struct server_load {
	int64_t id;
	double rate_bytes, rate_messages; /* 0: no limit */
	uint64_t bytes, messages;
};
#define LOADS_MAX 64

static void load_add(struct server_load *loads, size_t *n, const struct store_server *srv,
                     uint64_t bytes, uint64_t messages)
{
	size_t i = 0;

	while (i < *n && loads[i].id != srv->id)
		i++;
	if (i == *n) {
		if (*n == LOADS_MAX)
			return;
		loads[i] = (struct server_load){srv->id, (double)srv->rate_bytes,
		                                (double)srv->rate_messages, 0, 0};
		(*n)++;
	}
	loads[i].bytes += bytes;
	loads[i].messages += messages;
}

/* Seconds the busiest server's budget needs for its load; 0 when no server
 * has a budget. */
static double budget_eta(const struct server_load *loads, size_t n)
{
	double eta = 0;

	for (size_t i = 0; i < n; i++) {
		if (loads[i].rate_bytes > 0 && (double)loads[i].bytes / loads[i].rate_bytes > eta)
			eta = (double)loads[i].bytes / loads[i].rate_bytes;
		if (loads[i].rate_messages > 0 &&
		    (double)loads[i].messages / loads[i].rate_messages > eta)
			eta = (double)loads[i].messages / loads[i].rate_messages;
	}
	return eta;
}

/* One account: {"account", "account_id", "folders", "messages", "bytes"}
 * or with "error". */
static json_t *account_estimate(struct store *st, const struct secret_key *key, int64_t id,
                                struct server_load *loads, size_t *nloads)
{
	struct store_account acct = {0};
	struct account_creds creds = {0};
	struct inspect_side src = {0};
	struct imap_folder *folders = NULL;
	struct imap_status_req *reqs = NULL;
	struct inspect_filter filter = {0};
	size_t nfolders = 0;
	uint64_t messages = 0, bytes = 0;
	char error[STORE_ERRLEN] = "", err[768] = "";
	json_t *a = json_object(), *list = json_array();

	json_object_set_new(a, "account_id", json_integer(id));
	if (store_account_get(st, id, &acct, error, sizeof(error)) < 0) {
		snprintf(err, sizeof(err), "%s", error);
		goto out;
	}
	json_object_set_new(a, "account", json_string(acct.src_login));
	inspect_filter_init(&filter, &acct.src);
	if (account_creds_open(&acct, key, NULL, &creds, err, sizeof(err)) < 0 ||
	    inspect_side_open(&src, st, acct.src.id, &creds.src, "source", err, sizeof(err)) < 0 ||
	    imap_folders_list(src.session, acct.src.prefix, &folders, &nfolders, err, sizeof(err)) <
	        0)
		goto out;
	/* One pipelined STATUS of every folder, with SIZE (RFC 8438) where the
	 * server offers STATUS=SIZE: no message is listed then. */
	reqs = calloc(nfolders + 1, sizeof(*reqs));
	if (reqs == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nfolders; i++) {
		reqs[i].name = folders[i].name;
		reqs[i].want_size = true;
	}
	if (nfolders > 0 && imap_status_many(src.session, reqs, nfolders, err, sizeof(err)) < 0)
		goto out;
	for (size_t i = 0; i < nfolders; i++) {
		const struct imap_folder *f = &folders[i];
		uint64_t m = 0, b = 0;
		char shown[1024], ferr[512];
		bool excluded;

		if ((f->flags & IMAP_FOLDER_NOSELECT) != 0)
			continue;
		/* The worker's own rule (worker/folders.c): excluded folders and
		 * their children are never copied. */
		excluded = imap_name_excluded(f->name, f->delimiter, acct.src.exclude);
		json_t *jf = json_object();
		inspect_folder_shown(f->name, shown, sizeof(shown));
		json_object_set_new(jf, "name", json_string(shown));
		json_object_set_new(jf, "excluded", json_boolean(excluded));
		int ret = 0;
		/* STATUS cannot see the profile's filters: then each message is. */
		bool by_status =
		    reqs[i].ret == 0 && reqs[i].st.has_size && !inspect_filter_active(&filter);
		uint64_t filtered = 0;
		json_object_set_new(jf, "counted_by",
		                    json_string(by_status ? "STATUS SIZE" : "FETCH RFC822.SIZE"));
		if (by_status) {
			m = reqs[i].st.messages;
			b = reqs[i].st.size;
		} else {
			ret = folder_count(src.session, f->name, &filter, &m, &b, &filtered, ferr,
			                   sizeof(ferr));
		}
		json_object_set_new(jf, "filtered", json_integer((json_int_t)filtered));
		if (ret < 0)
			json_object_set_new(jf, "error", json_string(ferr));
		json_object_set_new(jf, "messages", json_integer((json_int_t)m));
		json_object_set_new(jf, "bytes", json_integer((json_int_t)b));
		json_array_append_new(list, jf);
		/* The session is gone: the account's estimate is incomplete. */
		if (ret == IMAP_ENET || ret == IMAP_ELIMIT || ret == IMAP_ETHROTTLED) {
			snprintf(err, sizeof(err), "source: %s", ferr);
			break;
		}
		if (!excluded) {
			messages += m;
			bytes += b;
		}
	}
	load_add(loads, nloads, &acct.src, bytes, messages);
	load_add(loads, nloads, &acct.dst, bytes, messages);
out:
	json_object_set_new(a, "folders", list);
	json_object_set_new(a, "messages", json_integer((json_int_t)messages));
	json_object_set_new(a, "bytes", json_integer((json_int_t)bytes));
	if (err[0] != '\0')
		json_object_set_new(a, "error", json_string(err));
	free(reqs);
	imap_folders_free(&folders, nfolders);
	inspect_side_close(&src);
	account_creds_close(&creds);
	store_account_clear(&acct);
	return a;
}

json_t *inspect_estimate(struct store *st, const struct secret_key *key, int64_t migration_id,
                         const int64_t *ids, size_t count, char *err, size_t errlen,
                         enum inspect_code *code_r)
{
	struct server_load loads[LOADS_MAX];
	int64_t *todo = NULL;
	size_t n = 0, nloads = 0;
	uint64_t messages = 0, bytes = 0;
	double measured_b, measured_m, eta = -1;
	const char *source = NULL;
	json_t *out = NULL, *accounts;
	enum inspect_code code = INSPECT_FAILED;

	if (inspect_ids(st, migration_id, ids, count, &todo, &n, err, errlen) < 0 ||
	    store_rate_measured(st, migration_id, &measured_b, &measured_m, err, errlen) < 0)
		goto out;
	out = json_object();
	accounts = json_array();
	json_object_set_new(out, "accounts", accounts);
	for (size_t i = 0; i < n; i++) {
		json_t *a = account_estimate(st, key, todo[i], loads, &nloads);
		messages += (uint64_t)json_integer_value(json_object_get(a, "messages"));
		bytes += (uint64_t)json_integer_value(json_object_get(a, "bytes"));
		json_array_append_new(accounts, a);
	}
	/* The measured rate is what the fleet did under every budget it ran
	 * with; before any pass, the busiest server's budget bounds it; with
	 * neither, nothing is known. */
	if (measured_b > 0) {
		eta = (double)bytes / measured_b;
		if (measured_m > 0 && (double)messages / measured_m > eta)
			eta = (double)messages / measured_m;
		source = "measured";
	} else if (budget_eta(loads, nloads) > 0) {
		eta = budget_eta(loads, nloads);
		source = "budget";
	}
	json_object_set_new(out, "migration", json_integer(migration_id));
	json_object_set_new(out, "messages", json_integer((json_int_t)messages));
	json_object_set_new(out, "bytes", json_integer((json_int_t)bytes));
	json_object_set_new(out, "rate_bytes_per_s",
	                    source != NULL && eta > 0 ? json_real((double)bytes / eta)
	                                              : json_null());
	json_object_set_new(out, "rate_messages_per_s",
	                    source != NULL && eta > 0 ? json_real((double)messages / eta)
	                                              : json_null());
	json_object_set_new(out, "rate_source", source != NULL ? json_string(source) : json_null());
	json_object_set_new(out, "eta_seconds",
	                    source != NULL ? json_integer((json_int_t)(eta + 0.5)) : json_null());
	code = INSPECT_OK;
out:
	free(todo);
	if (code_r != NULL)
		*code_r = code;
	return out;
}
