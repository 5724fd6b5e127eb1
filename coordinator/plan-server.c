/* A server profile of the plan JSON (source, sources.NAME, destination): its
 * keys and defaults, blackout windows (days, clock times, time zone), and
 * the one-or-many source profiles.  Typed values are read by plan-json.c;
 * plan_load in plan.c calls these (plan-private.h lists the files). */
#include "plan-private.h"
#include "store-view.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

static const char *const plan_server_keys[] = {"host",
                                               "port",
                                               "tls",
                                               "ca_file",
                                               "auth",
                                               "master_user",
                                               "master_password",
                                               "max_connections",
                                               "prefix",
                                               "exclude",
                                               "folder_rules",
                                               "since",
                                               "max_message_size",
                                               "max_messages_per_second",
                                               "max_bytes_per_second",
                                               "account_daily_bytes",
                                               "blackout",
                                               NULL};
static const char *const plan_tls_values[] = {"implicit", "starttls", "none", NULL};
static const char *const plan_auth_values[] = {"login", "plain", "xoauth2", NULL};

/* "HH:MM" or "HH:MM:SS", 00:00 .. 24:00, as seconds after midnight. */
static int plan_parse_clock(const char *s, int *secs_r)
{
	unsigned h, m, sec = 0;
	int n = 0;

	if (sscanf(s, "%2u:%2u%n", &h, &m, &n) != 2)
		return -1;
	if (s[n] == ':') {
		int n2 = 0;
		if (sscanf(s + n + 1, "%2u%n", &sec, &n2) != 1)
			return -1;
		n += 1 + n2;
	}
	if (s[n] != '\0' || m > 59 || sec > 59 || h > 24 || (h == 24 && (m > 0 || sec > 0)))
		return -1;
	*secs_r = (int)(h * 3600 + m * 60 + sec);
	return 0;
}

/* "mon".."sun", a range "mon-fri", "daily", "weekdays", "weekends" as a mask
 * (bit 0 = Monday). */
static int plan_parse_days(const char *s, int *mask_r)
{
	static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
	int first = -1, last = -1;

	if (strcasecmp(s, "daily") == 0 || strcasecmp(s, "all") == 0) {
		*mask_r = 0x7f;
		return 0;
	}
	if (strcasecmp(s, "weekdays") == 0) {
		*mask_r = 0x1f;
		return 0;
	}
	if (strcasecmp(s, "weekends") == 0) {
		*mask_r = 0x60;
		return 0;
	}
	for (int i = 0; i < 7; i++) {
		if (strncasecmp(s, names[i], 3) == 0 && (s[3] == '\0' || s[3] == '-'))
			first = i;
		if (s[3] == '-' && strcasecmp(s + 4, names[i]) == 0)
			last = i;
	}
	if (first < 0 || (s[3] == '-' && last < 0))
		return -1;
	if (last < 0)
		last = first;
	*mask_r = 0;
	for (int i = first;; i = (i + 1) % 7) { /* "sat-mon" wraps */
		*mask_r |= 1 << i;
		if (i == last)
			break;
	}
	return 0;
}

static void plan_json_blackouts(struct plan_json *pj, json_t *obj, const char *prefix,
                                struct store_server *srv)
{
	static const char *const keys[] = {"days", "from", "to", "time_zone", NULL};
	json_t *v = json_object_get(obj, "blackout"), *item;
	size_t i;

	if (v == NULL || json_is_null(v))
		return;
	if (!json_is_array(v)) {
		plan_errors_add(pj->errs, 0, "%s: %sblackout: must be an array of windows",
		                pj->path, prefix);
		return;
	}
	srv->blackouts = calloc(json_array_size(v) + 1, sizeof(*srv->blackouts));
	if (srv->blackouts == NULL) {
		pj->errs->oom = true;
		return;
	}
	json_array_foreach(v, i, item)
	{
		struct store_blackout *b = &srv->blackouts[srv->nblackouts];
		char where[96];
		json_t *days, *d;
		const char *from, *to;
		size_t j;

		(void)snprintf(where, sizeof(where), "%sblackout[%zu].", prefix, i);
		if (!json_is_object(item)) {
			plan_errors_add(pj->errs, 0, "%s: %.*s: must be an object", pj->path,
			                (int)strlen(where) - 1, where);
			continue;
		}
		plan_json_unknown_keys(pj, item, where, keys);
		b->weekdays = 0x7f;
		days = json_object_get(item, "days");
		if (days != NULL && !json_is_null(days)) {
			json_t *list =
			    json_is_string(days) ? json_pack("[O]", days) : json_incref(days);
			int mask;

			b->weekdays = 0;
			if (list == NULL || !json_is_array(list) || json_array_size(list) == 0)
				plan_errors_add(pj->errs, 0,
				                "%s: %sdays: must be a day, a range like "
				                "\"mon-fri\", \"daily\", or an array of them",
				                pj->path, where);
			else
				json_array_foreach(list, j, d)
				{
					if (!json_is_string(d) ||
					    plan_parse_days(json_string_value(d), &mask) < 0) {
						plan_errors_add(
						    pj->errs, 0,
						    "%s: %sdays[%zu]: not a day: use mon..sun, "
						    "a range like mon-fri, daily, weekdays or "
						    "weekends",
						    pj->path, where, j);
						continue;
					}
					b->weekdays |= mask;
				}
			json_decref(list);
		}
		from = json_string_value(json_object_get(item, "from"));
		to = json_string_value(json_object_get(item, "to"));
		if (from == NULL || plan_parse_clock(from, &b->from_s) < 0)
			plan_errors_add(pj->errs, 0, "%s: %sfrom: must be a time \"HH:MM\"",
			                pj->path, where);
		if (to == NULL || plan_parse_clock(to, &b->to_s) < 0)
			plan_errors_add(pj->errs, 0, "%s: %sto: must be a time \"HH:MM\"", pj->path,
			                where);
		if (plan_json_string(pj, item, where, "time_zone", false, "UTC", &b->time_zone) ==
		        0 &&
		    b->time_zone != NULL && b->time_zone[0] == '\0')
			plan_errors_add(pj->errs, 0, "%s: %stime_zone: empty", pj->path, where);
		srv->nblackouts++;
	}
}

/* "since": "YYYY-MM-DD", a real calendar date: only mail from that day on
 * (UTC) is copied. */
static void plan_json_since(struct plan_json *pj, json_t *obj, const char *prefix, char **out_r)
{
	json_t *v = json_object_get(obj, "since");
	unsigned y, m, d;
	int n = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	*out_r = NULL;
	if (v == NULL || json_is_null(v))
		return;
	const char *s = json_string_value(v);
	if (s == NULL || sscanf(s, "%4u-%2u-%2u%n", &y, &m, &d, &n) != 3 || s[n] != '\0' ||
	    n != 10 || y < 1970 || m < 1 || m > 12 || d < 1 || d > (unsigned)mdays[m - 1] ||
	    (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))) {
		plan_errors_add(
		    pj->errs, 0,
		    "%s: %ssince: must be a date \"YYYY-MM-DD\" from 1970 on (only mail "
		    "from that day on is copied)",
		    pj->path, prefix);
		return;
	}
	*out_r = strdup(s);
	if (*out_r == NULL)
		pj->errs->oom = true;
}

void plan_json_server(struct plan_json *pj, json_t *obj, const char *prefix,
                      struct store_server *srv, char **master_password_r)
{
	const char *what = prefix;
	int64_t rate_messages;

	if (obj == NULL || json_is_null(obj)) {
		plan_errors_add(pj->errs, 0, "%s: %.*s: missing", pj->path, (int)strlen(what) - 1,
		                what);
		return;
	}
	if (!json_is_object(obj)) {
		plan_errors_add(pj->errs, 0, "%s: %.*s: must be an object", pj->path,
		                (int)strlen(what) - 1, what);
		return;
	}
	plan_json_unknown_keys(pj, obj, prefix, plan_server_keys);

	(void)plan_json_string(pj, obj, prefix, "host", true, NULL, &srv->host);
	(void)plan_json_choice(pj, obj, prefix, "tls", plan_tls_values, "implicit", &srv->tls);
	(void)plan_json_int(pj, obj, prefix, "port", 1, 65535,
	                    srv->tls != NULL && strcmp(srv->tls, "implicit") != 0 ? 143 : 993,
	                    &srv->port);
	(void)plan_json_string(pj, obj, prefix, "ca_file", false, NULL, &srv->ca_file);
	(void)plan_json_choice(pj, obj, prefix, "auth", plan_auth_values, "plain", &srv->auth);
	(void)plan_json_string(pj, obj, prefix, "master_user", false, NULL, &srv->master_user);
	(void)plan_json_string(pj, obj, prefix, "master_password", false, NULL, master_password_r);
	if (*master_password_r != NULL && srv->master_user == NULL)
		plan_errors_add(pj->errs, 0, "%s: %smaster_password: given without master_user",
		                pj->path, prefix);
	(void)plan_json_int(pj, obj, prefix, "max_connections", 1, 1000, 10, &srv->max_connections);
	(void)plan_json_string(pj, obj, prefix, "prefix", false, "", &srv->prefix);
	(void)plan_json_exclude(pj, obj, prefix, &srv->exclude);
	if (strcmp(prefix, "destination.") == 0) {
		static const char *const source_only[] = {"folder_rules", "since",
		                                          "max_message_size", NULL};
		for (size_t i = 0; source_only[i] != NULL; i++)
			if (json_object_get(obj, source_only[i]) != NULL)
				plan_errors_add(
				    pj->errs, 0,
				    "%s: destination.%s: a setting of the source: give it "
				    "in the source profile",
				    pj->path, source_only[i]);
	} else {
		(void)plan_json_folder_rules(pj, obj, prefix, &srv->folder_rules);
		plan_json_since(pj, obj, prefix, &srv->since);
		(void)plan_json_size(pj, obj, prefix, "max_message_size", PLAN_MAX_BYTES,
		                     "1 PiB (1125899906842624 bytes)", &srv->max_message_bytes);
	}
	if (plan_json_size(pj, obj, prefix, "max_messages_per_second", PLAN_MAX_MESSAGES_RATE,
	                   "1000000 messages per second", &rate_messages) == 0)
		srv->rate_messages = (int)rate_messages;
	(void)plan_json_size(pj, obj, prefix, "max_bytes_per_second", PLAN_MAX_BYTES,
	                     "1 PiB (1125899906842624 bytes) per second", &srv->rate_bytes);
	(void)plan_json_size(pj, obj, prefix, "account_daily_bytes", PLAN_MAX_BYTES,
	                     "1 PiB (1125899906842624 bytes) per day", &srv->account_daily_bytes);
	plan_json_blackouts(pj, obj, prefix, srv);
}

/* "source": {...} or "sources": {"NAME": {...}, ...}. */
void plan_json_sources(struct plan_json *pj, json_t *root, struct plan *plan)
{
	json_t *one = json_object_get(root, "source"), *many = json_object_get(root, "sources");
	json_t *value;
	const char *key;
	size_t n;

	if (one != NULL && many != NULL) {
		plan_errors_add(pj->errs, 0, "%s: source and sources: give one of them", pj->path);
		return;
	}
	if (many != NULL && (!json_is_object(many) || json_object_size(many) == 0)) {
		plan_errors_add(pj->errs, 0,
		                "%s: sources: must be an object of named source profiles",
		                pj->path);
		return;
	}
	n = many != NULL ? json_object_size(many) : 1;
	plan->srcs = calloc(n, sizeof(*plan->srcs));
	plan->src_master_passwords = calloc(n, sizeof(*plan->src_master_passwords));
	if (plan->srcs == NULL || plan->src_master_passwords == NULL) {
		pj->errs->oom = true;
		return;
	}
	if (many == NULL) {
		plan->nsrcs = 1;
		plan->srcs[0].name = strdup("default");
		if (plan->srcs[0].name == NULL)
			pj->errs->oom = true;
		plan_json_server(pj, one, "source.", &plan->srcs[0],
		                 &plan->src_master_passwords[0]);
		return;
	}
	json_object_foreach(many, key, value)
	{
		struct store_server *srv = &plan->srcs[plan->nsrcs];
		char prefix[160];

		(void)snprintf(prefix, sizeof(prefix), "sources.%.128s.", key);
		srv->name = strdup(key);
		if (srv->name == NULL)
			pj->errs->oom = true;
		else if (key[0] == '\0' || strchr(key, ',') != NULL ||
		         plan_has_control(key, strlen(key)))
			plan_errors_add(pj->errs, 0,
			                "%s: sources: \"%.64s\": a profile name must be non-empty, "
			                "without commas or control characters",
			                pj->path, key);
		plan_json_server(pj, value, prefix, srv, &plan->src_master_passwords[plan->nsrcs]);
		plan->nsrcs++;
	}
}

/* ---- a server profile changed through the API ---- */

static const char *const plan_patch_keys[] = {"host",
                                              "port",
                                              "tls",
                                              "ca_file",
                                              "max_connections",
                                              "rate_messages",
                                              "rate_bytes",
                                              "account_daily_bytes",
                                              "blackouts",
                                              NULL};

int plan_server_patch_parse(const char *text, size_t len, struct store_server_patch *patch,
                            char *err, size_t errlen)
{
	struct plan_errors errs = {0};
	struct plan_json pj = {.path = "server", .errs = &errs};
	struct store_server srv = {0};
	json_error_t jerr;
	json_t *root, *windows = NULL;
	char *host = NULL, *tls = NULL, *ca_file = NULL;
	int64_t v;

	*patch = (struct store_server_patch){.port = -1,
	                                     .max_connections = -1,
	                                     .rate_messages = -1,
	                                     .rate_bytes = -1,
	                                     .account_daily_bytes = -1};
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		plan_errors_add(&errs, 0, "server:%d:%d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		plan_errors_add(&errs, 0, "server: must be a JSON object");
		goto out;
	}
	plan_json_unknown_keys(&pj, root, "", plan_patch_keys);
	if (json_object_get(root, "host") != NULL) {
		(void)plan_json_string(&pj, root, "", "host", true, NULL, &host);
		if (host != NULL && host[0] == '\0')
			plan_errors_add(&errs, 0, "server: host: empty");
	}
	if (json_object_get(root, "tls") != NULL)
		(void)plan_json_choice(&pj, root, "", "tls", plan_tls_values, NULL, &tls);
	if (json_object_get(root, "port") != NULL)
		(void)plan_json_int(&pj, root, "", "port", 1, 65535, -1, &patch->port);
	if (json_object_get(root, "ca_file") != NULL) {
		patch->set_ca_file = true;
		(void)plan_json_string(&pj, root, "", "ca_file", false, NULL, &ca_file);
	}
	if (json_object_get(root, "max_connections") != NULL)
		(void)plan_json_int(&pj, root, "", "max_connections", 1, 1000, -1,
		                    &patch->max_connections);
	if (json_object_get(root, "rate_messages") != NULL &&
	    plan_json_size(&pj, root, "", "rate_messages", PLAN_MAX_MESSAGES_RATE,
	                   "1000000 messages per second", &v) == 0)
		patch->rate_messages = (int)v;
	if (json_object_get(root, "rate_bytes") != NULL)
		(void)plan_json_size(&pj, root, "", "rate_bytes", PLAN_MAX_BYTES,
		                     "1 PiB (1125899906842624 bytes) per second",
		                     &patch->rate_bytes);
	if (json_object_get(root, "account_daily_bytes") != NULL)
		(void)plan_json_size(&pj, root, "", "account_daily_bytes", PLAN_MAX_BYTES,
		                     "1 PiB (1125899906842624 bytes) per day",
		                     &patch->account_daily_bytes);
	if (json_object_get(root, "blackouts") != NULL) {
		/* The plan's reader, under the plan's key. */
		windows = json_pack("{sO}", "blackout", json_object_get(root, "blackouts"));
		if (windows == NULL) {
			errs.oom = true;
		} else {
			patch->set_blackouts = true;
			if (json_is_null(json_object_get(root, "blackouts")))
				plan_errors_add(&errs, 0, "server: blackouts: must be an array");
			else
				plan_json_blackouts(&pj, windows, "", &srv);
		}
	}
out:
	json_decref(root);
	json_decref(windows);
	patch->host = host;
	patch->tls = tls;
	patch->ca_file = ca_file;
	patch->blackouts = srv.blackouts;
	patch->nblackouts = srv.nblackouts;
	if (plan_errors_any(&errs)) {
		plan_errors_flush(&errs, err, errlen);
		plan_server_patch_clear(patch);
		return -1;
	}
	return 0;
}

void plan_server_patch_clear(struct store_server_patch *patch)
{
	struct store_blackout *b = (struct store_blackout *)patch->blackouts;

	free((char *)patch->host);
	free((char *)patch->tls);
	free((char *)patch->ca_file);
	for (size_t i = 0; i < patch->nblackouts; i++)
		free(b[i].time_zone);
	free(b);
	*patch = (struct store_server_patch){0};
}
