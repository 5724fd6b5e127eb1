/* IMAP sessions over libetpan: connection (TLS through OpenSSL), authentication,
 * capabilities, folders, metadata and body fetches, flag stores and the
 * pipelined append path.
 *
 * A session is used by one thread at a time.  Every function returns 0 on
 * success and a negative value on failure with a message in err; IMAP_ENET
 * means the connection is no longer usable (reset, timeout, EOF, cancelled,
 * BYE): the caller reconnects and resumes from its checkpoint; err then says
 * which, with the server's host:port.  No call waits longer than timeout_s
 * without progress: every read and write is bounded (see transport.h).  IMAP_ETHROTTLED means the
 * server asked us to slow down (see below).  Server replies quoted in err are the server's own
 * words; secrets never appear in err. */
#ifndef MAILSHIFT_IMAP_H
#define MAILSHIFT_IMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_ENET (-2)  /* connection lost */
#define IMAP_EAUTH (-3) /* credentials refused */
#define IMAP_ENO (-4)   /* the server answered NO/BAD to this command */
/* The server asked us to slow down (rate limit, overload): a tagged NO/BAD
 * with [THROTTLED] or [UNAVAILABLE] (RFC 5530) or Exchange's "Suggested
 * Backoff Time", or a BYE telling of load (see throttle.h).  Not an error of
 * the message, the folder or the account: the caller waits
 * imap_session_backoff_s() seconds (or its own delay when that is 0) and
 * retries the same command.  After a tagged NO the session is still usable
 * (but a throttled SELECT/EXAMINE leaves no folder selected, RFC 3501
 * 6.3.1); after a BYE it is not: close it and reconnect.  Returned by every
 * function here that talks to the server: imap_session_open (no session is
 * made), imap_folders_list, imap_folder_create, imap_folder_status,
 * imap_folder_open, the imap_fetch_* functions, imap_store_flags, and
 * imap_append_batch only for a BYE (a throttled message is marked in its
 * result). */
#define IMAP_ETHROTTLED (-5)
/* A reply broke a bound (line length, literal size, more bytes than
 * RFC822.SIZE announced): session broken; err names the bound. */
#define IMAP_ELIMIT (-6)
/* The server's data is invalid (unparsable reply, STATUS/SELECT without
 * UIDVALIDITY or UIDNEXT, UIDVALIDITY 0, UID 0 or out of range): an error of
 * that folder, retrying in place will not help; session may be broken. */
#define IMAP_EPROTO (-7)
/* An argument cannot be sent (CR, LF or NUL in a name or credential, too
 * long): nothing was sent, session still usable. */
#define IMAP_EARG (-8)

enum imap_tls_mode { IMAP_TLS_IMPLICIT, IMAP_TLS_STARTTLS, IMAP_TLS_NONE };
enum imap_auth_mech { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN, IMAP_AUTH_XOAUTH2 };

/* What a session's byte stream cost, summed over the sessions an endpoint
 * opened.  A round trip is a turn of the conversation: the first read after
 * anything was written (pipelined commands read back together count once). */
struct imap_io_stats {
	uint64_t round_trips;
	uint64_t wait_ms; /* time blocked waiting for the server's bytes */
	uint64_t bytes_in, bytes_out;
};

struct imap_endpoint {
	const char *host;
	int port;
	enum imap_tls_mode tls;
	const char *ca_file; /* NULL: the system store */
	bool tls_verify;     /* false only when the operator asked for it */
	enum imap_auth_mech auth;
	const char *user;              /* the mailbox owner (authorization identity) */
	const char *auth_user;         /* admin/master user to authenticate as, or NULL */
	const char *secret;            /* password (of auth_user if set) or OAuth2 token */
	int timeout_s;                 /* bound on each wait (connect, TLS, read, write); 0: 60 */
	size_t max_line;               /* longest reply line outside literals; 0: 1 MiB */
	uint64_t max_literal;          /* largest literal accepted; 0: 64 MiB */
	const atomic_int *cancel;      /* process-wide (shutdown): non-zero ends every wait
	                                * within 250 ms */
	const atomic_int *cancel_mine; /* one thread's own (watchdog): same effect */
	atomic_llong *last_io_ms;      /* if not NULL: CLOCK_MONOTONIC ms of the last byte
	                                * moved */
	struct imap_io_stats *stats;   /* if not NULL: counted into (one thread at a time) */
};

int imap_tls_mode_parse(const char *s, enum imap_tls_mode *mode_r);
int imap_auth_mech_parse(const char *s, enum imap_auth_mech *mech_r);

struct imap_session;

/* Connects, authenticates and loads the capabilities.  IMAP_EARG, nothing
 * sent, when the login or secret holds CR, LF or NUL (or ^A for XOAUTH2);
 * IMAP_ELIMIT when the greeting breaks a bound.  IMAP_ETHROTTLED when
 * the greeting is a BYE telling of load or the server throttled LOGIN /
 * AUTHENTICATE (never IMAP_EAUTH then: the credentials were not judged);
 * no session is created, so the wait the server suggested comes through
 * imap_session_open_backoff. */
int imap_session_open(const struct imap_endpoint *ep, struct imap_session **session_r, char *err,
                      size_t errlen);
/* imap_session_open that also sets *backoff_s_r (when not NULL): the wait in
 * seconds the server suggested when it returns IMAP_ETHROTTLED, else 0. */
int imap_session_open_backoff(const struct imap_endpoint *ep, struct imap_session **session_r,
                              int *backoff_s_r, char *err, size_t errlen);
void imap_session_close(struct imap_session **session);

/* Installs a guard asked before every byte this library writes on the append
 * path: when it returns false the write is refused, the session is marked
 * broken and the command fails with IMAP_ENET.  The worker uses it to never
 * send a message once its lease may have passed to another worker (a process
 * frozen past its lease must not append when it wakes up). */
void imap_session_set_write_guard(struct imap_session *session, bool (*may_write)(void *context),
                                  void *context);

/* The wait in seconds the server suggested in the throttling answer behind the
 * last IMAP_ETHROTTLED this session returned or, for imap_append_batch, the
 * longest among the results it marked throttled; 0 if the server gave none
 * (the caller picks its own delay).  Read it right after that return. */
int imap_session_backoff_s(const struct imap_session *session);

/* Capability test, case-insensitive, exact word ("MULTIAPPEND", "LITERAL+"). */
bool imap_session_has_cap(const struct imap_session *session, const char *cap);
/* APPENDLIMIT advertised by the server (RFC 7889), 0 if none. */
uint64_t imap_session_appendlimit(const struct imap_session *session);

/* Folder attributes from LIST (special-use per RFC 6154). */
enum imap_folder_flag {
	IMAP_FOLDER_NOSELECT = 1 << 0,
	IMAP_FOLDER_SENT = 1 << 1,
	IMAP_FOLDER_DRAFTS = 1 << 2,
	IMAP_FOLDER_TRASH = 1 << 3,
	IMAP_FOLDER_JUNK = 1 << 4,
	IMAP_FOLDER_ARCHIVE = 1 << 5,
	IMAP_FOLDER_ALL = 1 << 6,
	IMAP_FOLDER_FLAGGED = 1 << 7,
};
#define IMAP_FOLDER_SPECIAL_MASK                                                                   \
	(IMAP_FOLDER_SENT | IMAP_FOLDER_DRAFTS | IMAP_FOLDER_TRASH | IMAP_FOLDER_JUNK |            \
	 IMAP_FOLDER_ARCHIVE | IMAP_FOLDER_ALL | IMAP_FOLDER_FLAGGED)

struct imap_folder {
	char *name; /* as the server spells it: modified UTF-7 (RFC 3501 5.1.3) */
	char delimiter;
	unsigned int flags;
};

/* LIST "" "<prefix>*" with special-use attributes. Free with imap_folders_free. */
int imap_folders_list(struct imap_session *session, const char *prefix,
                      struct imap_folder **folders_r, size_t *count_r, char *err, size_t errlen);
void imap_folders_free(struct imap_folder **folders, size_t count);

/* CREATE (parents implied by the server) and SUBSCRIBE; an existing folder is fine.
 * Like every function here that sends a folder name (STATUS, SELECT/EXAMINE,
 * APPEND, the LIST prefix): IMAP_EARG, nothing sent, when the name holds CR,
 * LF or NUL or is longer than 64 KiB. */
int imap_folder_create(struct imap_session *session, const char *name, char *err, size_t errlen);

struct imap_status {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t messages;
	uint64_t highestmodseq; /* 0 when the server has no CONDSTORE */
	uint64_t size;          /* STATUS SIZE (RFC 8438): only imap_status_many, when asked */
	bool has_size;          /* size was answered */
};
/* STATUS: does not select, never changes anything.  STATUS, and
 * imap_folder_open, return IMAP_EPROTO when the server leaves out UIDVALIDITY
 * or UIDNEXT or answers UIDVALIDITY 0. */
int imap_folder_status(struct imap_session *session, const char *name, struct imap_status *st_r,
                       char *err, size_t errlen);
/* One folder of imap_status_many. */
struct imap_status_req {
	const char *name;      /* in: as for imap_folder_status */
	bool want_size;        /* in: ask SIZE too where the server offers STATUS=SIZE */
	struct imap_status st; /* out, when ret is 0 */
	/* out: 0, or this folder's own failure, with err: IMAP_ENO (the
	 * server's words), IMAP_EPROTO (invalid data) or IMAP_EARG (not sent) */
	int ret;
	char err[384];
};
/* STATUS of every folder of reqs, pipelined (a burst of commands written
 * before the first answer is read): n folders cost about one round trip, not
 * n.  Answers are matched by tag and by the folder name in the data.  Returns
 * 0 when every folder has its ret; <0 when the whole call failed (the session
 * is lost: IMAP_ENET, IMAP_ELIMIT, IMAP_EPROTO; or IMAP_ETHROTTLED: a STATUS
 * was throttled, wait and call again), with err; reqs are not to be read then. */
int imap_status_many(struct imap_session *session, struct imap_status_req *reqs, size_t n,
                     char *err, size_t errlen);

/* EXAMINE (read-only) or SELECT, with CONDSTORE when the server has it. */
int imap_folder_open(struct imap_session *session, const char *name, bool read_only,
                     struct imap_status *st_r, char *err, size_t errlen);

/* Whether the folder selected read-write lets a message carry keyword: its
 * PERMANENTFLAGS (RFC 3501 7.1) list it or hold "\*"; true when the server
 * sent no PERMANENTFLAGS or nothing is selected (nothing said against it). */
bool imap_session_keyword_permitted(const struct imap_session *session, const char *keyword);

/* EXPUNGE in the selected folder: the messages marked \Deleted are removed. */
int imap_folder_expunge(struct imap_session *session, char *err, size_t errlen);

/* The folder selected read-write by imap_folder_open, or NULL. */
const char *imap_session_selected(const struct imap_session *session);

/* One fetched message.  Bytes are owned by the batch that holds it. */
struct imap_msg {
	uint32_t uid;
	uint32_t size;
	char flags[256];       /* space separated, \Recent removed */
	char internaldate[40]; /* "dd-Mon-yyyy hh:mm:ss +zzzz" */
	const char *body;      /* NULL if not fetched or spooled */
	size_t body_len;
	uint64_t modseq;
	bool spooled; /* bytes are in body_fd (from offset 0), not in body */
	int body_fd;
};

/* A message's identity (lib/imap/digest.c): SHA-256 of its bytes with every
 * CR left out, so a destination that adds or drops CRs still matches.  The
 * worker's re-matching and the proof of completeness both use it.  0, or -1
 * when a spooled message could not be read back. */
#define IMAP_HASH_LEN 32
int imap_msg_hash(const struct imap_msg *m, unsigned char out[IMAP_HASH_LEN]);

/* A set of fetched messages; owns their bytes. */
struct imap_batch {
	struct imap_msg *msgs;
	size_t count;
	size_t bytes;
	void *priv; /* libetpan result kept alive for the bodies */
};
void imap_batch_free(struct imap_batch *batch);

/* UID FETCH first:last (UID RFC822.SIZE): the UIDs and sizes in the selected
 * folder (only UIDs within the range, ascending).  For all the imap_fetch_*
 * functions: a reply with UID 0, or with data for a UID that was not asked
 * for, is IMAP_EPROTO naming it (unsolicited flag updates of other messages
 * are left out); an unparsable reply is IMAP_EPROTO and ends the session. */
int imap_fetch_sizes(struct imap_session *session, uint32_t first, uint32_t last,
                     struct imap_batch *batch_r, char *err, size_t errlen);
/* The same with INTERNALDATE (for a date filter). */
int imap_fetch_sizes_dates(struct imap_session *session, uint32_t first, uint32_t last,
                           struct imap_batch *batch_r, char *err, size_t errlen);
/* UID FETCH <uids> (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]): never sets \Seen. */
int imap_fetch_bodies(struct imap_session *session, const uint32_t *uids, size_t count,
                      struct imap_batch *batch_r, char *err, size_t errlen);
/* Fetches one message (flags, INTERNALDATE and bytes) into the open file fd
 * with partial fetches of `chunk` bytes (BODY.PEEK[]<origin.octets>, RFC 3501
 * 6.4.5), so memory stays bounded whatever the message's size.  On success
 * msg_r is spooled from fd with body_len bytes.  Returns 1 when the message is
 * gone (expunged).  IMAP_ELIMIT (session broken) when the server sends more
 * than the RFC822.SIZE it announced plus max(64 KiB, 1%), or more than asked
 * for in one part; each part is a literal held to max_literal, the whole
 * message is not (a message larger than max_literal travels in parts).
 * IMAP_EPROTO when the reply carries UID 0 or another UID. */
int imap_fetch_body_to_file(struct imap_session *session, uint32_t uid, int fd, size_t chunk,
                            struct imap_msg *msg_r, char *err, size_t errlen);
/* UID FETCH first:last (UID FLAGS) [CHANGEDSINCE modseq] (RFC 7162) when changedsince != 0. */
int imap_fetch_flags(struct imap_session *session, uint32_t first, uint32_t last,
                     uint64_t changedsince, struct imap_batch *batch_r, char *err, size_t errlen);

/* FETCH <seq> (UID): the UID of the message at sequence number seq in the
 * selected folder.  Returns 1 (not an error) when there is no such message
 * (the folder shrank).  The worker's UID walks use it to jump over empty UID
 * ranges by a binary search over sequence numbers: the cost follows the
 * messages a folder holds, not the UIDs its server claims. */
int imap_fetch_uid_at(struct imap_session *session, uint32_t seq, uint32_t *uid_r, char *err,
                      size_t errlen);

/* UID STORE <uids> FLAGS.SILENT (<flags>) in the selected folder.  A flag
 * that is not an atom (or "\" and an atom) is IMAP_EARG, nothing sent. */
int imap_store_flags(struct imap_session *session, const uint32_t *uids, size_t count,
                     const char *flags, char *err, size_t errlen);

/* One flag set for imap_store_flags_many: the UIDs (ascending) that get it. */
struct imap_flag_store {
	const uint32_t *uids;
	size_t count;
	const char *flags; /* space-separated, as imap_store_flags takes them */
};
/* imap_store_flags for many flag sets in the selected folder, pipelined: one
 * round trip per burst of commands, not per flag set; long UID sets are cut
 * into several commands.  Every command is answered before it returns: 0 when
 * all were taken, else the first refusal (IMAP_ENO with the server's words,
 * IMAP_ETHROTTLED), IMAP_EARG before anything is sent when a flag is not
 * valid, or the session's loss. */
int imap_store_flags_many(struct imap_session *session, const struct imap_flag_store *stores,
                          size_t n, char *err, size_t errlen);

/* Result of appending one message. */
struct imap_append_result {
	uint32_t dst_uid; /* from APPENDUID (RFC 4315), 0 if unknown or failed */
	char error[256];  /* server's words when refused, "" when stored */
	/* Not stored because the server asked us to slow down: not a fault of
	 * the message, append it again after imap_session_backoff_s().  error
	 * is set as well, so a caller that ignores this sees a refusal. */
	bool throttled;
};

/* Appends the messages to the folder, keeping flags and INTERNALDATE: one
 * MULTIAPPEND command (RFC 3502) when offered, else APPENDs pipelined with
 * LITERAL+ (RFC 7888), else one by one.  A message the server refuses gets its
 * error in results[i] and the rest go on.  A throttled answer marks the result
 * throttled instead; a throttled MULTIAPPEND marks all its messages, and one by
 * one, the messages after a throttled one are not sent and are marked
 * throttled too (pipelined, they were already sent and each gets its own
 * answer); the session stays usable.  The return value is negative only when
 * the session broke: IMAP_ETHROTTLED for a BYE telling of load, IMAP_ELIMIT
 * for a reply over a bound, else IMAP_ENET (some messages may then have been
 * stored: the caller re-matches from its intent); or IMAP_EARG, nothing sent,
 * when the folder name cannot be sent.  A message whose flags are not atoms or
 * whose INTERNALDATE is not a date-time gets an error in its result (not sent). */
int imap_append_batch(struct imap_session *session, const char *folder, const struct imap_msg *msgs,
                      size_t count, struct imap_append_result *results, char *err, size_t errlen);

/* A MULTIAPPEND written but not yet answered: several can be on the way at
 * once on one session, so the server appends one batch while the next is
 * already there (a WAN link's round trip is then not paid per batch). */
struct imap_append_pending {
	unsigned int tag;
	size_t *idx, n, count; /* the messages sent: indexes into msgs (n of count) */
	bool sent;
	char *answer; /* its tagged answer, when read while waiting for another's */
};
/* Whether imap_append_send may be used: MULTIAPPEND, LITERAL+ and UIDPLUS. */
bool imap_append_can_pipeline(const struct imap_session *session);
/* Writes msgs as one MULTIAPPEND (LITERAL+) without waiting for the answer.
 * Messages that cannot be sent get their error in results at once (as in
 * imap_append_batch); results must live until imap_append_finish.  0, or the
 * session's loss (IMAP_ENET), IMAP_EARG (nothing sent), -1. */
int imap_append_send(struct imap_session *session, const char *folder, const struct imap_msg *msgs,
                     size_t count, struct imap_append_result *results,
                     struct imap_append_pending *p, char *err, size_t errlen);
/* Reads p's answer (keeping those of others read on the way) and fills the
 * destination UIDs of results.  0 stored; IMAP_ENO: the MULTIAPPEND was
 * refused whole and nothing of it stored (RFC 3502), the server's words in
 * err; IMAP_ETHROTTLED (results marked throttled); IMAP_ENET, IMAP_ELIMIT.
 * Frees p's memory in every case. */
int imap_append_finish(struct imap_session *session, struct imap_append_pending *p,
                       struct imap_append_pending *const *others, size_t nothers,
                       struct imap_append_result *results, char *err, size_t errlen);
void imap_append_pending_free(struct imap_append_pending *p);

/* Formats ascending UIDs as an IMAP sequence set ("1:5,7") into buf. */
int imap_uidset_format(const uint32_t *uids, size_t count, char *buf, size_t buflen);

#endif
