/* The plan's "mx" object (plan.h lists its keys) and the values of MX
 * settings it shares with the coordinator's mx command: durations, domain
 * and host names, resolver addresses. */
#include "plan-private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int plan_mx_duration(const char *s, int *out_r)
{
	char *end;
	long v;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v < 1 || v > PLAN_MX_MAX_S)
		return -1;
	if (strcmp(end, "m") == 0)
		v *= 60;
	else if (strcmp(end, "h") == 0)
		v *= 3600;
	else if (*end != '\0' && strcmp(end, "s") != 0)
		return -1;
	if (v > PLAN_MX_MAX_S)
		return -1;
	*out_r = (int)v;
	return 0;
}

int plan_mx_name(const char *s, char **out_r)
{
	size_t len = s != NULL ? strlen(s) : 0;
	char *out;

	*out_r = NULL;
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || s[0] == '.')
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return -1;
		if (c == '.' && s[i + 1] == '.')
			return -1;
	}
	out = strndup(s, len);
	if (out == NULL)
		return -1;
	for (char *c = out; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	*out_r = out;
	return 0;
}

static bool port_ok(const char *s)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	v = strtol(s, &end, 10);
	return *end == '\0' && v >= 1 && v <= 65535;
}

bool plan_mx_resolver_ok(const char *s)
{
	unsigned char addr[16];
	char host[64];
	const char *colon;

	if (s == NULL || strlen(s) >= sizeof(host) + 8)
		return false;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || (size_t)(close - s - 1) >= sizeof(host))
			return false;
		snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
		return inet_pton(AF_INET6, host, addr) == 1 && close[1] == ':' &&
		       port_ok(close + 2);
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL)
		return inet_pton(AF_INET6, s, addr) == 1;
	if (colon == NULL)
		return inet_pton(AF_INET, s, addr) == 1;
	if ((size_t)(colon - s) >= sizeof(host))
		return false;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	return inet_pton(AF_INET, host, addr) == 1 && port_ok(colon + 1);
}

void plan_mx_config(const struct plan_mx *mx, struct store_mx_config *cfg)
{
	cfg->domains = (const char *const *)mx->domains;
	cfg->ndomains = mx->ndomains;
	cfg->hosts = (const char *const *)mx->hosts;
	cfg->nhosts = mx->nhosts;
	cfg->settle_s = mx->settle_s;
	cfg->interval_s = mx->interval_s;
	cfg->resolver = mx->resolver;
}

void plan_mx_free(struct plan_mx **mx)
{
	struct plan_mx *m = mx != NULL ? *mx : NULL;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ndomains; i++)
		free(m->domains[i]);
	for (size_t i = 0; i < m->nhosts; i++)
		free(m->hosts[i]);
	free(m->domains);
	free(m->hosts);
	free(m->resolver);
	free(m);
	*mx = NULL;
}

/* An array of names at mx.key into *names_r (normalised, no duplicates). */
static void mx_names(struct plan_json *pj, json_t *obj, const char *key, const char *what,
                     char ***names_r, size_t *count_r)
{
	json_t *v = json_object_get(obj, key), *item;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		plan_errors_add(pj->errs, 0, "%s: mx.%s: must be a non-empty array of %s", pj->path,
		                key, what);
		return;
	}
	*names_r = calloc(json_array_size(v) + 1, sizeof(**names_r));
	if (*names_r == NULL) {
		pj->errs->oom = true;
		return;
	}
	json_array_foreach(v, i, item)
	{
		char *name = NULL;
		bool dup = false;

		if (!json_is_string(item) ||
		    strlen(json_string_value(item)) != json_string_length(item) ||
		    plan_mx_name(json_string_value(item), &name) < 0) {
			plan_errors_add(pj->errs, 0, "%s: mx.%s[%zu]: not a DNS name", pj->path,
			                key, i);
			continue;
		}
		for (size_t k = 0; k < *count_r; k++)
			dup = dup || strcmp((*names_r)[k], name) == 0;
		if (dup) {
			plan_errors_add(pj->errs, 0, "%s: mx.%s[%zu]: %s named twice", pj->path,
			                key, i, name);
			free(name);
			continue;
		}
		(*names_r)[(*count_r)++] = name;
	}
}

static void mx_duration(struct plan_json *pj, json_t *obj, const char *key, int def, int *out_r)
{
	json_t *v = json_object_get(obj, key);
	char text[32];

	*out_r = def;
	if (v == NULL || json_is_null(v))
		return;
	if (json_is_integer(v) && json_integer_value(v) >= 1 &&
	    json_integer_value(v) <= PLAN_MX_MAX_S) {
		*out_r = (int)json_integer_value(v);
		return;
	}
	if (json_is_string(v) && json_string_length(v) < sizeof(text)) {
		snprintf(text, sizeof(text), "%s", json_string_value(v));
		if (plan_mx_duration(text, out_r) == 0)
			return;
	}
	plan_errors_add(pj->errs, 0,
	                "%s: mx.%s: must be a duration like \"90s\", \"10m\" or \"1h\" (at most a"
	                " week)",
	                pj->path, key);
}

void plan_json_mx(struct plan_json *pj, json_t *obj, struct plan *plan)
{
	static const char *const keys[] = {"domains",  "destination_hosts", "settle",
	                                   "interval", "resolver",          NULL};
	struct plan_mx *mx;

	if (obj == NULL || json_is_null(obj))
		return;
	if (!json_is_object(obj)) {
		plan_errors_add(pj->errs, 0, "%s: mx: must be an object", pj->path);
		return;
	}
	mx = calloc(1, sizeof(*mx));
	if (mx == NULL) {
		pj->errs->oom = true;
		return;
	}
	plan->mx = mx;
	plan_json_unknown_keys(pj, obj, "mx.", keys);
	mx_names(pj, obj, "domains", "mail domains", &mx->domains, &mx->ndomains);
	mx_names(pj, obj, "destination_hosts", "MX host names", &mx->hosts, &mx->nhosts);
	mx_duration(pj, obj, "settle", PLAN_MX_SETTLE_DEFAULT, &mx->settle_s);
	mx_duration(pj, obj, "interval", PLAN_MX_INTERVAL_DEFAULT, &mx->interval_s);
	if (plan_json_string(pj, obj, "mx.", "resolver", false, NULL, &mx->resolver) == 0 &&
	    mx->resolver != NULL && !plan_mx_resolver_ok(mx->resolver))
		plan_errors_add(pj->errs, 0,
		                "%s: mx.resolver: must be an address like \"127.0.0.1\","
		                " \"127.0.0.1:5353\" or \"[::1]:5353\"",
		                pj->path);
}
