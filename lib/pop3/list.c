/* The maildrop's listing: UIDL and LIST, matched by message number, each
 * unique-id checked (RFC 1939 7) and never given to two messages. */
#include "pop3-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the lines of a listing ("n word") after its +OK up to ".": each
 * calls per(ctx, n, word).  Bounded by POP3_MAX_LISTING lines. */
static int pop3_listing(struct pop3_session *s, const char *what,
                        int (*per)(void *ctx, uint32_t n, const char *word), void *ctx, char *err,
                        size_t errlen)
{
	char line[POP3_MAX_LINE], text[320];

	for (size_t count = 0;; count++) {
		int ret = pop3_read_line(s, line, sizeof(line), what, err, errlen);
		char *end;
		unsigned long n;

		if (ret < 0)
			return ret;
		if (strcmp(line, ".") == 0)
			return 0;
		if (count >= POP3_MAX_LISTING)
			return pop3_bad(s, IMAP_ELIMIT, err, errlen, "listed more than %d messages",
			                POP3_MAX_LISTING);
		errno = 0;
		n = strtoul(line, &end, 10);
		if (end == line || *end != ' ' || errno != 0 || n == 0 || n > UINT32_MAX ||
		    per(ctx, (uint32_t)n, end + 1) < 0) {
			pop3_shown(line, text, sizeof(text));
			return pop3_bad(s, IMAP_EPROTO, err, errlen,
			                "sent an invalid %s line: \"%s\"", what, text);
		}
	}
}

struct list_ctx {
	struct pop3_entry *e;
	size_t count, cap;
	bool sizes; /* LIST: sizes into the entries UIDL made */
	size_t at;  /* LIST: the entry the next line's message number is sought from */
};

/* A unique-id: 1..70 characters 0x21..0x7E (RFC 1939 7). */
static bool uidl_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > POP3_UIDL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return false;
	return true;
}

static int list_add(void *context, uint32_t n, const char *word)
{
	struct list_ctx *c = context;

	if (c->sizes) {
		char *end;
		unsigned long size;
		errno = 0;
		size = strtoul(word, &end, 10);
		if (end == word || errno != 0 || size > UINT32_MAX)
			return -1;
		/* Both listings come in message-number order: one walk. */
		while (c->at < c->count && c->e[c->at].msgno < n)
			c->at++;
		if (c->at == c->count || c->e[c->at].msgno != n)
			return -1;
		c->e[c->at++].size = (uint32_t)size;
		return 0;
	}
	if (!uidl_valid(word) || (c->count > 0 && c->e[c->count - 1].msgno >= n))
		return -1;
	if (c->count == c->cap) {
		size_t cap = c->cap > 0 ? c->cap * 2 : 256;
		struct pop3_entry *e = realloc(c->e, cap * sizeof(*e));
		if (e == NULL)
			return -1;
		c->e = e;
		c->cap = cap;
	}
	c->e[c->count].msgno = n;
	c->e[c->count].size = UINT32_MAX; /* until LIST says */
	snprintf(c->e[c->count].uidl, sizeof(c->e[c->count].uidl), "%s", word);
	c->count++;
	return 0;
}

static int uidl_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pop3_entry *)a)->uidl, ((const struct pop3_entry *)b)->uidl);
}

static int msgno_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct pop3_entry *)a)->msgno;
	uint32_t y = ((const struct pop3_entry *)b)->msgno;

	return x < y ? -1 : x > y;
}

int pop3_list(struct pop3_session *session, struct pop3_entry **entries_r, size_t *count_r,
              char *err, size_t errlen)
{
	struct list_ctx c = {0};
	char line[POP3_MAX_LINE];
	int ret;

	*entries_r = NULL;
	*count_r = 0;
	ret = pop3_command(session, "UIDL\r\n", "UIDL", line, sizeof(line), err, errlen);
	if (ret == 0)
		ret = pop3_listing(session, "UIDL", list_add, &c, err, errlen);
	if (ret == 0) {
		c.sizes = true;
		ret = pop3_command(session, "LIST\r\n", "LIST", line, sizeof(line), err, errlen);
	}
	/* LIST's lines are matched to UIDL's by message number. */
	if (ret == 0)
		ret = pop3_listing(session, "LIST", list_add, &c, err, errlen);
	for (size_t i = 0; ret == 0 && i < c.count; i++)
		if (c.e[i].size == UINT32_MAX)
			ret = pop3_bad(session, IMAP_EPROTO, err, errlen,
			               "listed message %" PRIu32 " in UIDL but not in LIST",
			               c.e[i].msgno);
	if (ret == 0 && c.count > 1) {
		/* Two messages with one unique-id would share a pseudo UID. */
		qsort(c.e, c.count, sizeof(*c.e), uidl_cmp);
		for (size_t i = 1; ret == 0 && i < c.count; i++)
			if (strcmp(c.e[i - 1].uidl, c.e[i].uidl) == 0)
				ret = pop3_bad(session, IMAP_EPROTO, err, errlen,
				               "gave the unique-id \"%s\" to two messages",
				               c.e[i].uidl);
		qsort(c.e, c.count, sizeof(*c.e), msgno_cmp);
	}
	if (ret < 0) {
		free(c.e);
		return ret;
	}
	*entries_r = c.e;
	*count_r = c.count;
	return 0;
}

/* The bound of a message's bytes: what LIST said and a margin. */
