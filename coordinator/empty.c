/* Emptying an account's destination before a re-run (what providers'
 * migration tools offer): every message of every destination folder deleted,
 * the account's checkpoints forgotten, so the next pass copies everything
 * again, once. */
#include "inspect-private.h"

#include "log.h"
#include "store-account.h"
#include "store-proof.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long the reset holds the account's lease: a worker cannot take it
 * meanwhile, and it frees itself if this process dies. */
#define EMPTY_LEASE_S 900

/* Deletes every message of one destination folder: SELECT, \Deleted on
 * all (UID FETCH 1:* lists them), EXPUNGE.  *deleted_r counts them. */
static int folder_empty(struct imap_session *s, const char *name, uint64_t *deleted_r, char *err,
                        size_t errlen)
{
	struct imap_status st;
	struct imap_batch b = {0};
	uint32_t *uids = NULL;
	int ret;

	*deleted_r = 0;
	ret = imap_folder_open(s, name, false, &st, err, errlen);
	if (ret < 0 || st.messages == 0)
		return ret;
	ret = imap_fetch_sizes(s, 1, UINT32_MAX, &b, err, errlen);
	if (ret < 0)
		return ret;
	uids = calloc(b.count + 1, sizeof(*uids));
	if (uids == NULL) {
		imap_batch_free(&b);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < b.count; i++)
		uids[i] = b.msgs[i].uid;
	if (b.count > 0)
		ret = imap_store_flags(s, uids, b.count, "\\Deleted", err, errlen);
	if (ret == 0)
		ret = imap_folder_expunge(s, err, errlen);
	if (ret == 0)
		*deleted_r = b.count;
	free(uids);
	imap_batch_free(&b);
	return ret;
}

json_t *inspect_empty_destination(struct store *st, const struct secret_key *key,
                                  int64_t migration_id, int64_t account_id, const char *confirm,
                                  const char *actor, char *err, size_t errlen,
                                  enum inspect_code *code_r)
{
	struct store_account acct = {0};
	struct account_creds creds = {0};
	struct inspect_side dst = {0};
	struct imap_folder *folders = NULL;
	size_t nfolders = 0;
	uint64_t deleted = 0;
	char error[STORE_ERRLEN] = "", owner[96], reason[1200], ierr[512] = "";
	enum inspect_code code = INSPECT_FAILED;
	json_t *out = NULL, *list = NULL;
	int ret;

	if (store_account_get(st, account_id, &acct, error, sizeof(error)) < 0 ||
	    acct.migration_id != migration_id) {
		snprintf(err, errlen, "no account %" PRId64 " in migration %" PRId64, account_id,
		         migration_id);
		code = INSPECT_NOT_FOUND;
		goto out;
	}
	/* The destination login typed back: the operator names the mailbox
	 * whose mail goes, not just a number. */
	if (confirm == NULL || strcmp(confirm, acct.dst_login) != 0) {
		snprintf(err, errlen,
		         "emptying the destination deletes every message of %s: confirm with the"
		         " destination login",
		         acct.dst_login);
		code = INSPECT_CONFIRMATION;
		goto out;
	}
	if (account_creds_open(&acct, key, NULL, &creds, err, errlen) < 0)
		goto out;
	snprintf(owner, sizeof(owner), "empty-destination:%s", actor != NULL ? actor : "operator");
	/* Checkpoints first: if the deletion stops half way, the next pass finds
	 * a destination holding some of the mail and no checkpoint, and matches
	 * by content before copying (nothing twice). */
	ret = store_destination_reset(st, account_id, owner, EMPTY_LEASE_S, error, sizeof(error));
	if (ret < 0) {
		snprintf(err, errlen, "%s", error);
		code = ret == STORE_BUSY_RUNNING ? INSPECT_CONFLICT : INSPECT_FAILED;
		goto out;
	}
	if (inspect_side_open(&dst, st, acct.dst.id, &creds.dst, "destination", ierr,
	                      sizeof(ierr)) < 0 ||
	    imap_folders_list(dst.session, acct.dst.prefix, &folders, &nfolders, ierr,
	                      sizeof(ierr)) < 0)
		goto done;
	list = json_array();
	for (size_t i = 0; i < nfolders; i++) {
		uint64_t n = 0;
		char shown[1024];

		if ((folders[i].flags & IMAP_FOLDER_NOSELECT) != 0)
			continue;
		inspect_folder_shown(folders[i].name, shown, sizeof(shown));
		ret = folder_empty(dst.session, folders[i].name, &n, ierr, sizeof(ierr));
		deleted += n;
		json_t *jf = json_object();
		json_object_set_new(jf, "name", json_string(shown));
		json_object_set_new(jf, "deleted", json_integer((json_int_t)n));
		json_array_append_new(list, jf);
		if (ret < 0)
			break;
	}
done:
	if (ierr[0] != '\0')
		snprintf(reason, sizeof(reason),
		         "destination emptied in part by %s (%" PRIu64 " messages deleted): %s",
		         actor, deleted, ierr);
	else
		snprintf(reason, sizeof(reason),
		         "destination emptied by %s: %" PRIu64 " messages deleted in %zu folders",
		         actor, deleted, list != NULL ? json_array_size(list) : (size_t)0);
	if (store_destination_reset_end(st, account_id, owner, reason, error, sizeof(error)) < 0)
		log_error("account %" PRId64 ": %s", account_id, error);
	log_info("account %" PRId64 ": %s", account_id, reason);
	if (ierr[0] != '\0') {
		snprintf(err, errlen, "%s", ierr);
		json_decref(list);
		goto out;
	}
	out = json_object();
	json_object_set_new(out, "account", json_string(acct.src_login));
	json_object_set_new(out, "account_id", json_integer(account_id));
	json_object_set_new(out, "destination_login", json_string(acct.dst_login));
	json_object_set_new(out, "folders", list);
	json_object_set_new(out, "deleted", json_integer((json_int_t)deleted));
	code = INSPECT_OK;
out:
	imap_folders_free(&folders, nfolders);
	inspect_side_close(&dst);
	account_creds_close(&creds);
	store_account_clear(&acct);
	if (code_r != NULL)
		*code_r = code;
	return out;
}
