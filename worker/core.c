/* The pure pieces of the account copy, apart from the protocol steps that
 * use them so that unit tests (tests/unit/test_worker_core.c) can reach them
 * without a server or a store: batch cutting (batch.c), message identity
 * (identity.c) and flag comparison (flags.c).  Declared in sync-private.h. */
#include "sync-private.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

bool batch_cut(const struct imap_batch *sizes, size_t *i, size_t max_count, size_t max_bytes,
               uint64_t max_message, uint32_t *uids, size_t *n_r, size_t *bytes_r)
{
	bool spool;
	size_t n = 0, bytes = 0;

	assert(*i < sizes->count);
	/* A message over the batch byte limit travels alone, spooled. */
	spool = sizes->msgs[*i].size > max_bytes;
	while (*i < sizes->count && n < max_count && !(n > 0 && spool) &&
	       (n == 0 || bytes + sizes->msgs[*i].size <= max_bytes) &&
	       (max_message == 0 || sizes->msgs[*i].size <= max_message)) {
		bytes += sizes->msgs[*i].size;
		uids[n++] = sizes->msgs[(*i)++].uid;
	}
	*n_r = n;
	*bytes_r = bytes;
	return spool;
}

/* Message identity: the rule lives in lib/imap (imap_msg_hash), shared with
 * the coordinator's proof of completeness. */
int hash_msg(const struct imap_msg *m, unsigned char out[HASH_LEN])
{
	return imap_msg_hash(m, out);
}

static int word_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted set of flag words, for comparing two flag lists.  Every word counts,
 * however long and however many. */
void flags_normalize(const char *in, char *out, size_t outlen)
{
	size_t inlen = strlen(in), n = 0, len = 0;
	char *copy = malloc(inlen + 1);
	/* A word and its space take two bytes at least. */
	char **words = malloc((inlen / 2 + 1) * sizeof(*words));

	if (copy == NULL || words == NULL) {
		/* The list as it is: at worst an unneeded STORE. */
		snprintf(out, outlen, "%s", in);
		free(copy);
		free(words);
		return;
	}
	memcpy(copy, in, inlen + 1);
	for (char *p = copy; *p != '\0';) {
		size_t w = strcspn(p, " ");
		if (w > 0)
			words[n++] = p;
		p += w;
		while (*p == ' ')
			*p++ = '\0';
	}
	qsort(words, n, sizeof(*words), word_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < n && len < outlen; i++)
		len +=
		    (size_t)snprintf(out + len, outlen - len, "%s%s", i > 0 ? " " : "", words[i]);
	free(words);
	free(copy);
}

int internaldate_epoch(const char *s, int64_t *epoch_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4];
	int day, year, h, m, sec, zone, n = 0;
	const char *found;
	struct tm tm = {0};

	if (sscanf(s, " %2d-%3s-%4d %2d:%2d:%2d %5d%n", &day, mon, &year, &h, &m, &sec, &zone,
	           &n) != 7 ||
	    s[n] != '\0' || strlen(mon) != 3 || (found = strstr(months, mon)) == NULL ||
	    (found - months) % 3 != 0 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	tm.tm_mday = day;
	tm.tm_mon = (int)(found - months) / 3;
	tm.tm_year = year - 1900;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	/* +hhmm east of UTC: UTC is the local time minus the offset. */
	int offset = (zone < 0 ? -1 : 1) * ((abs(zone) / 100) * 3600 + (abs(zone) % 100) * 60);
	*epoch_r = (int64_t)timegm(&tm) - offset;
	return 0;
}

int day_epoch(const char *s, int64_t *epoch_r)
{
	struct tm tm = {0};
	int y, mo, d, n = 0;

	if (s == NULL || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || s[n] != '\0')
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	*epoch_r = (int64_t)timegm(&tm);
	return 0;
}
