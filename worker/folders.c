/* The account's folders: listed on both sides, mapped (exclusions, names,
 * twins), missing destination folders created; a folder that cannot be had
 * is recorded as failed and the account goes on. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Records that a folder failed (the command and the server's words in why)
 * and lets the account go on with its other folders.  Returns 0, or <0 when
 * the store could not record it (the run then fails or stops). */
int folder_failed(struct folder_ctx *fc, const char *src_name, const char *dst_name,
                  const char *why)
{
	struct account_run *run = fc->run;
	char error[STORE_ERRLEN] = "";
	char shown[256];
	size_t len;
	int ret;

	printable(src_name, shown, sizeof(shown));
	log_warn("account %" PRId64 " folder %s failed, the account goes on: %s", run->acct->id,
	         shown, why);
	ret = store_folder_error(fc->st, run->acct->id, run->epoch, src_name, dst_name, why, error,
	                         sizeof(error));
	if (ret == STORE_LEASE_LOST) {
		run_fail(run, SYNC_LEASE_LOST, error);
		return ret;
	}
	if (ret < 0) {
		run_fail(run, SYNC_FAILED, error);
		return ret;
	}
	pthread_mutex_lock(&run->lock);
	run->stats.folders_failed++;
	len = strlen(run->stats.folder_errors);
	if (len + 8 < sizeof(run->stats.folder_errors))
		snprintf(run->stats.folder_errors + len, sizeof(run->stats.folder_errors) - len,
		         "%s%s: %s", len > 0 ? "; " : "", shown, why);
	pthread_mutex_unlock(&run->lock);
	return 0;
}

/* Lists and maps folders, creating missing destination folders; a folder the
 * destination will not create is recorded as failed and left out.  0, 1 when
 * asked to stop, or <0. */
int folders_prepare(struct folder_ctx *fc)
{
	struct account_run *run = fc->run;
	const struct store_account *acct = run->acct;
	int ret;

	/* Again after a server asked to slow down: start from nothing. */
	if (run->dst_names != NULL)
		for (size_t i = 0; i < run->nsrc; i++)
			free(run->dst_names[i]);
	free(run->dst_names);
	run->dst_names = NULL;
	imap_folders_free(&run->src_folders, run->nsrc);
	imap_folders_free(&run->dst_folders, run->ndst);
	run->nsrc = run->ndst = 0;
	ret = imap_folders_list(fc->src, acct->src.prefix, &run->src_folders, &run->nsrc, fc->err,
	                        sizeof(fc->err));
	if (ret == 0)
		ret = imap_folders_list(fc->dst, acct->dst.prefix, &run->dst_folders, &run->ndst,
		                        fc->err, sizeof(fc->err));
	if (ret < 0)
		return ret;
	fc_alive(fc);
	if (run->cfg->max_folders > 0 && run->nsrc > (size_t)run->cfg->max_folders) {
		snprintf(fc->err, sizeof(fc->err),
		         "the source lists %zu folders, more than the %d per account this worker"
		         " accepts (worker option --max-folders)",
		         run->nsrc, run->cfg->max_folders);
		return FOLDERS_TOO_MANY;
	}
	run->src_side.delimiter = run->nsrc > 0 ? run->src_folders[0].delimiter : '/';
	run->src_side.prefix = acct->src.prefix;
	run->dst_side.delimiter = run->ndst > 0 ? run->dst_folders[0].delimiter : '/';
	run->dst_side.prefix = acct->dst.prefix;
	run->dst_names = calloc(run->nsrc + 1, sizeof(*run->dst_names));
	if (run->dst_names == NULL)
		return -1;
	for (size_t i = 0; i < run->nsrc; i++) {
		const struct imap_folder *f = &run->src_folders[i];
		struct store_folder row = {0};
		char error[STORE_ERRLEN] = "";
		char name[1024], shown[256];
		bool exists = false;

		if ((f->flags & IMAP_FOLDER_NOSELECT) != 0 ||
		    imap_name_excluded(f->name, f->delimiter, acct->src.exclude))
			continue;
		if (run_should_stop(run))
			return RUN_STOP;
		printable(f->name, shown, sizeof(shown));
		if (imap_name_map(f, &run->src_side, run->dst_folders, run->ndst, &run->dst_side,
		                  name, sizeof(name)) < 0) {
			if (folder_failed(
			        fc, f->name, NULL,
			        "the name cannot be mapped to the destination (too long)") < 0)
				return -1;
			continue;
		}
		/* Two source folders mapped to one destination folder ("a/b" and
		 * "a.b" across delimiters, two folders of one special use): the
		 * second would be matched by content against the first's copies
		 * and lose its own messages that look alike.  The first keeps it. */
		const char *twin = NULL;
		for (size_t k = 0; k < i && twin == NULL; k++)
			if (run->dst_names[k] != NULL && strcmp(run->dst_names[k], name) == 0)
				twin = run->src_folders[k].name;
		if (twin != NULL) {
			char why[600], twin_shown[256];
			snprintf(why, sizeof(why),
			         "maps to the destination folder of source folder %s; not copied"
			         " (the destination would merge the two)",
			         printable(twin, twin_shown, sizeof(twin_shown)));
			if (folder_failed(fc, f->name, name, why) < 0)
				return -1;
			continue;
		}
		for (size_t k = 0; k < run->ndst; k++)
			exists |= strcmp(run->dst_folders[k].name, name) == 0;
		if (!exists) {
			ret = imap_folder_create(fc->dst, name, fc->err, sizeof(fc->err));
			if (ret == IMAP_ENET || ret == IMAP_ETHROTTLED)
				return ret;
			if (ret < 0) {
				/* The destination will not have it ("NO Invalid mailbox
				 * name"): this folder only. */
				char why[600];
				snprintf(why, sizeof(why), "%s", fc->err);
				if (folder_failed(fc, f->name, name, why) < 0)
					return -1;
				continue;
			}
		}
		/* The folder's row now, so that status shows the folders as they
		 * are prepared, not only once synced. */
		fc->store_failed = false;
		ret = store_check(fc,
		                  store_folder_get(fc->st, acct->id, run->epoch, f->name, name,
		                                   &row, error, sizeof(error)),
		                  error);
		store_folder_clear(&row);
		if (ret < 0)
			return ret;
		run->dst_names[i] = strdup(name);
		if (run->dst_names[i] == NULL)
			return -1;
		log_debug("account %" PRId64 ": folder %s -> %s", acct->id, shown, name);
	}
	return 0;
}
