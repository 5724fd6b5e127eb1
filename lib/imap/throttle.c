/* Classification of "slow down" answers; pure, no session state. */
#include "throttle.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest wait we take from a server: a larger one is a server bug. */
#define BACKOFF_MAX_S 86400

/* Length of the word at p (up to a space, ']' or the end). */
static size_t word_len(const char *p)
{
	size_t n = 0;

	while (p[n] != '\0' && p[n] != ' ' && p[n] != ']' && p[n] != '\r' && p[n] != '\n')
		n++;
	return n;
}

static bool word_is(const char *p, size_t len, const char *word)
{
	return len == strlen(word) && strncasecmp(p, word, len) == 0;
}

static bool is_status(const char *p, size_t len)
{
	return word_is(p, len, "OK") || word_is(p, len, "NO") || word_is(p, len, "BAD") ||
	       word_is(p, len, "BYE") || word_is(p, len, "PREAUTH");
}

/* Exchange/Office 365: "Suggested Backoff Time: 2000 milliseconds".  Returns
 * the wait in seconds, or -1 when the phrase is absent. */
static int backoff_parse(const char *text)
{
	static const char phrase[] = "suggested backoff time";
	const char *p = strcasestr(text, phrase);
	unsigned long long n;
	size_t unit;
	char *end;

	if (p == NULL)
		return -1;
	p += sizeof(phrase) - 1;
	while (*p == ' ' || *p == ':')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	n = strtoull(p, &end, 10);
	p = end;
	while (*p == ' ')
		p++;
	unit = 0;
	while (isalpha((unsigned char)p[unit]))
		unit++;
	if (word_is(p, unit, "ms") || word_is(p, unit, "msec") || word_is(p, unit, "msecs") ||
	    word_is(p, unit, "millisecond") || word_is(p, unit, "milliseconds"))
		n = n / 1000 + (n % 1000 != 0);
	/* "s", "sec", "seconds" or no unit: seconds. */
	return n > BACKOFF_MAX_S ? BACKOFF_MAX_S : (int)n;
}

static bool load_words(const char *text)
{
	static const char *const words[] = {"too many",        "busy",       "overload",
	                                    "try again later", "rate limit", "throttl"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(text, words[i]) != NULL)
			return true;
	return false;
}

bool imap_throttle_classify(const char *text, int *backoff_s_r)
{
	const char *p = text, *code = NULL;
	size_t len, code_len = 0;
	bool bye, throttled;
	int backoff;

	while (*p == ' ')
		p++;
	len = word_len(p);
	if (!is_status(p, len)) {
		/* The tag ("a1", "*"), then the status. */
		p += len;
		while (*p == ' ')
			p++;
		len = word_len(p);
	}
	if (!word_is(p, len, "NO") && !word_is(p, len, "BAD") && !word_is(p, len, "BYE"))
		return false;
	bye = word_is(p, len, "BYE");
	p += len;
	while (*p == ' ')
		p++;
	/* resp-text = ["[" resp-text-code "]" SP] text (RFC 3501 9). */
	if (*p == '[') {
		code = p + 1;
		code_len = word_len(code);
	}
	if (code != NULL && word_is(code, code_len, "LIMIT"))
		return false;
	backoff = backoff_parse(p);
	throttled = (code != NULL && (word_is(code, code_len, "THROTTLED") ||
	                              word_is(code, code_len, "UNAVAILABLE"))) ||
	            backoff >= 0 || (bye && load_words(p));
	if (throttled && backoff_s_r != NULL)
		*backoff_s_r = backoff > 0 ? backoff : 0;
	return throttled;
}
