/* Folder mapping rules (rules.h): parsing their text form, applying them to a
 * path, and the conversions between a server's folder names and paths. */
#include "rules.h"

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct imap_rule {
	bool regex;
	char *from, *to;
	regex_t re; /* "^(FROM)$": group n of the operator's is n + 1 here */
};

void imap_rules_free(struct imap_rules *rules)
{
	for (size_t i = 0; i < rules->n; i++) {
		if (rules->v[i].regex)
			regfree(&rules->v[i].re);
		free(rules->v[i].from);
		free(rules->v[i].to);
	}
	free(rules->v);
	rules->v = NULL;
	rules->n = 0;
}

static int rule_parse(struct imap_rule *r, const char *line, size_t len, int lineno, char *err,
                      size_t errlen)
{
	const char *tab = memchr(line, '\t', len);

	if (len < 2 || (line[0] != '=' && line[0] != '~') || tab == NULL || tab == line + 1 ||
	    tab + 1 == line + len) {
		snprintf(err, errlen, "folder rule %d: not \"=FROM<TAB>TO\" or \"~REGEX<TAB>TO\"",
		         lineno);
		return -1;
	}
	r->regex = line[0] == '~';
	r->from = strndup(line + 1, (size_t)(tab - line - 1));
	r->to = strndup(tab + 1, (size_t)(line + len - tab - 1));
	if (r->from == NULL || r->to == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!r->regex)
		return 0;
	size_t n = strlen(r->from) + 5;
	char *anchored = malloc(n);
	if (anchored == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(anchored, n, "^(%s)$", r->from);
	int rc = regcomp(&r->re, anchored, REG_EXTENDED);
	free(anchored);
	if (rc != 0) {
		char why[128];
		regerror(rc, &r->re, why, sizeof(why));
		snprintf(err, errlen, "folder rule %d: regular expression \"%.200s\": %s", lineno,
		         r->from, why);
		r->regex = false; /* nothing to regfree */
		return -1;
	}
	/* \N beyond the expression's groups would copy nothing silently. */
	for (const char *p = r->to; *p != '\0'; p++)
		if (p[0] == '\\' && p[1] >= '1' && p[1] <= '9' &&
		    (size_t)(p[1] - '0') > r->re.re_nsub - 1) {
			snprintf(
			    err, errlen,
			    "folder rule %d: \"%.200s\" names group \\%c, the expression has %zu",
			    lineno, r->to, p[1], r->re.re_nsub - 1);
			return -1;
		}
	return 0;
}

int imap_rules_parse(const char *text, struct imap_rules *rules, char *err, size_t errlen)
{
	size_t cap = 0;
	int lineno = 0;

	rules->v = NULL;
	rules->n = 0;
	if (text == NULL)
		return 0;
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		lineno++;
		if (len > 0) {
			if (rules->n == cap) {
				size_t ncap = cap > 0 ? cap * 2 : 4;
				struct imap_rule *v = realloc(rules->v, ncap * sizeof(*v));
				if (v == NULL) {
					snprintf(err, errlen, "out of memory");
					imap_rules_free(rules);
					return -1;
				}
				rules->v = v;
				cap = ncap;
			}
			memset(&rules->v[rules->n], 0, sizeof(rules->v[0]));
			rules->n++;
			if (rule_parse(&rules->v[rules->n - 1], p, len, lineno, err, errlen) < 0) {
				imap_rules_free(rules);
				return -1;
			}
		}
		p += len + (nl != NULL);
	}
	return 0;
}

static bool path_valid(const char *path)
{
	size_t len = strlen(path);

	return len > 0 && path[0] != '/' && path[len - 1] != '/' && strstr(path, "//") == NULL;
}

/* TO with \N replaced by the groups of the match. */
static int substitute(const char *to, const char *path, const regmatch_t *m, char *out,
                      size_t outlen)
{
	size_t len = 0;

	for (const char *p = to; *p != '\0'; p++) {
		const char *s = p;
		size_t n = 1;
		if (p[0] == '\\' && p[1] >= '1' && p[1] <= '9') {
			const regmatch_t *g = &m[p[1] - '0' + 1];
			s = g->rm_so >= 0 ? path + g->rm_so : "";
			n = g->rm_so >= 0 ? (size_t)(g->rm_eo - g->rm_so) : 0;
			p++;
		} else if (p[0] == '\\' && p[1] == '\\') {
			p++;
		}
		if (len + n >= outlen)
			return -1;
		memcpy(out + len, s, n);
		len += n;
	}
	out[len] = '\0';
	return 0;
}

int imap_rules_apply(const struct imap_rules *rules, const char *path, char *out, size_t outlen)
{
	for (size_t i = 0; i < rules->n; i++) {
		const struct imap_rule *r = &rules->v[i];
		int n;

		if (r->regex) {
			regmatch_t m[11];
			if (regexec(&r->re, path, 11, m, 0) != 0)
				continue;
			if (substitute(r->to, path, m, out, outlen) < 0)
				return -1;
		} else {
			size_t flen = strlen(r->from);
			/* INBOX in any case, as servers name it. */
			bool same = strcmp(r->from, "INBOX") == 0
			                ? strncasecmp(path, "INBOX", 5) == 0
			                : strncmp(path, r->from, flen) == 0;
			if (!same || (path[flen] != '\0' && path[flen] != '/'))
				continue;
			n = snprintf(out, outlen, "%s%s", r->to, path + flen);
			if (n < 0 || (size_t)n >= outlen)
				return -1;
		}
		return path_valid(out) ? 1 : -1;
	}
	return 0;
}

int imap_rules_src_path(const char *name, const struct imap_names_side *side, char *out,
                        size_t outlen)
{
	const char *sp = side->prefix != NULL ? side->prefix : "";
	char decoded[1024];

	if (sp[0] != '\0' && strncmp(name, sp, strlen(sp)) == 0)
		name += strlen(sp);
	if (imap_name_decode(name, decoded, sizeof(decoded)) < 0 || strlen(decoded) >= outlen)
		return -1;
	for (size_t i = 0;; i++) {
		char c = decoded[i];
		if (c == '/' && side->delimiter != '/')
			c = '_';
		else if (side->delimiter != '\0' && c == side->delimiter)
			c = '/';
		out[i] = c;
		if (c == '\0')
			break;
	}
	return 0;
}

int imap_rules_dst_name(const char *path, const struct imap_names_side *side, char *out,
                        size_t outlen)
{
	const char *dp = side->prefix != NULL ? side->prefix : "";
	char joined[1024];
	size_t i;

	if (strcasecmp(path, "INBOX") == 0) {
		int n = snprintf(out, outlen, "INBOX");
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	for (i = 0; path[i] != '\0'; i++) {
		char c = path[i];
		if (i + 1 >= sizeof(joined))
			return -1;
		if (c == '/')
			c = side->delimiter != '\0' ? side->delimiter : '_';
		else if (side->delimiter != '\0' && c == side->delimiter)
			c = '_';
		joined[i] = c;
	}
	joined[i] = '\0';
	size_t plen = strlen(dp);
	if (plen >= outlen)
		return -1;
	memcpy(out, dp, plen);
	return imap_name_encode(joined, out + plen, outlen - plen);
}

/* One code point from UTF-8 at *p (advanced); -1 if malformed. */
static int32_t utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t cp;
	int more;

	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	if ((s[0] & 0xE0) == 0xC0) {
		cp = s[0] & 0x1F;
		more = 1;
	} else if ((s[0] & 0xF0) == 0xE0) {
		cp = s[0] & 0x0F;
		more = 2;
	} else if ((s[0] & 0xF8) == 0xF0) {
		cp = s[0] & 0x07;
		more = 3;
	} else {
		return -1;
	}
	for (int k = 1; k <= more; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return -1;
		cp = cp << 6 | (s[k] & 0x3F);
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000) ||
	    cp < (more == 1   ? 0x80u
	          : more == 2 ? 0x800u
	                      : 0x10000u))
		return -1;
	*p = s + more + 1;
	return (int32_t)cp;
}

int imap_name_encode(const char *utf8, char *out, size_t outlen)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
	const unsigned char *p = (const unsigned char *)utf8;
	size_t len = 0;

#define PUT(c)                                                                                     \
	do {                                                                                       \
		if (len + 1 >= outlen)                                                             \
			return -1;                                                                 \
		out[len++] = (c);                                                                  \
	} while (0)
	while (*p != '\0') {
		if (*p >= 0x20 && *p < 0x7F) {
			PUT((char)*p);
			if (*p == '&')
				PUT('-');
			p++;
			continue;
		}
		/* A run of other characters: UTF-16, modified base64, "&...-". */
		uint32_t bits = 0;
		int nbits = 0;
		PUT('&');
		while (*p != '\0' && !(*p >= 0x20 && *p < 0x7F)) {
			int32_t cp = utf8_next(&p);
			uint16_t units[2];
			int nunits = 1;
			if (cp < 0)
				return -1;
			if (cp >= 0x10000) {
				units[0] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
				units[1] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
				nunits = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int k = 0; k < nunits; k++) {
				bits = bits << 16 | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					PUT(b64[(bits >> nbits) & 0x3F]);
				}
			}
		}
		if (nbits > 0)
			PUT(b64[(bits << (6 - nbits)) & 0x3F]);
		PUT('-');
	}
#undef PUT
	out[len] = '\0';
	return 0;
}
