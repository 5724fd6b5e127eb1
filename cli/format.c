/* Human renderings of the API's numbers and states (see format.h). */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long long fmt_int(const json_t *obj, const char *key, long long def)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)(json_real_value(v) + 0.5);
	return def;
}

const char *fmt_str(const json_t *obj, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : def;
}

const char *fmt_bytes(long long n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	size_t u = 0;

	if (n < 0) {
		snprintf(buf, len, "?");
		return buf;
	}
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lld B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *fmt_duration(long long secs, char *buf, size_t len)
{
	if (secs < 0)
		snprintf(buf, len, "-");
	else if (secs >= 3600)
		snprintf(buf, len, "%lld:%02lld:%02lld", secs / 3600, secs / 60 % 60, secs % 60);
	else
		snprintf(buf, len, "%lld:%02lld", secs / 60, secs % 60);
	return buf;
}

const char *fmt_bar(long long done, long long total, int width, char *buf, size_t len)
{
	int fill, i;

	if (len < (size_t)width + 3 || width < 1) {
		snprintf(buf, len, "[]");
		return buf;
	}
	fill = total > 0 ? (int)((done > total ? total : done) * width / total) : 0;
	buf[0] = '[';
	for (i = 0; i < width; i++)
		buf[1 + i] = total <= 0 ? '?' : i < fill ? '#' : '-';
	buf[1 + width] = ']';
	buf[2 + width] = '\0';
	return buf;
}

/* The account states in the order of the state machine (docs/DESIGN.md). */
static const char *const state_order[] = {
    "new",     "verified", "auth_failed", "verify_failed", "queued", "running",
    "waiting", "failed",   "paused",      "synced",        "done",   "cancelled",
};

const char *fmt_states(const json_t *states, char *buf, size_t len)
{
	size_t used = 0, i;
	const char *key;
	json_t *v;

	buf[0] = '\0';
	for (i = 0; i < sizeof(state_order) / sizeof(state_order[0]); i++) {
		long long n = fmt_int(states, state_order[i], 0);

		if (n > 0 && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s %lld",
			                         used > 0 ? ", " : "", state_order[i], n);
	}
	/* States this client does not know yet are shown too. */
	json_object_foreach((json_t *)states, key, v)
	{
		int known = 0;

		for (i = 0; i < sizeof(state_order) / sizeof(state_order[0]); i++)
			known |= strcmp(key, state_order[i]) == 0;
		if (!known && json_integer_value(v) > 0 && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s %lld",
			                         used > 0 ? ", " : "", key,
			                         (long long)json_integer_value(v));
	}
	if (used == 0)
		snprintf(buf, len, "no accounts");
	return buf;
}

void fmt_json_print(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

const char *fmt_cell(const json_t *v, char *buf, size_t len)
{
	char *s;

	if (v == NULL || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v);
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, len, "%s", s != NULL ? s : "?");
	free(s);
	return buf;
}

void fmt_csv_field(FILE *f, const char *s)
{
	if (s == NULL)
		return;
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}
