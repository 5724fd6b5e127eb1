/* The server's byte stream framed as IMAP, without parsing it: lines, and
 * literals announced by "{N}", "{N+}" or "~{N}" at a line's end.  The
 * transport feeds it every byte it reads, so that a line longer than
 * max_line or a literal larger than max_literal fails the read before those
 * bytes reach libetpan (which would allocate a literal's announced size).
 *
 * A resp-text that happens to end in "{N}" is taken for a literal
 * announcement, as libetpan's line reader would not: such a server only gets
 * its bounds applied to the wrong bytes; it cannot get past them. */
#ifndef MAILSHIFT_IMAP_FRAMING_H
#define MAILSHIFT_IMAP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a line's end kept to find a literal announcement ("{N+}"). */
#define IMAP_FRAMING_TAIL 32

struct imap_framing {
	size_t max_line;      /* set by the owner */
	uint64_t max_literal; /* set by the owner */
	/* Outside a literal, the length of the current line and its last bytes;
	 * inside, the bytes left. */
	bool in_literal;
	uint64_t literal_left;
	size_t line_len;
	char tail[IMAP_FRAMING_TAIL];
	size_t tail_len;
};

/* Follows len more bytes of the server's.  0, or -1 when they break a bound,
 * with why to be written after the server's "host:port" (": reply line
 * longer than N bytes", " announced a literal of N bytes, ..."). */
int imap_framing_feed(struct imap_framing *f, const char *buf, size_t len, char *why,
                      size_t whylen);

#endif
