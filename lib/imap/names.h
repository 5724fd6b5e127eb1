/* Folder names: mapping a source folder to its destination name, exclusions,
 * and modified UTF-7 (RFC 3501 5.1.3) decoding for display and matching. */
#ifndef MAILSHIFT_IMAP_NAMES_H
#define MAILSHIFT_IMAP_NAMES_H

#include "imap.h"

#include <stdbool.h>
#include <stddef.h>

struct imap_names_side {
	char delimiter;     /* hierarchy delimiter, '\0' for a flat namespace */
	const char *prefix; /* personal namespace prefix ("" or e.g. "INBOX.") */
};

/* Maps a source folder name to the destination's:
 *  - INBOX stays INBOX;
 *  - a special-use source folder (\Sent, \Drafts, \Trash, \Junk, \Archive) maps
 *    to the destination folder with the same attribute, if there is one;
 *  - otherwise the path is kept: the source prefix is removed, components are
 *    joined with the destination delimiter and the destination prefix is put in
 *    front.  A destination delimiter inside a component becomes '_' (it would
 *    otherwise split the name), and the name stays in modified UTF-7.
 * Returns -1 if out is too small. */
int imap_name_map(const struct imap_folder *src, const struct imap_names_side *src_side,
                  const struct imap_folder *dst_folders, size_t ndst,
                  const struct imap_names_side *dst_side, char *out, size_t outlen);

/* Decodes modified UTF-7 into UTF-8; -1 on malformed input or a short buffer. */
int imap_name_decode(const char *mutf7, char *out, size_t outlen);

/* True if the folder (decoded name, or raw name) or one of its parents is in
 * the comma-separated exclusion list (case-sensitive except INBOX). */
bool imap_name_excluded(const char *name, char delimiter, const char *exclude_csv);

#endif
