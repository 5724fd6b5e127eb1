/* Export files cut into objects (dav.h, dav_split).  vCard (RFC 6350) and
 * iCalendar (RFC 5545) are line formats: components open with BEGIN:NAME
 * and close with END:NAME on lines of their own; a property's value may
 * continue on lines that start with a space or a tab (3.1 folding). */
#include "dav.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Most objects a file may hold, and the longest UID used as a name. */
#define SPLIT_MAX_OBJECTS 100000
#define NAME_MAX_UID 180

struct line {
	const char *p; /* the line with its terminator */
	size_t len;    /* up to and with its terminator */
	size_t text;   /* without the terminator */
};

struct lines {
	struct line *v;
	size_t n;
};

static int lines_cut(const char *data, size_t len, struct lines *l)
{
	size_t cap = 0;

	l->v = NULL;
	l->n = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;
		if (l->n == cap) {
			cap = cap > 0 ? cap * 2 : 256;
			struct line *v = realloc(l->v, cap * sizeof(*v));
			if (v == NULL)
				return -1;
			l->v = v;
		}
		struct line *ln = &l->v[l->n++];
		ln->p = data + i;
		ln->len = end - i;
		ln->text = ln->len;
		if (ln->text > 0 && ln->p[ln->text - 1] == '\n')
			ln->text--;
		if (ln->text > 0 && ln->p[ln->text - 1] == '\r')
			ln->text--;
		i = end;
	}
	return 0;
}

/* Whether the line is "WORD:NAME" (without regard to case). */
static bool line_is(const struct line *ln, const char *word, const char *name)
{
	size_t w = strlen(word), n = strlen(name);

	return ln->text == w + 1 + n && strncasecmp(ln->p, word, w) == 0 && ln->p[w] == ':' &&
	       strncasecmp(ln->p + w + 1, name, n) == 0;
}

/* "BEGIN:X" or "END:X": X into name; false otherwise. */
static bool line_marker(const struct line *ln, const char *word, char *name, size_t namelen)
{
	size_t w = strlen(word);

	if (ln->text <= w + 1 || strncasecmp(ln->p, word, w) != 0 || ln->p[w] != ':' ||
	    ln->text - w - 1 >= namelen)
		return false;
	memcpy(name, ln->p + w + 1, ln->text - w - 1);
	name[ln->text - w - 1] = '\0';
	return true;
}

/* The unfolded value of property prop when lines[i] is it; NULL otherwise. */
static char *prop_value(const struct lines *l, size_t i, const char *prop)
{
	const struct line *ln = &l->v[i];
	size_t k = strlen(prop);

	if (ln->text <= k || strncasecmp(ln->p, prop, k) != 0 ||
	    (ln->p[k] != ':' && ln->p[k] != ';'))
		return NULL;
	const char *colon = memchr(ln->p + k, ':', ln->text - k);
	if (colon == NULL)
		return NULL;
	size_t n = ln->text - (size_t)(colon + 1 - ln->p), cap = n + 1;
	char *v = malloc(cap);
	if (v == NULL)
		return NULL;
	memcpy(v, colon + 1, n);
	for (size_t j = i + 1;
	     j < l->n && l->v[j].text > 0 && (l->v[j].p[0] == ' ' || l->v[j].p[0] == '\t'); j++) {
		size_t m = l->v[j].text - 1;
		char *grown = realloc(v, cap + m);
		if (grown == NULL) {
			free(v);
			return NULL;
		}
		v = grown;
		cap += m;
		memcpy(v + n, l->v[j].p + 1, m);
		n += m;
	}
	v[n] = '\0';
	return v;
}

/* FNV-1a 64: a stable name for an object without a usable UID. */
static uint64_t fnv64(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The resource name: the UID with every byte outside the unreserved set of
 * RFC 3986 percent-encoded, so the same UID always names the same resource. */
static char *object_name(const char *uid, const char *data, size_t len, const char *ext)
{
	char buf[3 * NAME_MAX_UID + 32];
	size_t o = 0;

	/* A UID with a path or escape character would make a name servers
	 * read differently ("%2F"): such a UID is hashed instead. */
	if (uid == NULL || uid[0] == '\0' || strlen(uid) > NAME_MAX_UID ||
	    strpbrk(uid, "/\\%?#") != NULL) {
		snprintf(buf, sizeof(buf), "import-%016llx%s",
		         (unsigned long long)(uid != NULL && uid[0] != '\0'
		                                  ? fnv64(uid, strlen(uid))
		                                  : fnv64(data, len)),
		         ext);
		return strdup(buf);
	}
	for (const unsigned char *s = (const unsigned char *)uid; *s != '\0'; s++) {
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' || *s == '~')
			buf[o++] = (char)*s;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%%%02X", *s);
	}
	snprintf(buf + o, sizeof(buf) - o, "%s", ext);
	return strdup(buf);
}

struct out {
	struct dav_split_object *v;
	size_t n, cap;
};

static int out_add(struct out *o, char *uid, char *data, size_t len, const char *ext)
{
	if (o->n == SPLIT_MAX_OBJECTS)
		return -1;
	if (o->n == o->cap) {
		size_t cap = o->cap > 0 ? o->cap * 2 : 64;
		struct dav_split_object *v = realloc(o->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		o->v = v;
		o->cap = cap;
	}
	struct dav_split_object *obj = &o->v[o->n];
	obj->uid = uid;
	obj->data = data;
	obj->len = len;
	obj->name = object_name(uid, data, len, ext);
	if (obj->name == NULL)
		return -1;
	o->n++;
	return 0;
}

void dav_split_free(struct dav_split_object **objs, size_t count)
{
	if (*objs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*objs)[i].uid);
		free((*objs)[i].name);
		free((*objs)[i].data);
	}
	free(*objs);
	*objs = NULL;
}

/* Each BEGIN:VCARD .. END:VCARD at the top level, as it is. */
static int split_vcards(const struct lines *l, struct out *o, char *err, size_t errlen)
{
	char name[64];
	size_t start = 0;
	int depth = 0;
	char *uid = NULL;
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct line *ln = &l->v[i];
		if (line_marker(ln, "BEGIN", name, sizeof(name))) {
			if (depth++ == 0) {
				if (strcasecmp(name, "VCARD") != 0)
					goto bad;
				start = i;
			}
			continue;
		}
		if (line_marker(ln, "END", name, sizeof(name))) {
			if (depth == 0)
				goto bad;
			if (--depth > 0)
				continue;
			const char *p = l->v[start].p;
			size_t len = (size_t)(ln->p + ln->len - p);
			char *data = malloc(len + 1);
			if (data == NULL)
				goto oom;
			memcpy(data, p, len);
			data[len] = '\0';
			if (out_add(o, uid, data, len, ".vcf") < 0) {
				free(data);
				goto oom;
			}
			uid = NULL;
			continue;
		}
		if (depth == 1 && uid == NULL)
			uid = prop_value(l, i, "UID");
		else if (depth == 0 && ln->text > 0)
			goto bad;
	}
	if (depth != 0)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "not a vCard file (line %zu)", i + 1);
	free(uid);
	return -1;
oom:
	snprintf(err, errlen, "out of memory, or more than %d objects", SPLIT_MAX_OBJECTS);
	free(uid);
	return -1;
}

/* A top-level component of a VCALENDAR: its lines and the UID or TZID. */
struct comp {
	size_t first, last; /* line indexes, inclusive */
	char *key;          /* UID of an event, TZID of a time zone */
	bool tz;
	bool used;
};

static void comps_free(struct comp *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].key);
	free(c);
}

/* Appends lines [first, last] to a growing buffer. */
static int buf_lines(char **buf, size_t *len, size_t *cap, const struct lines *l, size_t first,
                     size_t last)
{
	for (size_t i = first; i <= last; i++) {
		const struct line *ln = &l->v[i];
		if (*len + ln->len + 1 > *cap) {
			size_t c = *cap > 0 ? *cap : 1024;
			while (c < *len + ln->len + 1)
				c *= 2;
			char *b = realloc(*buf, c);
			if (b == NULL)
				return -1;
			*buf = b;
			*cap = c;
		}
		memcpy(*buf + *len, ln->p, ln->len);
		*len += ln->len;
		(*buf)[*len] = '\0';
	}
	return 0;
}

/* Whether the components of uid name the time zone tzid in a TZID
 * parameter ("DTSTART;TZID=Europe/Paris:..."). */
static bool names_tz(const struct lines *l, const struct comp *c, size_t nc, const char *uid,
                     const char *tzid)
{
	size_t k = strlen(tzid);

	for (size_t i = 0; i < nc; i++) {
		if (c[i].tz || c[i].key == NULL || strcmp(c[i].key, uid) != 0)
			continue;
		for (size_t j = c[i].first; j <= c[i].last; j++) {
			const char *p = l->v[j].p, *end = p + l->v[j].text;
			while ((p = memmem(p, (size_t)(end - p), "TZID=", 5)) != NULL) {
				p += 5;
				if (p < end && *p == '"')
					p++;
				if ((size_t)(end - p) > k && memcmp(p, tzid, k) == 0 &&
				    (p[k] == ':' || p[k] == ';' || p[k] == '"' || p[k] == ','))
					return true;
			}
		}
	}
	return false;
}

static int split_calendar(const struct lines *l, struct out *o, char *err, size_t errlen)
{
	struct comp *c = NULL;
	size_t nc = 0, cap = 0, hdr_first = SIZE_MAX, hdr_n = 0, end_line = SIZE_MAX;
	size_t *hdr = calloc(l->n + 1, sizeof(*hdr)); /* the calendar's own lines */
	char name[64];
	int depth = 0, ret = -1;

	if (hdr == NULL)
		goto oom;
	for (size_t i = 0; i < l->n; i++) {
		const struct line *ln = &l->v[i];
		bool begin = line_marker(ln, "BEGIN", name, sizeof(name));
		bool end = !begin && line_marker(ln, "END", name, sizeof(name));

		if (begin && depth == 0) {
			if (strcasecmp(name, "VCALENDAR") != 0 || hdr_first != SIZE_MAX)
				goto bad; /* one VCALENDAR per file */
			hdr_first = i;
			depth = 1;
			continue;
		}
		if (begin && depth == 1) {
			if (nc == cap) {
				cap = cap > 0 ? cap * 2 : 32;
				struct comp *g = realloc(c, cap * sizeof(*c));
				if (g == NULL)
					goto oom;
				c = g;
			}
			memset(&c[nc], 0, sizeof(c[nc]));
			c[nc].first = i;
			c[nc].tz = strcasecmp(name, "VTIMEZONE") == 0;
			nc++;
		}
		if (begin) {
			depth++;
			continue;
		}
		if (end) {
			if (depth == 0)
				goto bad;
			if (--depth == 1)
				c[nc - 1].last = i;
			else if (depth == 0)
				end_line = i;
			continue;
		}
		if (depth == 1) {
			/* A property of the calendar: kept, except METHOD. */
			if (!(ln->text >= 7 && strncasecmp(ln->p, "METHOD", 6) == 0 &&
			      (ln->p[6] == ':' || ln->p[6] == ';')) &&
			    !(ln->text > 0 && (ln->p[0] == ' ' || ln->p[0] == '\t') && hdr_n > 0 &&
			      hdr[hdr_n - 1] == SIZE_MAX))
				hdr[hdr_n++] = i;
			else
				hdr[hdr_n++] = SIZE_MAX; /* dropped, with its folded lines */
		} else if (depth == 2 && c[nc - 1].key == NULL) {
			c[nc - 1].key = prop_value(l, i, c[nc - 1].tz ? "TZID" : "UID");
		} else if (depth == 0 && ln->text > 0) {
			goto bad;
		}
	}
	if (depth != 0 || hdr_first == SIZE_MAX)
		goto bad;
	/* One object per UID, in the order the UIDs first appear. */
	for (size_t i = 0; i < nc; i++) {
		if (c[i].tz || c[i].used)
			continue;
		char *buf = NULL, *uid = NULL;
		size_t len = 0, bcap = 0;
		int r = buf_lines(&buf, &len, &bcap, l, hdr_first, hdr_first);
		for (size_t h = 0; r == 0 && h < hdr_n; h++)
			if (hdr[h] != SIZE_MAX)
				r = buf_lines(&buf, &len, &bcap, l, hdr[h], hdr[h]);
		for (size_t t = 0; r == 0 && t < nc; t++)
			if (c[t].tz && c[t].key != NULL && c[i].key != NULL &&
			    names_tz(l, c, nc, c[i].key, c[t].key))
				r = buf_lines(&buf, &len, &bcap, l, c[t].first, c[t].last);
		for (size_t j = i; r == 0 && j < nc; j++) {
			if (c[j].tz || c[j].used)
				continue;
			if (j != i && (c[i].key == NULL || c[j].key == NULL ||
			               strcmp(c[i].key, c[j].key) != 0))
				continue;
			c[j].used = true;
			r = buf_lines(&buf, &len, &bcap, l, c[j].first, c[j].last);
		}
		if (r == 0)
			r = buf_lines(&buf, &len, &bcap, l, end_line, end_line);
		if (r == 0 && c[i].key != NULL && (uid = strdup(c[i].key)) == NULL)
			r = -1;
		if (r < 0 || out_add(o, uid, buf, len, ".ics") < 0) {
			free(buf);
			free(uid);
			goto oom;
		}
	}
	ret = 0;
	goto out;
bad:
	snprintf(err, errlen, "not an iCalendar file (one VCALENDAR with its components)");
	goto out;
oom:
	snprintf(err, errlen, "out of memory, or more than %d objects", SPLIT_MAX_OBJECTS);
out:
	comps_free(c, nc);
	free(hdr);
	return ret;
}

int dav_split(const char *data, size_t len, enum dav_kind *kind_r, struct dav_split_object **objs_r,
              size_t *count_r, char *err, size_t errlen)
{
	struct lines l;
	struct out o = {0};
	size_t first = 0;
	int ret;

	*objs_r = NULL;
	*count_r = 0;
	if (lines_cut(data, len, &l) < 0) {
		free(l.v);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (first < l.n && l.v[first].text == 0)
		first++;
	/* A UTF-8 byte order mark before the first line is no part of it. */
	if (first < l.n && l.v[first].text >= 3 && memcmp(l.v[first].p, "\xef\xbb\xbf", 3) == 0) {
		l.v[first].p += 3;
		l.v[first].len -= 3;
		l.v[first].text -= 3;
	}
	if (first < l.n && line_is(&l.v[first], "BEGIN", "VCARD")) {
		*kind_r = DAV_ADDRESSBOOK;
		ret = split_vcards(&l, &o, err, errlen);
	} else if (first < l.n && line_is(&l.v[first], "BEGIN", "VCALENDAR")) {
		*kind_r = DAV_CALENDAR;
		ret = split_calendar(&l, &o, err, errlen);
	} else {
		snprintf(err, errlen, "neither a vCard (.vcf) nor an iCalendar (.ics) file");
		ret = -1;
	}
	free(l.v);
	if (ret < 0) {
		dav_split_free(&o.v, o.n);
		return -1;
	}
	*objs_r = o.v;
	*count_r = o.n;
	return 0;
}
