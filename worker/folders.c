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

/* The destination name of a source folder renamed by the operator's rules:
 * 1 renamed (name holds it), 0 no rule matches, -1 the rule gives no valid
 * name. */
static int folder_rename(const struct account_run *run, const struct imap_folder *f, char *name,
                         size_t namelen)
{
	char path[1024], renamed[1024];
	int ret;

	if (run->rules.n == 0 ||
	    imap_rules_src_path(f->name, &run->src_side, path, sizeof(path)) < 0)
		return 0;
	ret = imap_rules_apply(&run->rules, path, renamed, sizeof(renamed));
	if (ret == 1 && imap_rules_dst_name(renamed, &run->dst_side, name, namelen) < 0)
		return -1;
	return ret;
}

static int folders_map(struct folder_ctx *fc, bool *by_rule);

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
	folders_state_free(run);
	imap_folders_free(&run->src_folders, run->nsrc);
	imap_folders_free(&run->dst_folders, run->ndst);
	run->nsrc = run->ndst = 0;
	imap_rules_free(&run->rules);
	run->merged = false;
	{
		const char *own = acct->folder_rules != NULL ? acct->folder_rules : "";
		const char *prof = acct->src.folder_rules != NULL ? acct->src.folder_rules : "";
		size_t n = strlen(own) + strlen(prof) + 2;
		char *text = malloc(n), why[256];
		if (text == NULL)
			return -1;
		snprintf(text, n, "%s%s%s", own,
		         own[0] != '\0' && own[strlen(own) - 1] != '\n' ? "\n" : "", prof);
		ret = imap_rules_parse(text, &run->rules, why, sizeof(why));
		free(text);
		if (ret < 0) {
			snprintf(fc->err, sizeof(fc->err), "the account's folder rules: %s", why);
			return -1;
		}
	}
	ret = src_list(fc, &run->src_folders, &run->nsrc);
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
	run->rows = calloc(run->nsrc + 1, sizeof(*run->rows));
	run->src_st = calloc(run->nsrc + 1, sizeof(*run->src_st));
	run->src_known = calloc(run->nsrc + 1, sizeof(*run->src_known));
	run->dst_st = calloc(run->nsrc + 1, sizeof(*run->dst_st));
	run->dst_known = calloc(run->nsrc + 1, sizeof(*run->dst_known));
	run->todo = calloc(run->nsrc + 1, sizeof(*run->todo));
	if (run->dst_names == NULL || run->rows == NULL || run->src_st == NULL ||
	    run->src_known == NULL || run->dst_st == NULL || run->dst_known == NULL ||
	    run->todo == NULL)
		return -1;
	bool *by_rule = calloc(run->nsrc + 1, sizeof(*by_rule));
	if (by_rule == NULL)
		return -1;
	ret = folders_map(fc, by_rule);
	free(by_rule);
	return ret;
}

/* Maps each source folder to its destination name: the operator's rules
 * first, then imap_name_map.  by_rule[i]: folder i was renamed by a rule.
 * 0, RUN_STOP, or <0. */
static int folders_map(struct folder_ctx *fc, bool *by_rule)
{
	struct account_run *run = fc->run;
	const struct store_account *acct = run->acct;
	int ret;

	for (size_t i = 0; i < run->nsrc; i++) {
		const struct imap_folder *f = &run->src_folders[i];
		char error[STORE_ERRLEN] = "";
		char name[1024], shown[256];
		bool exists = false;

		if ((f->flags & IMAP_FOLDER_NOSELECT) != 0 ||
		    imap_name_excluded(f->name, f->delimiter, acct->src.exclude))
			continue;
		if (run_should_stop(run))
			return RUN_STOP;
		printable(f->name, shown, sizeof(shown));
		ret = folder_rename(run, f, name, sizeof(name));
		if (ret < 0) {
			char why[600];
			snprintf(why, sizeof(why),
			         "the folder rule that matches it gives no valid destination name"
			         " (empty, an empty level, or too long)");
			if (folder_failed(fc, f->name, NULL, why) < 0)
				return -1;
			continue;
		}
		by_rule[i] = ret == 1;
		if (!by_rule[i] && imap_name_map(f, &run->src_side, run->dst_folders, run->ndst,
		                                 &run->dst_side, name, sizeof(name)) < 0) {
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
		size_t twin_index = 0;
		for (size_t k = 0; k < i && twin == NULL; k++)
			if (run->dst_names[k] != NULL && strcmp(run->dst_names[k], name) == 0) {
				twin = run->src_folders[k].name;
				twin_index = k;
			}
		/* Unless a rule asked for it: a merge. */
		if (twin != NULL && (by_rule[i] || by_rule[twin_index])) {
			char twin_shown[256];
			log_info("account %" PRId64 ": folders %s and %s merged into %s by a folder"
			         " rule",
			         acct->id, printable(twin, twin_shown, sizeof(twin_shown)), shown,
			         name);
			run->merged = true;
			twin = NULL;
		}
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
		                                   &run->rows[i], error, sizeof(error)),
		                  error);
		if (ret < 0)
			return ret;
		run->dst_names[i] = strdup(name);
		if (run->dst_names[i] == NULL)
			return -1;
		run->todo[i] = true;
		log_debug("account %" PRId64 ": folder %s -> %s", acct->id, shown, name);
	}
	return 0;
}

void folders_state_free(struct account_run *run)
{
	if (run->rows != NULL)
		for (size_t i = 0; i < run->nsrc; i++)
			store_folder_clear(&run->rows[i]);
	free(run->rows);
	free(run->src_st);
	free(run->src_known);
	free(run->dst_st);
	free(run->dst_known);
	free(run->todo);
	free(run->order);
	run->order = NULL;
	run->lane_folder = NULL;
	run->rows = NULL;
	run->src_st = NULL;
	run->src_known = NULL;
	run->dst_st = NULL;
	run->dst_known = NULL;
	run->todo = NULL;
}

/* qsort context of folders_order (qsort has none). */
static _Thread_local const struct account_run *order_run;

/* Messages of folder i as the triage saw them (0: unknown). */
static uint32_t order_size(const struct account_run *run, size_t i)
{
	return run->src_known != NULL && run->src_known[i] ? run->src_st[i].messages : 0;
}

static int order_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	uint32_t sx = order_size(order_run, x), sy = order_size(order_run, y);

	if (sx != sy)
		return sx > sy ? -1 : 1;
	return x < y ? -1 : x > y;
}

void folders_order(struct account_run *run)
{
	run->order = calloc(run->nsrc + 1, sizeof(*run->order));
	if (run->order == NULL)
		return; /* the listing's order then */
	for (size_t i = 0; i < run->nsrc; i++)
		run->order[i] = i;
	/* Merged folders go one after the other in the listing's order. */
	if (!run->merged) {
		order_run = run;
		qsort(run->order, run->nsrc, sizeof(*run->order), order_cmp);
		order_run = NULL;
	}
	for (size_t k = 0; k < run->nsrc && run->lane_folder == NULL; k++) {
		size_t i = run->order[k];
		if (run->dst_names[i] != NULL && (run->todo == NULL || run->todo[i]))
			run->lane_folder = run->src_folders[i].name;
	}
}

/* Whether a folder is unchanged since its checkpoint: the same test
 * sync_folder makes (nothing to copy, no flag changed, no intent open, the
 * destination folder the same), on STATUS alone.  Without CONDSTORE a flag
 * change cannot be seen this way, so such a folder is never unchanged. */
static bool folder_unchanged(const struct store_folder *cp, const struct imap_status *src)
{
	return !cp->rematch && cp->intent_dst_uidnext == 0 && cp->lane_lo == 0 &&
	       cp->src_uidvalidity != 0 && cp->src_uidvalidity == src->uidvalidity &&
	       cp->src_uidnext == src->uidnext && cp->src_messages == src->messages &&
	       src->highestmodseq != 0 && cp->highest_modseq == src->highestmodseq;
}

void folders_triage(struct folder_ctx *fc)
{
	struct account_run *run = fc->run;
	struct imap_status_req *reqs = calloc(run->nsrc + 1, sizeof(*reqs));
	size_t *at = calloc(run->nsrc + 1, sizeof(*at));
	size_t n = 0, unchanged = 0;
	int64_t t0 = monotonic_ms();
	int ret;

	if (reqs == NULL || at == NULL)
		goto out;
	for (size_t i = 0; i < run->nsrc; i++) {
		if (!run->todo[i])
			continue;
		reqs[n].name = run->src_folders[i].name;
		at[n++] = i;
	}
	ret = n > 0 ? src_status_many(fc, reqs, n) : 0;
	if (ret < 0)
		goto out;
	fc_alive(fc);
	/* The numbers serve the folder threads too.  The destination is asked
	 * about the folders with a checkpoint there (its UIDVALIDITY is
	 * checked before anything is trusted). */
	size_t m = 0;
	for (size_t k = 0; k < n; k++) {
		size_t i = at[k];
		if (reqs[k].ret != 0)
			continue;
		run->src_st[i] = reqs[k].st;
		run->src_known[i] = true;
		if (run->rows[i].dst_uidvalidity == 0 ||
		    run->rows[i].src_uidvalidity != reqs[k].st.uidvalidity)
			continue;
		reqs[m].name = run->dst_names[i];
		at[m++] = i;
	}
	ret = m > 0 ? imap_status_many(fc->dst, reqs, m, fc->err, sizeof(fc->err)) : 0;
	if (ret < 0)
		goto out;
	for (size_t k = 0; k < m; k++) {
		size_t i = at[k];
		if (reqs[k].ret != 0)
			continue;
		run->dst_st[i] = reqs[k].st;
		run->dst_known[i] = true;
		if (reqs[k].st.uidvalidity != run->rows[i].dst_uidvalidity ||
		    !folder_unchanged(&run->rows[i], &run->src_st[i]))
			continue;
		run->todo[i] = false;
		unchanged++;
	}
	pthread_mutex_lock(&run->lock);
	run->stats.folders_unchanged += unchanged;
	pthread_mutex_unlock(&run->lock);
out:
	/* A failed STATUS leaves the folders to their threads, which ask again
	 * and report it. */
	phase_add(fc, PHASE_STATUS, t0, 0);
	free(reqs);
	free(at);
}
