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
static int folder_count(struct imap_session *s, const char *name, uint64_t *messages_r,
                        uint64_t *bytes_r, char *err, size_t errlen)
{
	struct imap_status st;
	int ret;

	*messages_r = *bytes_r = 0;
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
		ret = imap_fetch_sizes(s, (uint32_t)first, (uint32_t)last, &b, err, errlen);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < b.count; i++)
			*bytes_r += b.msgs[i].size;
		*messages_r += b.count;
		imap_batch_free(&b);
		if (last == UINT32_MAX)
			break;
	}
	return 0;
}

/* One account: {"account", "account_id", "folders", "messages", "bytes"}
 * or with "error". */
static json_t *account_estimate(struct store *st, const struct secret_key *key, int64_t id)
{
	struct store_account acct = {0};
	struct account_creds creds = {0};
	struct inspect_side src = {0};
	struct imap_folder *folders = NULL;
	struct imap_status_req *reqs = NULL;
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
		bool by_status = reqs[i].ret == 0 && reqs[i].st.has_size;
		json_object_set_new(jf, "counted_by",
		                    json_string(by_status ? "STATUS SIZE" : "FETCH RFC822.SIZE"));
		if (by_status) {
			m = reqs[i].st.messages;
			b = reqs[i].st.size;
		} else {
			ret = folder_count(src.session, f->name, &m, &b, ferr, sizeof(ferr));
		}
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

/* The servers' own budget, fleet-wide (0: none): the smallest among the
 * servers named. */
static int budget(struct store *st, int64_t migration_id, double *bytes_r, double *messages_r,
                  char *err, size_t errlen)
{
	int64_t *ids = NULL;
	size_t n = 0;

	*bytes_r = *messages_r = 0;
	/* Every account's servers are the migration's: read one account's. */
	if (store_migration_accounts(st, migration_id, &ids, &n, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n && i < 1; i++) {
		struct store_account acct = {0};
		if (store_account_get(st, ids[i], &acct, err, errlen) < 0) {
			free(ids);
			return -1;
		}
		const struct store_server *sv[2] = {&acct.src, &acct.dst};
		for (int k = 0; k < 2; k++) {
			if (sv[k]->rate_bytes > 0 &&
			    (*bytes_r == 0 || (double)sv[k]->rate_bytes < *bytes_r))
				*bytes_r = (double)sv[k]->rate_bytes;
			if (sv[k]->rate_messages > 0 &&
			    (*messages_r == 0 || sv[k]->rate_messages < *messages_r))
				*messages_r = sv[k]->rate_messages;
		}
		store_account_clear(&acct);
	}
	free(ids);
	return 0;
}

json_t *inspect_estimate(struct store *st, const struct secret_key *key, int64_t migration_id,
                         const int64_t *ids, size_t count, char *err, size_t errlen,
                         enum inspect_code *code_r)
{
	int64_t *todo = NULL;
	size_t n = 0;
	uint64_t messages = 0, bytes = 0;
	double measured_b, measured_m, budget_b, budget_m, rate_b = 0, rate_m = 0;
	const char *source = NULL;
	json_t *out = NULL, *accounts;
	enum inspect_code code = INSPECT_FAILED;

	if (inspect_ids(st, migration_id, ids, count, &todo, &n, err, errlen) < 0 ||
	    store_rate_measured(st, migration_id, &measured_b, &measured_m, err, errlen) < 0 ||
	    budget(st, migration_id, &budget_b, &budget_m, err, errlen) < 0)
		goto out;
	out = json_object();
	accounts = json_array();
	json_object_set_new(out, "accounts", accounts);
	for (size_t i = 0; i < n; i++) {
		json_t *a = account_estimate(st, key, todo[i]);
		messages += (uint64_t)json_integer_value(json_object_get(a, "messages"));
		bytes += (uint64_t)json_integer_value(json_object_get(a, "bytes"));
		json_array_append_new(accounts, a);
	}
	/* The measured rate includes every budget it ran under; without one,
	 * the budgets alone bound it (and nothing is known without either). */
	if (measured_b > 0) {
		rate_b = measured_b;
		rate_m = measured_m;
		source = "measured";
	}
	if (budget_b > 0 && (rate_b == 0 || budget_b < rate_b)) {
		rate_b = budget_b;
		source = "budget";
	}
	if (budget_m > 0 && (rate_m == 0 || budget_m < rate_m)) {
		rate_m = budget_m;
		source = source != NULL ? source : "budget";
	}
	json_object_set_new(out, "migration", json_integer(migration_id));
	json_object_set_new(out, "messages", json_integer((json_int_t)messages));
	json_object_set_new(out, "bytes", json_integer((json_int_t)bytes));
	json_object_set_new(out, "rate_bytes_per_s", rate_b > 0 ? json_real(rate_b) : json_null());
	json_object_set_new(out, "rate_messages_per_s",
	                    rate_m > 0 ? json_real(rate_m) : json_null());
	json_object_set_new(out, "rate_source", source != NULL ? json_string(source) : json_null());
	if (rate_b > 0 || rate_m > 0) {
		double eta = 0;
		if (rate_b > 0)
			eta = (double)bytes / rate_b;
		if (rate_m > 0 && (double)messages / rate_m > eta)
			eta = (double)messages / rate_m;
		json_object_set_new(out, "eta_seconds", json_integer((json_int_t)(eta + 0.5)));
	} else {
		json_object_set_new(out, "eta_seconds", json_null());
	}
	code = INSPECT_OK;
out:
	free(todo);
	if (code_r != NULL)
		*code_r = code;
	return out;
}
