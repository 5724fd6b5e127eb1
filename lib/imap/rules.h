/* Folder mapping rules an operator sets (the plan's "folder_rules" of a source
 * profile, the accounts CSV's folder_map column): a source folder's path
 * renamed before it is mapped to the destination.  Rules see the path as
 * UTF-8, levels joined by '/', without the source's personal prefix, and give
 * a path of the same form; imap_rules_dst_name turns it into the
 * destination's name.  The first rule that matches wins.
 *
 * Rules travel (PostgreSQL, the worker) as text, one rule per line:
 *   =FROM<TAB>TO   the folder FROM and its subfolders: FROM/x becomes TO/x
 *   ~REGEX<TAB>TO  a POSIX extended regular expression matching the whole
 *                  path; \1 .. \9 in TO are its groups */
#ifndef MAILSHIFT_IMAP_RULES_H
#define MAILSHIFT_IMAP_RULES_H

#include "names.h"

#include <stddef.h>

struct imap_rule;

struct imap_rules {
	struct imap_rule *v;
	size_t n;
};

/* Parses rules text ("" or NULL: no rules).  0, or -1 with err naming the
 * rule (its line) and what is wrong. */
int imap_rules_parse(const char *text, struct imap_rules *rules, char *err, size_t errlen);
void imap_rules_free(struct imap_rules *rules);

/* 1 if a rule renamed path (out holds the new path), 0 if none matched, -1 if
 * out is too small or the result is not a valid path (empty, or an empty
 * level). */
int imap_rules_apply(const struct imap_rules *rules, const char *path, char *out, size_t outlen);

/* A source folder's path as rules see it: decoded from modified UTF-7,
 * without the side's prefix, levels joined by '/' (a '/' inside a level
 * becomes '_').  -1 on a malformed name or a short buffer. */
int imap_rules_src_path(const char *name, const struct imap_names_side *side, char *out,
                        size_t outlen);

/* The destination's name for a path: levels joined by the destination's
 * delimiter (one inside a level becomes '_'; a flat namespace joins them with
 * '_'), encoded in modified UTF-7, after the destination's prefix; "INBOX"
 * stays INBOX.  -1 if out is too small. */
int imap_rules_dst_name(const char *path, const struct imap_names_side *side, char *out,
                        size_t outlen);

/* Modified UTF-7 (RFC 3501 5.1.3) of a UTF-8 string; -1 on invalid UTF-8 or a
 * short buffer. */
int imap_name_encode(const char *utf8, char *out, size_t outlen);

#endif
