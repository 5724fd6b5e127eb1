/* Internals of the account copy (sync.h), shared by the files that cut it by
 * protocol step:
 *   sync.c      the walk of folders, folder threads, sessions, sync_account
 *   folders.c   listing, mapping and preparing folders
 *   batch.c     the crash-safe batch protocol: fetch, intent -> APPEND ->
 *               commit, recovery of an open intent, the walk of new UIDs
 *   piped.c     fetching ahead, and two MULTIAPPENDs on the way under one intent
 *   identity.c  message identity (hash) and the destination index (re-match)
 *   flags.c     flag sync
 *   keywords.c  a message refused for its keywords, appended without them
 *   source.c    reading the source: IMAP, or a POP3 maildrop as one folder
 *   filters.c   the source profile's date and size filters
 *   sessions.c  an account's two sessions: logins, bounds, OAuth2 tokens
 *   core.c      the pure pieces of the above (batch_cut, hash_msg,
 *               flags_normalize), unit tested on their own
 *   pace.c      rate limits, daily caps, throttling, sleeps
 *   run.c       the run's shared state: outcome, heartbeat, lease write
 *               guard, watchdog, connection slots
 * Not a public interface: only these files include it.
 *
 * Unless said otherwise, a function taking a struct folder_ctx runs in that
 * folder thread (it uses its sessions and store connection), returns 0 on
 * success, <0 on failure (an IMAP_E* or STORE_* value, with the reason in
 * fc->err) and RUN_STOP when the run is to stop; struct account_run fields
 * behind run->lock are taken by these functions themselves. */
#ifndef MAILSHIFT_SYNC_PRIVATE_H
#define MAILSHIFT_SYNC_PRIVATE_H

#include "sync.h"

/* A folder thread step's result when the run is to stop (asked to, lease
 * lost, waiting): not an error, nothing more is to be done. */
#define RUN_STOP 1

#include "account.h"
#include "imap.h"
#include "names.h"
#include "rules.h"
#include "store-checkpoint.h"
#include "store-lease.h"
#include "store-proof.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define HASH_LEN IMAP_HASH_LEN

/* A destination message known by content, for re-matching. */
struct dst_entry {
	unsigned char hash[HASH_LEN];
	uint32_t uid;
	bool used;
};

struct dst_index {
	struct dst_entry *entries;
	size_t count;
	uint32_t next_uid; /* the destination UIDNEXT the index covers up to */
	/* UIDs this run appended at or above next_uid (marked used when the
	 * index is extended over them); no_refresh: some had no APPENDUID, so
	 * the run's own messages cannot be told from others'. */
	uint32_t *own;
	size_t nown, own_cap;
	bool no_refresh;
};

/* The phases of a run timed per folder thread (sync_stats.phase_ms). */
enum run_phase {
	PHASE_CONNECT, /* connect, TLS, login */
	PHASE_LIST,    /* LIST, CREATE, the folders' rows */
	PHASE_STATUS,  /* STATUS, SELECT/EXAMINE, UID walks */
	PHASE_FETCH,   /* message sizes and bodies from the source */
	PHASE_APPEND,  /* APPEND to the destination */
	PHASE_STORE,   /* PostgreSQL: checkpoints, intents, the UID map */
	PHASE_FLAGS,   /* flag sync, whole */
	PHASE_WAIT,    /* rate limits, throttling, slots */
	PHASE_COUNT
};
extern const char *const run_phase_names[PHASE_COUNT];

/* Shared by the folder threads of one account. */
struct account_run {
	const struct sync_config *cfg;
	const struct store_account *acct;
	int64_t epoch;
	struct account_creds creds;
	struct imap_folder *src_folders, *dst_folders;
	size_t nsrc, ndst;
	struct imap_names_side src_side, dst_side;
	char **dst_names; /* per source folder, NULL when skipped */
	/* The operator's folder renames: the account's, then its source
	 * profile's.  merged: two source folders go to one destination folder
	 * by a rule; they are then copied one after the other (one folder
	 * thread), so that neither's crash recovery sees the other's appends
	 * at the same time. */
	struct imap_rules rules;
	bool merged;
	bool src_pop3; /* the source is a POP3 maildrop (source.c) */
	/* Per source folder, from folders_prepare and folders_triage: its
	 * checkpoint row; the source and destination STATUS when known
	 * (src_known, dst_known); whether a
	 * folder thread has work there (false: found unchanged). */
	struct store_folder *rows;
	struct imap_status *src_st, *dst_st;
	bool *src_known, *dst_known, *todo;

	pthread_mutex_t lock;
	size_t next_folder;
	enum sync_outcome outcome;
	char error[512];
	struct sync_stats stats;
	int64_t lease_deadline_ms; /* monotonic: no destination write after it */
	char slot_owner[64];       /* holder name of this run's connection slots */
	bool finished;             /* tells the heartbeat thread to stop */
	pthread_cond_t wake;
	uint64_t cap;           /* daily byte cap of the account, 0 = none */
	uint64_t ahead_bytes;   /* bytes being fetched ahead by its folder threads */
	uint64_t day_bytes;     /* bytes moved today, as far as this run knows */
	time_t day;             /* today: UTC days since the epoch */
	int wait_s;             /* SYNC_WAITING: when to run again */
	struct folder_ctx *fcs; /* the folder threads, for the watchdog */
	int nfcs;
	/* A large folder's second stream (lanes.c): the helper thread and its
	 * connections (the last of fcs), the lane posted to it (under lock,
	 * lane_cv signalled), closing asked of it, gone once it ended. */
	struct folder_ctx *lane_fc;
	pthread_t lane_thread;
	pthread_cond_t lane_cv;
	bool lane_started, lane_closing, lane_gone;
	struct lane_job *lane_job;
	/* The order the folder threads take the folders in (indexes of
	 * src_folders, largest first; NULL: the listing's), and the folder a
	 * new split may go to: the largest with work (folders_order). */
	size_t *order;
	const char *lane_folder;
};

/* One folder thread's connections. */
struct folder_ctx {
	struct account_run *run;
	struct store *st;
	int src_slot, dst_slot; /* connection budget slots held (0: none) */
	struct imap_session *src, *dst;
	struct pop3_view *pop3; /* the source session when it speaks POP3 (source.c) */
	/* The account's endpoints with this thread's cancel flag and I/O clock
	 * (lib/imap keeps pointers to them for the sessions' lifetime). */
	struct imap_endpoint src_ep, dst_ep;
	/* The OAuth2 access tokens of the endpoints (sessions_open), or NULL. */
	char *src_token, *dst_token;
	int open_backoff_s; /* the server's suggested wait after a throttled connect */
	bool throttled_dst; /* the last IMAP_ETHROTTLED came from the destination */
	/* The failure in err came from PostgreSQL, not from a server: an error
	 * of the account (a plain -1 of the store looks like any other). */
	bool store_failed;
	/* Watchdog (heartbeat thread): busy while the thread works on a folder
	 * or prepares them; progress_ms is the monotonic time of its last
	 * completed command, commit or legitimate wait. */
	atomic_bool busy;
	atomic_llong progress_ms;
	atomic_int cancel_mine;              /* set by the watchdog: end this thread's IMAP waits */
	atomic_llong last_io_ms;             /* last byte moved on its sessions (lib/imap) */
	bool stalled;                        /* watchdog: reported once per stall */
	struct imap_io_stats src_io, dst_io; /* over every session the thread opened */
	/* A lower bound of the UID the destination gives the folder's next
	 * message, from the last APPENDUIDs (0: unknown, asked with STATUS).
	 * UIDs only grow, so it is a valid intent bound without a round trip. */
	uint32_t dst_uid_floor;
	int64_t phase_ms[PHASE_COUNT];
	char err[512];
};

/* Adds the time since t0 (monotonic_ms) to fc's phase; returns ret. */
int phase_add(struct folder_ctx *fc, enum run_phase phase, int64_t t0, int ret);

/* run.c: the run's shared state */

/* Records the run's outcome: the first failure wins; a lost lease overrides
 * everything.  error is copied.  Any thread. */
void run_fail(struct account_run *run, enum sync_outcome outcome, const char *error);
/* Stops the run at its next checkpoint as "waiting" (not an error): run again
 * after wait_s seconds, or at the next UTC midnight for -1.  Any thread. */
void run_wait(struct account_run *run, int wait_s, const char *why);
/* Whether the run is to stop now (lease lost, credentials refused, stopped,
 * waiting, or SIGTERM).  Any thread. */
bool run_should_stop(struct account_run *run);
int64_t monotonic_ms(void);
/* The folder thread made progress (for the watchdog). */
void fc_alive(struct folder_ctx *fc);
/* in with control characters shown as '?', into out (outlen > 0); returns
 * out.  For names from a server in logs and reasons. */
const char *printable(const char *in, char *out, size_t outlen);
/* The write guard of every destination session (imap_session_set_write_guard,
 * context: the struct account_run): false once the lease may have expired.
 * Called from the folder threads. */
bool lease_may_write(void *context);
/* Starts the lease heartbeat (and watchdog) thread of run: 0, or -1 when it
 * could not be started.  run must outlive run_heartbeat_stop. */
int run_heartbeat_start(struct account_run *run, pthread_t *thread_r);
/* Tells the heartbeat thread to end and joins it; nothing when *started is
 * false, which it is afterwards.  The account's thread. */
void run_heartbeat_stop(struct account_run *run, pthread_t thread, bool *started);
/* Maps a store result ret (its message in the buffer error) to
 * the run: STORE_LEASE_LOST fails the run, another failure sets fc->err and
 * fc->store_failed, success counts as progress.  Returns ret. */
int store_check(struct folder_ctx *fc, int ret, const char *error);
/* Takes one source and one destination connection slot for this thread's
 * sessions, unless held: STORE_TAKEN held, STORE_BUSY the budget of a server is
 * used up (nothing is held then), <0 store error (fc->err). */
int slots_take(struct folder_ctx *fc);
/* Gives back the slots fc holds, if any (errors ignored: they expire). */
void slots_release(struct folder_ctx *fc);

/* pace.c: rate, caps, throttling, sleeps */

/* Sleeps up to secs in short steps, a legitimate wait for the watchdog;
 * false when the run is to stop. */
bool fc_sleep(struct folder_ctx *fc, double secs);
/* No rate limit of either server and no daily cap: nothing has to see each
 * batch before it moves (fetching ahead, pipelining, a split are allowed). */
bool run_unpaced(const struct account_run *run);
/* Before a batch of n messages and bytes bytes: the servers' fleet-wide rate
 * limits.  0 go on, RUN_STOP, <0 store failure. */
int rate_gate(struct folder_ctx *fc, size_t n, uint64_t bytes);
/* Keeps the batch sizes->msgs[*i - *n .. *i) within the account's daily byte
 * cap by dropping messages from its end (*i, *n, *bytes reduced); the bytes
 * count as moved from here on.  false: not even one fits, the run waits for
 * the next UTC day (run_wait).  Any folder thread. */
bool cap_fit(struct account_run *run, const struct imap_batch *sizes, size_t *i, size_t *n,
             size_t *bytes);
/* After IMAP_ETHROTTLED (the count-th in a row, from 1): waits as the server
 * asked and slows the fleet down for it; past THROTTLE_MAX the run waits.  0
 * retry, RUN_STOP. */
int throttle_wait(struct folder_ctx *fc, int count);

/* identity.c: message identity, the destination index */

/* SHA-256 of a fetched message (in memory or spooled) with every CR left
 * out.  0, or -1 when the spool file cannot be read. */
int hash_msg(const struct imap_msg *m, unsigned char out[HASH_LEN]);
/* Indexes the destination folder's messages with UID >= from by content
 * (the folder examined on fc->dst).  *idx_r is the caller's, to free with
 * dst_index_free; nothing to free on failure. */
int dst_index_build(struct folder_ctx *fc, const char *dst_name, uint32_t from,
                    struct dst_index *idx_r);
/* Merged folders: marks used the destination messages another source
 * folder of the account has mapped (they are not this folder's to match by
 * content); with own, those of cp's folder too (its lane's recovery).  0 or
 * <0.  (identity.c) */
int dst_index_claimed(struct folder_ctx *fc, const struct store_folder *cp, bool own,
                      struct dst_index *idx);
/* Indexes what arrived in the destination folder since idx was built or last
 * refreshed (another writer), before a batch is matched. */
int dst_index_refresh(struct folder_ctx *fc, const char *dst_name, struct dst_index *idx);
/* Takes an unused destination message with this hash: its UID, 0 if none. */
uint32_t dst_index_take(struct dst_index *idx, const unsigned char hash[HASH_LEN]);
/* Remembers destination UIDs this run appended while matching by idx.  0, or
 * -1 out of memory. */
int dst_index_own(struct dst_index *idx, const uint32_t *uids, size_t n);
/* Frees and zeroes idx (a zeroed one is fine). */
void dst_index_free(struct dst_index *idx);

/* batch.c: the batch protocol */

/* Cuts the next batch from the sizes of a UID window, from *i on (*i <
 * sizes->count): at most max_count messages and max_bytes bytes, stopping
 * before a message over max_message (0: no limit).  uids (max_count long)
 * receives the UIDs; *i moves past them; *n_r and *bytes_r say how many.
 * Returns true when the batch is one message over max_bytes, to be spooled. */
bool batch_cut(const struct imap_batch *sizes, size_t *i, size_t max_count, size_t max_bytes,
               uint64_t max_message, uint32_t *uids, size_t *n_r, size_t *bytes_r);
/* Fetches the bodies of count UIDs on session into *batch_r (the caller's,
 * imap_batch_free).  With spool (count 1) the body goes to a temporary file,
 * *spool_r, for the caller to fclose; else *spool_r is NULL. */
int fetch_batch(struct folder_ctx *fc, struct imap_session *session, const uint32_t *uids,
                size_t count, bool spool, struct imap_batch *batch_r, FILE **spool_r);
/* Where the next UID window starts after the window ending at hi came back
 * empty (*next_r, up to last + 1); exists is the folder's message count. */
int window_next(struct folder_ctx *fc, struct imap_session *session, uint32_t exists, uint32_t hi,
                uint32_t last, uint64_t *next_r);
/* Re-matches the folder's open intent and appends the rest of its batch. */
int recover_intent(struct folder_ctx *fc, struct store_folder *cp);
/* Copies source UIDs (cp->high_water, last] (the source folder examined on
 * fc->src, holding exists messages), matching by idx when not NULL. */
int copy_new(struct folder_ctx *fc, struct store_folder *cp, uint32_t last, uint32_t exists,
             struct dst_index *idx);

/* lanes.c: a large folder's first copy in two streams */

struct lane_job;
/* After folders_order, before the folder threads: starts the lane helper
 * when a folder may be split (its connections open while that folder is
 * examined).  lanes_stop ends and joins it, after the folder threads. */
void lanes_start(struct account_run *run);
void lanes_stop(struct account_run *run);

/* Re-matches the open intent of cp's lane, if any (cp->lane_high_water
 * follows). */
int recover_lane_intent(struct folder_ctx *fc, struct store_folder *cp);
/* copy_new of (cp->high_water, last] without a match index, in two streams
 * where the folder is large and copied for the first time, or where an
 * interrupted attempt left its lane open. */
int copy_folder_new(struct folder_ctx *fc, struct store_folder *cp, uint32_t last, uint32_t exists);

/* keywords.c: m was refused (res->error) while it carries keywords: appended
 * again with fewer (those PERMANENTFLAGS rule out, then the longest, then
 * none; system flags kept).  On success res is the new result and note
 * names the keywords dropped (note->keywords, the server's words in
 * note->error; caller frees them); else res->error stays set and
 * note->keywords NULL.  <0 when the session broke or the server throttled
 * (IMAP_ETHROTTLED, fc->throttled_dst set). */
int keywords_fallback(struct folder_ctx *fc, const char *dst_name, const struct imap_msg *m,
                      struct imap_append_result *res, struct store_uid_note *note);
/* Removes from flags (an imap_msg's, 256 bytes) the keywords named in
 * dropped: the flag sync never asks the destination again for keywords it
 * refused. */
void keywords_strip(char *flags, const char *dropped);

/* Re-sends source UIDs one message per batch on new sessions, after a batch
 * broke a bound of lib/imap: only the offending message gets a message error. */
int copy_one_by_one(struct folder_ctx *fc, struct store_folder *cp, const uint32_t *uids,
                    size_t count, struct dst_index *idx);

/* piped.c: fetching ahead, pipelined APPENDs */

/* The next batch's bodies, fetched on the source session by a thread of its
 * own while the current batch is appended (only the fetch runs there: the
 * source session, PHASE_FETCH, its own error text; the folder thread joins it
 * before it looks at any result). */
struct prefetch {
	struct folder_ctx *fc;
	uint32_t *uids;
	size_t n, bytes;
	struct imap_batch bodies;
	int ret;
	char err[512];
	pthread_t thread;
	bool running;
};
/* Starts fetching pf's batch, within the account's fetch-ahead bound; false
 * (nothing started) when there is no room or no thread. */
bool prefetch_start(struct prefetch *pf);
/* Waits for the fetch: its result is in pf->ret, pf->bodies, pf->err. */
void prefetch_join(struct prefetch *pf);
/* Copies the plain batches of a UID window of sizes from *i on with two
 * MULTIAPPENDs on the way (the destination offers MULTIAPPEND, LITERAL+,
 * UIDPLUS; no rate limit, cap or content matching).  Stops at the window's
 * end or before a batch that is not plain (*i there).  0, RUN_STOP or <0 with
 * the intent left open for recovery. */
int copy_piped(struct folder_ctx *fc, struct store_folder *cp, const struct imap_batch *sizes,
               size_t *i, size_t batch_count);

/* flags.c */

/* Carries flag changes of copied messages (UIDs <= upto) to the destination:
 * those since modseq changedsince, or all compared when 0. */
int sync_flags(struct folder_ctx *fc, struct store_folder *cp, uint32_t upto,
               uint64_t changedsince);
/* The flag words of in (space separated), sorted without regard to case and
 * joined by single spaces into out, for comparing two flag lists.  (core.c) */
void flags_normalize(const char *in, char *out, size_t outlen);
/* The source profile's filters over a window's sizes (and dates): messages
 * older than since (epoch seconds, 0 = none) or larger than its
 * max_message_size are taken out of sizes, counted once each, and those left
 * out for their size recorded with the reason.  0 or <0.  (filters.c) */
int filter_window(struct folder_ctx *fc, struct store_folder *cp, struct imap_batch *sizes,
                  int64_t since);
/* An IMAP INTERNALDATE ("dd-Mon-yyyy hh:mm:ss +zzzz") as seconds since the
 * epoch; -1 if it is not one.  (core.c) */
int internaldate_epoch(const char *s, int64_t *epoch_r);
/* "YYYY-MM-DD" as the epoch second its UTC day starts; -1 if not.  (core.c) */
int day_epoch(const char *s, int64_t *epoch_r);

/* An RFC 5322 Date header found in the header bytes head (len bytes: the
 * message or its start) as an IMAP INTERNALDATE into out; -1 when there is
 * none or it is not a valid date.  (core.c) */
int header_date(const char *head, size_t len, char *out, size_t outlen);
/* Seconds since the epoch as an INTERNALDATE in UTC.  (core.c) */
void epoch_internaldate(int64_t epoch, char *out, size_t outlen);

/* source.c: what the batch protocol reads from the source, on fc's source
 * session, IMAP (lib/imap on fc->src) or POP3 (fc->pop3).  Each stands for
 * the lib/imap call of its name, with the same returns (reason in fc->err;
 * src_bodies: in err, for the fetch-ahead thread). */

struct pop3_view;
/* Opens the source session (the POP3 one also lists the maildrop and gives
 * its unique-ids their pseudo UIDs); *backoff_s_r: a throttled IMAP login's
 * suggested wait. */
int src_open(struct folder_ctx *fc, int *backoff_s_r);
void src_close(struct folder_ctx *fc);
bool src_is_open(const struct folder_ctx *fc);
/* Whether copied messages' flags are followed (sync_flags): not for POP3. */
bool src_has_flags(const struct folder_ctx *fc);
int src_list(struct folder_ctx *fc, struct imap_folder **folders_r, size_t *count_r);
int src_status_many(struct folder_ctx *fc, struct imap_status_req *reqs, size_t n);
int src_status(struct folder_ctx *fc, const char *name, struct imap_status *st_r);
int src_examine(struct folder_ctx *fc, const char *name, struct imap_status *st_r);
/* The UIDs and sizes in [lo, hi] (with INTERNALDATE when dates). */
int src_sizes(struct folder_ctx *fc, uint32_t lo, uint32_t hi, bool dates,
              struct imap_batch *batch_r);
int src_bodies(struct folder_ctx *fc, const uint32_t *uids, size_t n, struct imap_batch *batch_r,
               char *err, size_t errlen);
/* fetch_batch on the source. */
int src_fetch(struct folder_ctx *fc, const uint32_t *uids, size_t n, bool spool,
              struct imap_batch *batch_r, FILE **spool_r);
/* window_next on the source. */
int src_window_next(struct folder_ctx *fc, uint32_t exists, uint32_t hi, uint32_t last,
                    uint64_t *next_r);

/* folders.c */

/* folders_prepare: the source has more folders than the worker accepts. */
#define FOLDERS_TOO_MANY (-100) /* the worker's own codes: -100..-109 */
/* A folder's attempt ends to be made again at once, on the same sessions: a
 * MULTIAPPEND refused whole while the folder is copied in two streams is
 * matched again only once both have stopped (lanes.c). */
#define FOLDER_AGAIN (-101)

/* Lists and maps the account's folders into run (src_folders, dst_names),
 * creating missing destination folders; a folder that cannot be had is
 * recorded as failed.  0, RUN_STOP, <0 (FOLDERS_TOO_MANY among them). */
int folders_prepare(struct folder_ctx *fc);
/* Asks the STATUS of every prepared folder, pipelined on fc's sessions, and
 * marks those found unchanged since their checkpoint (run->todo false): no
 * folder thread opens them.  Never fails: a folder it cannot judge is left
 * to its thread. */
void folders_triage(struct folder_ctx *fc);
/* After folders_triage: the folders largest first (a large folder started
 * last would set the account's end alone), and the one a split may go to. */
void folders_order(struct account_run *run);
/* Frees what folders_prepare, folders_triage and folders_order keep in run. */
void folders_state_free(struct account_run *run);
/* Records that a folder failed (why: the command and the server's words) and
 * lets the account go on.  0, or <0 when the store could not record it (the
 * run then fails). */
int folder_failed(struct folder_ctx *fc, const char *src_name, const char *dst_name,
                  const char *why);

/* dav.c: contacts and calendars, after the mail, inside the lease */

/* Whether both of the account's profiles name a CardDAV/CalDAV server. */
bool dav_wanted(const struct store_account *acct);
/* Copies the account's address books and calendars on the account's thread
 * with its store connection st, counting into run->stats.  0, or RUN_STOP
 * with the outcome set by run_fail (lease lost, a server unreachable or
 * refusing the credentials). */
int dav_copy(struct account_run *run, struct store *st);

/* sync.c */

/* Opens fc's source and destination sessions (the destination guarded by
 * lease_may_write); refused credentials fail the run. */
int sessions_open(struct folder_ctx *fc);
/* Closes fc's sessions, if open. */
void sessions_close(struct folder_ctx *fc);

#endif
