/* The server's byte stream framed as IMAP (framing.h). */
#include "framing.h"

#include <stdio.h>
#include <string.h>

/* The literal announced at the end of the line in f->tail, if any. */
static bool tail_literal(const struct imap_framing *f, uint64_t *size_r, bool *overflow_r)
{
	size_t end = f->tail_len, i;
	uint64_t n = 0;

	*overflow_r = false;
	if (end > 0 && f->tail[end - 1] == '\r')
		end--;
	if (end < 3 || f->tail[end - 1] != '}')
		return false;
	i = end - 1;
	if (f->tail[i - 1] == '+')
		i--;
	while (i > 0 && f->tail[i - 1] >= '0' && f->tail[i - 1] <= '9')
		i--;
	if (i == 0 || f->tail[i - 1] != '{' || f->tail[i] < '0' || f->tail[i] > '9')
		return false;
	for (size_t k = i; f->tail[k] >= '0' && f->tail[k] <= '9'; k++) {
		if (n > (UINT64_MAX - 9) / 10) {
			*overflow_r = true;
			n = UINT64_MAX;
			break;
		}
		n = n * 10 + (uint64_t)(f->tail[k] - '0');
	}
	*size_r = n;
	return true;
}

static void tail_add(struct imap_framing *f, const char *p, size_t n)
{
	if (n >= IMAP_FRAMING_TAIL) {
		memcpy(f->tail, p + n - IMAP_FRAMING_TAIL, IMAP_FRAMING_TAIL);
		f->tail_len = IMAP_FRAMING_TAIL;
		return;
	}
	if (f->tail_len + n > IMAP_FRAMING_TAIL) {
		size_t drop = f->tail_len + n - IMAP_FRAMING_TAIL;
		memmove(f->tail, f->tail + drop, f->tail_len - drop);
		f->tail_len -= drop;
	}
	memcpy(f->tail + f->tail_len, p, n);
	f->tail_len += n;
}

int imap_framing_feed(struct imap_framing *f, const char *buf, size_t len, char *why, size_t whylen)
{
	size_t off = 0;

	while (off < len) {
		if (f->in_literal) {
			uint64_t take = len - off < f->literal_left ? len - off : f->literal_left;
			f->literal_left -= take;
			off += (size_t)take;
			if (f->literal_left == 0)
				f->in_literal = false;
			continue;
		}
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t seg = (nl != NULL ? (size_t)(nl - (buf + off)) : len - off);
		uint64_t size;
		bool overflow;

		f->line_len += seg;
		if (f->line_len > f->max_line) {
			snprintf(why, whylen, ": reply line longer than %zu bytes", f->max_line);
			return -1;
		}
		tail_add(f, buf + off, seg);
		off += seg;
		if (nl == NULL)
			break;
		off++; /* the LF */
		if (tail_literal(f, &size, &overflow)) {
			if (overflow) {
				snprintf(why, whylen,
				         " announced a literal whose size does not fit in 64 bits,"
				         " more than the limit of %llu",
				         (unsigned long long)f->max_literal);
				return -1;
			}
			if (size > f->max_literal) {
				snprintf(why, whylen,
				         " announced a literal of %llu bytes, more than the limit "
				         "of %llu",
				         (unsigned long long)size,
				         (unsigned long long)f->max_literal);
				return -1;
			}
			f->in_literal = size > 0;
			f->literal_left = size;
		}
		f->line_len = 0;
		f->tail_len = 0;
	}
	return 0;
}
