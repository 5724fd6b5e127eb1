#include "names.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

int imap_name_map(const struct imap_folder *src, const struct imap_names_side *src_side,
                  const struct imap_folder *dst_folders, size_t ndst,
                  const struct imap_names_side *dst_side, char *out, size_t outlen)
{
	const char *name = src->name;
	const char *sp = src_side->prefix != NULL ? src_side->prefix : "";
	const char *dp = dst_side->prefix != NULL ? dst_side->prefix : "";
	unsigned int special = src->flags & IMAP_FOLDER_SPECIAL_MASK;
	size_t len;
	int n;

	if (is_inbox(name)) {
		n = snprintf(out, outlen, "INBOX");
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (special != 0) {
		for (size_t i = 0; i < ndst; i++) {
			if ((dst_folders[i].flags & special) != 0) {
				n = snprintf(out, outlen, "%s", dst_folders[i].name);
				return n < 0 || (size_t)n >= outlen ? -1 : 0;
			}
		}
	}
	if (sp[0] != '\0' && strncmp(name, sp, strlen(sp)) == 0)
		name += strlen(sp);
	n = snprintf(out, outlen, "%s", dp);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	len = (size_t)n;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (len + 1 >= outlen)
			return -1;
		if (src_side->delimiter != '\0' && c == src_side->delimiter)
			c = dst_side->delimiter != '\0' ? dst_side->delimiter : '_';
		else if (dst_side->delimiter != '\0' && c == dst_side->delimiter)
			c = '_';
		out[len++] = c;
	}
	out[len] = '\0';
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static int utf8_put(uint32_t cp, char *out, size_t outlen, size_t *len)
{
	char buf[4];
	size_t n;

	if (cp < 0x80) {
		buf[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		buf[0] = (char)(0xC0 | (cp >> 6));
		buf[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		buf[0] = (char)(0xE0 | (cp >> 12));
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		buf[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		buf[0] = (char)(0xF0 | (cp >> 18));
		buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		buf[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*len + n >= outlen)
		return -1;
	memcpy(out + *len, buf, n);
	*len += n;
	return 0;
}

int imap_name_decode(const char *in, char *out, size_t outlen)
{
	size_t len = 0;

	for (const char *p = in; *p != '\0'; p++) {
		uint32_t bits = 0, high = 0;
		int nbits = 0;

		if (*p != '&') {
			if (len + 1 >= outlen)
				return -1;
			out[len++] = *p;
			continue;
		}
		p++;
		if (*p == '-') { /* "&-" is a literal '&' */
			if (len + 1 >= outlen)
				return -1;
			out[len++] = '&';
			continue;
		}
		for (; *p != '-'; p++) {
			int v = b64_value(*p);
			if (v < 0)
				return -1;
			bits = bits << 6 | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t unit = (bits >> nbits) & 0xFFFF;
			if (unit >= 0xD800 && unit < 0xDC00) {
				high = unit;
				continue;
			}
			if (unit >= 0xDC00 && unit < 0xE000) {
				if (high == 0)
					return -1;
				unit = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
				high = 0;
			}
			if (utf8_put(unit, out, outlen, &len) < 0)
				return -1;
		}
	}
	out[len] = '\0';
	return 0;
}

static bool name_matches(const char *name, char delimiter, const char *pattern, size_t plen)
{
	if (plen == 5 && is_inbox(name) && strncasecmp(pattern, "INBOX", 5) == 0)
		return true;
	if (strncmp(name, pattern, plen) != 0)
		return false;
	return name[plen] == '\0' || (delimiter != '\0' && name[plen] == delimiter);
}

bool imap_name_excluded(const char *name, char delimiter, const char *exclude_csv)
{
	char decoded[1024];
	const char *p = exclude_csv;

	if (p == NULL || *p == '\0')
		return false;
	if (imap_name_decode(name, decoded, sizeof(decoded)) < 0)
		snprintf(decoded, sizeof(decoded), "%s", name);
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t plen = end != NULL ? (size_t)(end - p) : strlen(p);

		if (plen > 0 && (name_matches(decoded, delimiter, p, plen) ||
		                 name_matches(name, delimiter, p, plen)))
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}
