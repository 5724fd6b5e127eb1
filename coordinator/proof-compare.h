/* The pure core of a proof of completeness: one folder's messages on both
 * sides compared, message by message, into named differences.  No server,
 * no store: tests/unit/test_proof_compare.c reaches it directly. */
#ifndef MAILSHIFT_PROOF_COMPARE_H
#define MAILSHIFT_PROOF_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROOF_HASH_LEN 32

/* One message as fetched from either side. */
struct proof_msg {
	uint32_t uid;
	uint32_t size;                      /* RFC822.SIZE */
	unsigned char hash[PROOF_HASH_LEN]; /* identity: imap_msg_hash */
	char flags[256];                    /* space separated, \Recent left out */
	char date[40];                      /* INTERNALDATE as the server wrote it */
};

/* What the worker recorded about a source UID. */
struct proof_map {
	uint32_t src, dst; /* uid_map: the copy of src is dst */
};
struct proof_note {
	uint32_t src_uid;
	const char *keywords; /* keywords dropped (space separated), or NULL */
	const char *error;    /* the destination's words, or the message error */
};

enum proof_kind {
	PROOF_MISSING,       /* on the source, not on the destination */
	PROOF_DUPLICATE,     /* on the destination more than once */
	PROOF_EXTRA,         /* on the destination only */
	PROOF_FLAGS,         /* same message, other flags */
	PROOF_DATE_REPLACED, /* same message, another INTERNALDATE */
	PROOF_KEYWORDS,      /* same message, without keywords the destination refused */
	PROOF_SIZE,          /* same identity, another RFC822.SIZE (line endings) */
};
/* "missing", "duplicate", "extra", "flags", "internal_date_replaced",
 * "keywords_dropped", "size". */
const char *proof_kind_name(enum proof_kind kind);

struct proof_diff {
	enum proof_kind kind;
	uint32_t src_uid, dst_uid; /* 0 where the side has none */
	char src[300], dst[300];   /* the differing values, "" where none */
	char detail[512];
};

struct proof_result {
	struct proof_diff *diffs; /* caller frees (proof_result_free) */
	size_t count;
	size_t matched;                 /* source messages found on the destination */
	size_t missing, extra, changed; /* extra counts duplicates too */
};
void proof_result_free(struct proof_result *r);

/* Compares a folder: src and dst each ascending by UID (as fetched).  A
 * source message is matched first through the UID map (if the mapped UID
 * holds the same identity), else with any destination message of the same
 * identity not matched yet.  Every destination message left over is a
 * duplicate (its identity is on the source) or extra.  A matched pair may
 * differ in size, flags (keywords_dropped when exactly the keywords recorded
 * as refused are gone) and INTERNALDATE (internal_date_replaced).  errors:
 * the message errors, quoted for a missing message; dropped: keywords
 * dropped.  Both ascending by src_uid.  0, or -1 out of memory. */
int proof_compare(const struct proof_msg *src, size_t nsrc, const struct proof_msg *dst,
                  size_t ndst, const struct proof_map *map, size_t nmap,
                  const struct proof_note *errors, size_t nerrors, const struct proof_note *dropped,
                  size_t ndropped, struct proof_result *r);

/* INTERNALDATE "dd-Mon-yyyy hh:mm:ss +zzzz" as seconds since the epoch;
 * false when it does not parse. */
bool proof_date_parse(const char *s, int64_t *t_r);

#endif
