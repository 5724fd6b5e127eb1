/* The crash-safe batch protocol of docs/DESIGN.md section 2: a batch is
 * fetched (spooled through a file when one message is over the byte bound),
 * then intent -> APPEND -> commit (copy_batch); an open intent is re-matched
 * after a crash (recover_intent); a batch that broke a bound of lib/imap is
 * retried message by message (copy_one_by_one).  copy_new walks the new UIDs
 * in windows and cuts them into batches. */
#include "sync-private.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Partial fetch size for messages spooled through a file. */
#define SPOOL_CHUNK (1024 * 1024)

/* A spool file in the configured temporary directory, the only place the
 * worker writes to (a read-only root filesystem elsewhere).  Unnamed where
 * the filesystem can (O_TMPFILE), else created and unlinked at once: no
 * name is left behind by a crash.  tmpfile() would ignore the setting. */
static FILE *spool_open(const char *dir)
{
	char path[4096];
	FILE *f;
	int fd, n;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		n = snprintf(path, sizeof(path), "%s/mailshift-spool.XXXXXX", dir);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w+");
	if (f == NULL)
		close(fd);
	return f;
}

/* Fetches the bodies of a batch.  With spool, the batch is one message too
 * large for the batch byte limit: it goes through a temporary file in
 * bounded chunks instead of memory (*spool_r holds the file; close it). */
int fetch_batch(struct folder_ctx *fc, struct imap_session *session, const uint32_t *uids,
                size_t count, bool spool, struct imap_batch *batch_r, FILE **spool_r)
{
	struct imap_batch b = {0};
	FILE *f;
	int ret;

	*spool_r = NULL;
	if (!spool)
		return imap_fetch_bodies(session, uids, count, batch_r, fc->err, sizeof(fc->err));
	f = spool_open(fc->run->cfg->tmpdir);
	b.msgs = calloc(1, sizeof(*b.msgs));
	if (f == NULL || b.msgs == NULL) {
		snprintf(fc->err, sizeof(fc->err), "cannot create a spool file in %s: %s",
		         fc->run->cfg->tmpdir, strerror(errno));
		if (f != NULL)
			fclose(f);
		free(b.msgs);
		return -1;
	}
	ret = imap_fetch_body_to_file(session, uids[0], fileno(f), SPOOL_CHUNK, &b.msgs[0], fc->err,
	                              sizeof(fc->err));
	if (ret < 0) {
		fclose(f);
		free(b.msgs);
		return ret;
	}
	b.count = ret == 0 ? 1 : 0; /* 1: the message is gone */
	b.bytes = b.count > 0 ? b.msgs[0].body_len : 0;
	*batch_r = b;
	*spool_r = f;
	return 0;
}

/* After an empty UID window: the lowest UID >= from in the folder selected on
 * session, which held `exists` messages when opened; 0 when none.  A binary
 * search over sequence numbers (about log2(exists) FETCH n (UID) round trips),
 * so that a sparse or absurd UID range (UIDNEXT 4294967295) costs by the
 * messages the server holds, not by the UIDs it claims.  When a probe finds no
 * message (the folder shrank meanwhile) the answer is `from` itself: the walk
 * then goes on window by window, which is always correct. */
static int uid_seek(struct folder_ctx *fc, struct imap_session *session, uint32_t exists,
                    uint32_t from, uint32_t *uid_r)
{
	uint32_t lo = 1, hi = exists, uid = 0;
	int ret;

	*uid_r = from;
	if (exists == 0) {
		*uid_r = 0;
		return 0;
	}
	ret = imap_fetch_uid_at(session, exists, &uid, fc->err, sizeof(fc->err));
	if (ret != 0)
		return ret < 0 ? ret : 0;
	fc_alive(fc);
	if (uid < from) {
		*uid_r = 0;
		return 0;
	}
	/* Invariant: uid(hi) >= from. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (run_should_stop(fc->run))
			return RUN_STOP;
		ret = imap_fetch_uid_at(session, mid, &uid, fc->err, sizeof(fc->err));
		if (ret != 0)
			return ret < 0 ? ret : 0;
		fc_alive(fc);
		if (uid >= from)
			hi = mid;
		else
			lo = mid + 1;
	}
	ret = imap_fetch_uid_at(session, hi, &uid, fc->err, sizeof(fc->err));
	if (ret != 0)
		return ret < 0 ? ret : 0;
	*uid_r = uid >= from ? uid : from;
	return 0;
}

/* Where the next UID window starts after the window ending at hi came back
 * empty: hi + 1, or further when the rest of the range up to last is larger
 * than a window (uid_seek); last + 1 when nothing is left.  0 or <0, or 1 to
 * stop. */
int window_next(struct folder_ctx *fc, struct imap_session *session, uint32_t exists, uint32_t hi,
                uint32_t last, uint64_t *next_r)
{
	uint32_t uid;
	int ret;

	*next_r = (uint64_t)hi + 1;
	if (hi >= last || last - hi <= fc->run->cfg->window)
		return 0;
	ret = uid_seek(fc, session, exists, hi + 1, &uid);
	if (ret != 0)
		return ret;
	*next_r = uid == 0 || uid > last ? (uint64_t)last + 1 : uid;
	return 0;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct store_uidpair *x = a, *y = b;

	return x->src < y->src ? -1 : x->src > y->src;
}

/* Copies one batch of source UIDs (ascending).  With idx, messages found in
 * the destination by content are mapped instead of appended.  With
 * keep_intent, the folder's open intent already covers this batch (recovery)
 * and is not rewritten: its UIDNEXT stays the lower bound for a later
 * re-match. */
static int copy_batch(struct folder_ctx *fc, struct store_folder *cp, const uint32_t *uids,
                      size_t count, bool spool, struct dst_index *idx, bool keep_intent,
                      struct imap_batch *given, const struct store_intent *next, bool *next_written)
{
	struct account_run *run = fc->run;
	struct imap_batch bodies = {0};
	struct imap_msg *to_append = NULL;
	struct imap_append_result *results = NULL;
	struct store_uidpair *pairs = NULL;
	struct store_msg_error *errors = NULL;
	uint32_t *append_uids = NULL;
	struct store_uid_note *drops = NULL;
	size_t nappend = 0, npairs = 0, nerrors = 0, appended = 0, matched = 0, ndrops = 0;
	uint64_t bytes = 0;
	FILE *spool_file = NULL;
	char error[STORE_ERRLEN] = "";
	int ret;

	int64_t t0 = monotonic_ms();
	if (given != NULL) {
		/* Fetched ahead (prefetch_start): ours now. */
		bodies = *given;
		memset(given, 0, sizeof(*given));
		ret = 0;
	} else {
		ret = phase_add(fc, PHASE_FETCH, t0,
		                src_fetch(fc, uids, count, spool, &bodies, &spool_file));
	}
	if (ret < 0)
		return ret;
	fc_alive(fc);
	if (idx != NULL) {
		ret = dst_index_refresh(fc, cp->dst_name, idx);
		if (ret != 0)
			goto out;
	}
	to_append = calloc(bodies.count + 1, sizeof(*to_append));
	results = calloc(bodies.count + 1, sizeof(*results));
	pairs = calloc(bodies.count + 1, sizeof(*pairs));
	errors = calloc(bodies.count + 1, sizeof(*errors));
	append_uids = calloc(bodies.count + 1, sizeof(*append_uids));
	drops = calloc(bodies.count + 1, sizeof(*drops));
	if (to_append == NULL || results == NULL || pairs == NULL || errors == NULL ||
	    append_uids == NULL || drops == NULL) {
		snprintf(fc->err, sizeof(fc->err), "out of memory");
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < bodies.count; i++) {
		const struct imap_msg *m = &bodies.msgs[i];
		uint32_t dst_uid = 0;

		if (idx != NULL) {
			unsigned char h[HASH_LEN];
			if (hash_msg(m, h) < 0) {
				snprintf(fc->err, sizeof(fc->err), "spool file read failed");
				ret = -1;
				goto out;
			}
			dst_uid = dst_index_take(idx, h);
		}
		if (dst_uid != 0) {
			pairs[npairs].src = m->uid;
			pairs[npairs++].dst = dst_uid;
			matched++;
			continue;
		}
		append_uids[nappend] = m->uid;
		to_append[nappend++] = *m;
	}
	if (nappend > 0) {
		/* Appending to the selected folder lets the server keep it open:
		 * Dovecot otherwise opens and syncs the folder for every APPEND,
		 * which grows with the folder's size. */
		const char *sel = imap_session_selected(fc->dst);
		if (sel == NULL || strcmp(sel, cp->dst_name) != 0) {
			struct imap_status sel_st;
			t0 = monotonic_ms();
			ret = phase_add(fc, PHASE_STATUS, t0,
			                imap_folder_open(fc->dst, cp->dst_name, false, &sel_st,
			                                 fc->err, sizeof(fc->err)));
			if (ret < 0)
				goto out;
			/* SELECT's UIDNEXT serves as the intent's bound. */
			if (fc->dst_uid_floor == 0)
				fc->dst_uid_floor = sel_st.uidnext;
		}
		if (!keep_intent) {
			struct imap_status dst_st = {.uidnext = fc->dst_uid_floor};
			t0 = monotonic_ms();
			if (dst_st.uidnext == 0)
				ret = phase_add(fc, PHASE_STATUS, t0,
				                imap_folder_status(fc->dst, cp->dst_name, &dst_st,
				                                   fc->err, sizeof(fc->err)));
			if (ret < 0)
				goto out;
			t0 = monotonic_ms();
			ret = store_intent_begin(fc->st, run->acct->id, run->epoch, cp->id,
			                         cp->lane, dst_st.uidnext, append_uids, nappend,
			                         error, sizeof(error));
			if (phase_add(fc, PHASE_STORE, t0, store_check(fc, ret, error)) < 0)
				goto out;
		}
		t0 = monotonic_ms();
		/* Unknown again until this batch's APPENDUIDs say otherwise. */
		fc->dst_uid_floor = 0;
		ret = phase_add(fc, PHASE_APPEND, t0,
		                imap_append_batch(fc->dst, cp->dst_name, to_append, nappend,
		                                  results, fc->err, sizeof(fc->err)));
		if (ret < 0)
			goto out;
		fc_alive(fc);
		/* A message the server would not take *now* is not refused: leave
		 * the intent open; the retry re-matches what went in and appends
		 * the rest. */
		for (size_t i = 0; i < nappend; i++) {
			if (results[i].throttled) {
				snprintf(fc->err, sizeof(fc->err), "%s", results[i].error);
				fc->throttled_dst = true;
				ret = IMAP_ETHROTTLED;
				goto out;
			}
		}
		/* A refused message that carries keywords: again with those the
		 * destination takes (worker/keywords.c), under the same open
		 * intent, so a crash here is recovered like any APPEND. */
		for (size_t i = 0; i < nappend; i++) {
			if (results[i].error[0] == '\0')
				continue;
			ret = keywords_fallback(fc, cp->dst_name, &to_append[i], &results[i],
			                        &drops[ndrops]);
			if (ret < 0)
				goto out;
			ndrops += drops[ndrops].keywords != NULL;
		}
		if (ndrops > 0) {
			t0 = monotonic_ms();
			ret = store_keywords_dropped_put(fc->st, run->acct->id, run->epoch, cp->id,
			                                 drops, ndrops, error, sizeof(error));
			if (phase_add(fc, PHASE_STORE, t0, store_check(fc, ret, error)) < 0)
				goto out;
		}
		uint32_t top = 0;
		bool all_known = true;
		for (size_t i = 0; i < nappend; i++) {
			if (results[i].error[0] == '\0' && results[i].dst_uid == 0)
				all_known = false;
			if (results[i].dst_uid > top)
				top = results[i].dst_uid;
		}
		if (all_known && top != 0 && top < UINT32_MAX)
			fc->dst_uid_floor = top + 1;
		for (size_t i = 0; i < nappend; i++) {
			if (results[i].error[0] != '\0') {
				log_warn("account %" PRId64 " folder %s uid %" PRIu32 ": %s",
				         run->acct->id, cp->src_name, to_append[i].uid,
				         results[i].error);
				errors[nerrors].src_uid = to_append[i].uid;
				errors[nerrors++].error = results[i].error;
				continue;
			}
			bytes += to_append[i].body_len;
			appended++;
			/* Without UIDPLUS the destination UID is unknown: the message
			 * is copied but its flags cannot be followed later. */
			if (results[i].dst_uid != 0) {
				pairs[npairs].src = to_append[i].uid;
				pairs[npairs++].dst = results[i].dst_uid;
				if (idx != NULL && dst_index_own(idx, &results[i].dst_uid, 1) < 0)
					idx->no_refresh = true;
			} else if (idx != NULL) {
				idx->no_refresh = true;
			}
		}
	}
	qsort(pairs, npairs, sizeof(*pairs), pair_cmp);
	/* The next batch's intent rides on this commit when its bound is known
	 * (this batch's APPENDUIDs): one PostgreSQL commit per batch, not two. */
	struct store_intent next_intent = {0};
	bool with_next = next != NULL && next->count > 0 && fc->dst_uid_floor != 0;
	if (with_next) {
		next_intent = *next;
		next_intent.dst_uidnext = fc->dst_uid_floor;
	}
	t0 = monotonic_ms();
	ret = store_batch_commit(fc->st, run->acct->id, run->epoch, cp->id, cp->lane, pairs, npairs,
	                         errors, nerrors, uids[count - 1], appended, bytes, matched,
	                         with_next ? &next_intent : NULL, error, sizeof(error));
	if (phase_add(fc, PHASE_STORE, t0, store_check(fc, ret, error)) < 0)
		goto out;
	if (next_written != NULL)
		*next_written = with_next;
	cp->high_water = uids[count - 1];
	pthread_mutex_lock(&run->lock);
	run->stats.messages += appended;
	run->stats.bytes += bytes;
	run->stats.errors += nerrors;
	run->stats.matched += matched;
	struct sync_stats totals = run->stats;
	pthread_mutex_unlock(&run->lock);
	if (run->cfg->progress != NULL)
		run->cfg->progress(run->cfg->progress_context, run->acct, run->epoch, &totals,
		                   cp->src_name);
out:
	imap_batch_free(&bodies);
	if (spool_file != NULL)
		fclose(spool_file);
	free(to_append);
	free(results);
	free(pairs);
	free(errors);
	free(append_uids);
	store_uid_notes_free(&drops, ndrops);
	return ret;
}

/* Re-matches the open intent of the folder: its batch may have been stored in
 * part or in full before the process or the connection died. */
int recover_intent(struct folder_ctx *fc, struct store_folder *cp)
{
	struct dst_index idx = {0};
	int ret;

	log_info("account %" PRId64 " folder %s: re-matching an interrupted batch of %zu"
	         " messages from destination UID %" PRIu32 "%s",
	         fc->run->acct->id, cp->src_name, cp->intent_count, cp->intent_dst_uidnext,
	         cp->lane ? " (the folder's second stream)" : "");
	ret = dst_index_build(fc, cp->dst_name, cp->intent_dst_uidnext, &idx);
	/* With a lane open the folder's other stream appended above the bound
	 * too: what the folder mapped already is not this intent's. */
	if (ret == 0 && cp->lane_lo != 0)
		ret = dst_index_claimed(fc, cp, true, &idx);
	if (ret == 0)
		/* A batch of one may be a message too large to hold: spool it. */
		ret = copy_batch(fc, cp, cp->intent_uids, cp->intent_count, cp->intent_count == 1,
		                 &idx, true, NULL, NULL, NULL);
	dst_index_free(&idx);
	return ret;
}

/* Records a message error for the next source UID alone (the high water
 * moves past it) and the folder goes on. */
static int msg_error_commit(struct folder_ctx *fc, struct store_folder *cp, uint32_t uid,
                            const char *why)
{
	struct account_run *run = fc->run;
	struct store_msg_error e = {.src_uid = uid, .error = why};
	char error[STORE_ERRLEN] = "";
	int ret;

	log_warn("account %" PRId64 " folder %s uid %" PRIu32 ": %s", run->acct->id, cp->src_name,
	         uid, why);
	ret = store_check(fc,
	                  store_batch_commit(fc->st, run->acct->id, run->epoch, cp->id, cp->lane,
	                                     NULL, 0, &e, 1, uid, 0, 0, 0, NULL, error,
	                                     sizeof(error)),
	                  error);
	if (ret < 0)
		return ret;
	cp->high_water = uid;
	pthread_mutex_lock(&run->lock);
	run->stats.errors++;
	pthread_mutex_unlock(&run->lock);
	return 0;
}

/* A message larger than the worker accepts (--max-message-mb): a message
 * error with the server's own numbers, without fetching a byte of it. */
static int too_large(struct folder_ctx *fc, struct store_folder *cp, const struct imap_msg *m)
{
	char why[256];

	snprintf(why, sizeof(why),
	         "message of %" PRIu32 " bytes (RFC822.SIZE from the source) is larger than the"
	         " largest accepted, %" PRIu64 " bytes (worker option --max-message-mb)",
	         m->size, fc->run->cfg->max_message_bytes);
	return msg_error_commit(fc, cp, m->uid, why);
}

/* After IMAP_ELIMIT the sessions are broken: new ones, the source folder
 * examined again (the destination's is selected again by copy_batch). */
static int sessions_reopen(struct folder_ctx *fc, struct store_folder *cp)
{
	struct imap_status st;
	int ret;

	sessions_close(fc);
	ret = sessions_open(fc);
	if (ret == 0)
		ret = src_examine(fc, cp->src_name, &st);
	return ret;
}

/* A batch whose fetch broke a bound of lib/imap (a literal larger than
 * allowed, more bytes than RFC822.SIZE announced): again message by message
 * on new sessions, so that only the offending message gets a message error,
 * with lib/imap's words naming the bound and the server's numbers. */
int copy_one_by_one(struct folder_ctx *fc, struct store_folder *cp, const uint32_t *uids,
                    size_t count, struct dst_index *idx)
{
	int ret = sessions_reopen(fc, cp);

	for (size_t k = 0; k < count && ret == 0; k++) {
		if (run_should_stop(fc->run))
			return RUN_STOP;
		ret = copy_batch(fc, cp, &uids[k], 1, true, idx, false, NULL, NULL, NULL);
		if (ret == IMAP_ELIMIT) {
			char why[600];
			snprintf(why, sizeof(why), "%s", fc->err);
			ret = msg_error_commit(fc, cp, uids[k], why);
			if (ret == 0)
				ret = sessions_reopen(fc, cp);
		}
	}
	return ret;
}

/* Copies source UIDs (high_water, last] in windows and byte-bounded batches;
 * exists is the folder's message count when it was opened (for jumping over
 * empty UID ranges).  0 done, 1 asked to stop, <0 failed. */
int copy_new(struct folder_ctx *fc, struct store_folder *cp, uint32_t last, uint32_t exists,
             struct dst_index *idx)
{
	const struct sync_config *cfg = fc->run->cfg;
	const struct store_account *acct = fc->run->acct;
	uint32_t *uids = calloc(cfg->batch_count, sizeof(*uids));
	size_t batch_count = cfg->batch_count;
	struct prefetch pf = {.fc = fc, .uids = calloc(cfg->batch_count, sizeof(*uids))};
	bool ahead = false;
	/* Fetching ahead: not under a rate limit or a daily cap (they must see
	 * each batch before it moves), nor while matching by content. */
	bool can_ahead = idx == NULL && run_unpaced(fc->run);
	/* The source profile's filters: the date one reads each message's
	 * INTERNALDATE with its size. */
	int64_t since = 0;
	if (acct->src.since != NULL && day_epoch(acct->src.since, &since) < 0)
		since = 0;
	bool filters = acct->src.max_message_bytes > 0 || since > 0;
	int ret = 0;

	if (uids == NULL || pf.uids == NULL) {
		free(uids);
		free(pf.uids);
		return -1;
	}
	/* Under a message rate limit a batch is at most a second's worth, so the
	 * limit holds over short spans too. */
	if (acct->src.rate_messages > 0 && (size_t)acct->src.rate_messages < batch_count)
		batch_count = (size_t)acct->src.rate_messages;
	if (acct->dst.rate_messages > 0 && (size_t)acct->dst.rate_messages < batch_count)
		batch_count = (size_t)acct->dst.rate_messages;
	while (cp->high_water < last && ret == 0) {
		uint32_t lo = cp->high_water + 1;
		uint32_t hi = last - lo >= cfg->window ? lo + cfg->window - 1 : last;
		struct imap_batch sizes;
		size_t i = 0;

		if (run_should_stop(fc->run)) {
			ret = RUN_STOP;
			break;
		}
		int64_t t0 = monotonic_ms();
		ret = phase_add(fc, PHASE_FETCH, t0, src_sizes(fc, lo, hi, since > 0, &sizes));
		if (ret < 0)
			break;
		fc_alive(fc);
		if (filters && (ret = filter_window(fc, cp, &sizes, since)) != 0) {
			imap_batch_free(&sizes);
			break;
		}
		if (sizes.count == 0) {
			/* Jump over an empty UID range in one commit. */
			uint64_t next;
			imap_batch_free(&sizes);
			t0 = monotonic_ms();
			ret = phase_add(fc, PHASE_STATUS, t0,
			                src_window_next(fc, exists, hi, last, &next));
			if (ret != 0)
				break;
			hi = (uint32_t)(next - 1);
		}
		size_t at = 0;             /* where the batch fetched ahead was cut from */
		bool next_written = false; /* its intent is in (the last commit) */
		while ((i < sizes.count || ahead) && ret == 0) {
			struct imap_batch bodies = {0};
			size_t n, bytes;
			bool spool = false, given = false;

			/* Plain batches go pipelined where the destination allows
			 * (MULTIAPPEND, LITERAL+, UIDPLUS); copy_piped stops before a
			 * batch that is not plain, which goes the way below. */
			if (!ahead && can_ahead && fc->dst != NULL &&
			    imap_append_can_pipeline(fc->dst)) {
				size_t before = i;
				ret = copy_piped(fc, cp, &sizes, &i, batch_count);
				if (ret != 0 || i >= sizes.count)
					continue;
				if (i != before)
					continue; /* more plain batches may follow a reopen */
			}

			if (ahead) {
				/* The batch fetched while the last one was appended. */
				uint32_t *t = uids;
				uids = pf.uids;
				pf.uids = t;
				n = pf.n;
				bytes = pf.bytes;
				bodies = pf.bodies;
				memset(&pf.bodies, 0, sizeof(pf.bodies));
				ahead = false;
				if (pf.ret < 0 || run_should_stop(fc->run)) {
					snprintf(fc->err, sizeof(fc->err), "%s", pf.err);
					ret = pf.ret < 0 ? pf.ret : RUN_STOP;
					imap_batch_free(&bodies);
					if (ret == IMAP_ELIMIT)
						ret = copy_one_by_one(fc, cp, uids, n, idx);
					continue;
				}
				given = true;
			} else {
				if (run_should_stop(fc->run)) {
					ret = RUN_STOP;
					break;
				}
				if (cfg->max_message_bytes > 0 &&
				    sizes.msgs[i].size > cfg->max_message_bytes) {
					ret = too_large(fc, cp, &sizes.msgs[i++]);
					continue;
				}
				spool = batch_cut(&sizes, &i, batch_count, cfg->batch_bytes,
				                  cfg->max_message_bytes, uids, &n, &bytes);
				if (!cap_fit(fc->run, &sizes, &i, &n, &bytes)) {
					ret = RUN_STOP;
					break;
				}
				t0 = monotonic_ms();
				ret = phase_add(fc, PHASE_WAIT, t0, rate_gate(fc, n, bytes));
				if (ret != 0)
					break;
				/* Fetched here when the next one may be fetched ahead:
				 * the source session is then that fetch's. */
				if (can_ahead && !spool && i < sizes.count) {
					t0 = monotonic_ms();
					ret = phase_add(fc, PHASE_FETCH, t0,
					                src_bodies(fc, uids, n, &bodies, fc->err,
					                           sizeof(fc->err)));
					if (ret == IMAP_ELIMIT && !fc->store_failed) {
						ret = copy_one_by_one(fc, cp, uids, n, idx);
						continue;
					}
					if (ret != 0)
						break;
					fc_alive(fc);
					given = true;
				}
			}
			/* The next batch, fetched while this one is appended: only a
			 * plain one (not spooled, no message over the limit), and
			 * only where no rate limit or daily cap has to see each
			 * batch before it moves. */
			if (can_ahead && !spool && i < sizes.count && !run_should_stop(fc->run) &&
			    (cfg->max_message_bytes == 0 ||
			     sizes.msgs[i].size <= cfg->max_message_bytes)) {
				at = i;
				if (batch_cut(&sizes, &i, batch_count, cfg->batch_bytes,
				              cfg->max_message_bytes, pf.uids, &pf.n, &pf.bytes)) {
					i = at; /* to be spooled: in turn */
				} else {
					t0 = monotonic_ms();
					ret = phase_add(fc, PHASE_WAIT, t0,
					                rate_gate(fc, pf.n, pf.bytes));
					if (ret != 0)
						break;
					ahead = prefetch_start(&pf);
					if (!ahead)
						i = at;
				}
			}
			/* With the next batch's intent written by this one's commit,
			 * that batch goes straight to its APPEND. */
			struct store_intent next = {.uids = pf.uids, .count = pf.n};
			bool keep = next_written;
			next_written = false;
			ret = copy_batch(fc, cp, uids, n, spool, idx, keep, given ? &bodies : NULL,
			                 ahead ? &next : NULL, &next_written);
			imap_batch_free(&bodies); /* left there only when not given */
			prefetch_join(&pf);
			if (ret != 0 && ahead) {
				/* Not taken: its messages are cut again. */
				imap_batch_free(&pf.bodies);
				ahead = false;
				i = at;
			}
			if (ret == IMAP_ELIMIT && !fc->store_failed)
				ret = copy_one_by_one(fc, cp, uids, n, idx);
		}
		prefetch_join(&pf);
		if (ahead)
			imap_batch_free(&pf.bodies);
		ahead = false;
		imap_batch_free(&sizes);
		/* An empty window (expunged UIDs) still moves the high water. */
		if (ret == 0 && cp->high_water < hi) {
			char error[STORE_ERRLEN] = "";
			ret = store_check(fc,
			                  store_batch_commit(fc->st, fc->run->acct->id,
			                                     fc->run->epoch, cp->id, cp->lane, NULL,
			                                     0, NULL, 0, hi, 0, 0, 0, NULL, error,
			                                     sizeof(error)),
			                  error);
			if (ret == 0)
				cp->high_water = hi;
		}
	}
	free(uids);
	free(pf.uids);
	return ret;
}
