/* Reading one typed member of a plan JSON object, with the error text that
 * names its JSON path: unknown keys, strings, choices, integers, the exclude
 * list, sizes and rates with units.  plan.c reads the top level with them,
 * plan-server.c a server profile (plan-private.h lists the files). */
#include "plan-private.h"

#include "rules.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

static bool plan_in_list(const char *s, const char *const *list)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++) {
		if (strcmp(s, list[i]) == 0)
			return true;
	}
	return false;
}

void plan_json_unknown_keys(struct plan_json *pj, json_t *obj, const char *prefix,
                            const char *const *known)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj, key, value)
	{
		(void)value;
		if (!plan_in_list(key, known))
			plan_errors_add(pj->errs, 0, "%s: %s%s: unknown key", pj->path, prefix,
			                key);
	}
}

/* Copies an optional string member: absent or null gives def (which may be
 * NULL).  Returns -1 after recording an error. */
int plan_json_string(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                     bool required, const char *def, char **out_r)
{
	json_t *v = json_object_get(obj, key);
	const char *s = def;

	*out_r = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required) {
			plan_errors_add(pj->errs, 0, "%s: %s%s: missing", pj->path, prefix, key);
			return -1;
		}
	} else if (!json_is_string(v)) {
		plan_errors_add(pj->errs, 0, "%s: %s%s: must be a string", pj->path, prefix, key);
		return -1;
	} else {
		s = json_string_value(v);
		if (strlen(s) != json_string_length(v)) {
			plan_errors_add(pj->errs, 0, "%s: %s%s: contains a NUL character", pj->path,
			                prefix, key);
			return -1;
		}
		if (required && s[0] == '\0') {
			plan_errors_add(pj->errs, 0, "%s: %s%s: empty", pj->path, prefix, key);
			return -1;
		}
	}
	if (s == NULL)
		return 0;
	*out_r = strdup(s);
	if (*out_r == NULL) {
		pj->errs->oom = true;
		return -1;
	}
	return 0;
}

int plan_json_choice(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                     const char *const *values, const char *def, char **out_r)
{
	json_t *v = json_object_get(obj, key);
	const char *s = def;

	*out_r = NULL;
	if (v != NULL && !json_is_null(v)) {
		s = json_is_string(v) ? json_string_value(v) : NULL;
		if (s == NULL || !plan_in_list(s, values)) {
			char list[128] = "";
			size_t i, used = 0;

			for (i = 0; values[i] != NULL && used < sizeof(list); i++) {
				int n = snprintf(list + used, sizeof(list) - used, "%s%s",
				                 i > 0 ? "|" : "", values[i]);
				if (n < 0)
					break;
				used += (size_t)n;
			}
			plan_errors_add(pj->errs, 0, "%s: %s%s: must be one of %s", pj->path,
			                prefix, key, list);
			return -1;
		}
	}
	*out_r = strdup(s);
	if (*out_r == NULL) {
		pj->errs->oom = true;
		return -1;
	}
	return 0;
}

int plan_json_int(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                  long long min, long long max, int def, int *out_r)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	*out_r = def;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || (n = json_integer_value(v)) < min || n > max) {
		plan_errors_add(pj->errs, 0, "%s: %s%s: must be an integer %lld..%lld", pj->path,
		                prefix, key, min, max);
		return -1;
	}
	*out_r = (int)n;
	return 0;
}

/* Joins the exclude array with commas (the form store_server.exclude keeps),
 * so a folder name must not contain one. */
int plan_json_exclude(struct plan_json *pj, json_t *obj, const char *prefix, char **out_r)
{
	json_t *v = json_object_get(obj, "exclude"), *item;
	size_t i, total = 1, used = 0;
	char *out = NULL;
	int ret = 0;

	*out_r = NULL;
	if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
		plan_errors_add(pj->errs, 0, "%s: %sexclude: must be an array of folder names",
		                pj->path, prefix);
		return -1;
	}
	if (v != NULL && json_is_array(v)) {
		json_array_foreach(v, i, item)
		{
			const char *s = json_is_string(item) ? json_string_value(item) : NULL;

			if (s == NULL || s[0] == '\0' || strchr(s, ',') != NULL ||
			    strlen(s) != json_string_length(item)) {
				plan_errors_add(pj->errs, 0,
				                "%s: %sexclude[%zu]: must be a non-empty folder "
				                "name without commas",
				                pj->path, prefix, i);
				ret = -1;
				continue;
			}
			total += strlen(s) + 1;
		}
	}
	if (ret < 0)
		return -1;
	out = malloc(total);
	if (out == NULL) {
		pj->errs->oom = true;
		return -1;
	}
	out[0] = '\0';
	if (v != NULL && json_is_array(v)) {
		json_array_foreach(v, i, item)
		{
			int n = snprintf(out + used, total - used, "%s%s", used > 0 ? "," : "",
			                 json_string_value(item));

			if (n < 0 || (size_t)n >= total - used) {
				free(out);
				pj->errs->oom = true;
				return -1;
			}
			used += (size_t)n;
		}
	}
	*out_r = out;
	return 0;
}

/* A size: an integer number of bytes, or a string with a unit ("500MB",
 * "2 GiB", "750kB"; k/M/G/T are powers of 1000, Ki/Mi/Gi/Ti of 1024). */
/* A size or a rate: a non-negative JSON integer, or a string with a unit
 * ("500MB", "2 GiB", "1.5k"), whole after the unit is applied, at most max.
 * Every refusal names the JSON path: an overflowing "1e17TiB" once became a
 * negative number that meant "no limit". */
int plan_json_size(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                   int64_t max, const char *max_text, int64_t *out_r)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} units[] = {{"", 1},
	             {"b", 1},
	             {"kb", 1000},
	             {"k", 1000},
	             {"mb", 1000000},
	             {"m", 1000000},
	             {"gb", 1000000000},
	             {"g", 1000000000},
	             {"tb", 1000000000000},
	             {"kib", 1024},
	             {"mib", 1048576},
	             {"gib", 1073741824},
	             {"tib", 1099511627776}};
	json_t *v = json_object_get(obj, key);
	const char *s, *why = "must be a whole number or a size like \"500MB\" or \"2GiB\"";
	char *end;
	long double n, total;

	*out_r = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			why = "must not be negative";
		else if (json_integer_value(v) > max)
			why = NULL;
		else {
			*out_r = json_integer_value(v);
			return 0;
		}
	} else if (json_is_real(v)) {
		why = "must be a whole number (or a string with a unit, like \"1.5GB\")";
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		while (*s == ' ')
			s++;
		errno = 0;
		n = strtold(s, &end);
		while (*end == ' ')
			end++;
		if (end == s || errno == ERANGE || isnan(n) || isinf(n) ||
		    (*s != '-' && *s != '.' && (*s < '0' || *s > '9')))
			goto fail;
		if (n < 0) {
			why = "must not be negative";
			goto fail;
		}
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcasecmp(end, units[i].unit) != 0)
				continue;
			total = n * (long double)units[i].mult;
			if (total > (long double)max) {
				why = NULL;
				goto fail;
			}
			if (total != floorl(total)) {
				why = "must be a whole number after its unit";
				goto fail;
			}
			*out_r = (int64_t)total;
			return 0;
		}
		why = "unknown unit: use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB";
	}
fail:
	if (why == NULL)
		plan_errors_add(pj->errs, 0, "%s: %s%s: at most %s", pj->path, prefix, key,
		                max_text);
	else
		plan_errors_add(pj->errs, 0, "%s: %s%s: %s", pj->path, prefix, key, why);
	return -1;
}

/* Whether s may stand in a rule's text form: no tab, no line end, no other
 * control character, no NUL inside. */
static bool plan_rule_text_ok(json_t *item)
{
	const char *s = json_string_value(item);

	return s != NULL && s[0] != '\0' && strlen(s) == json_string_length(item) &&
	       !plan_has_control(s, strlen(s));
}

int plan_json_folder_rules(struct plan_json *pj, json_t *obj, const char *prefix, char **out_r)
{
	json_t *v = json_object_get(obj, "folder_rules"), *rule;
	size_t i, total = 1;
	char *out;
	int ret = 0;

	*out_r = NULL;
	if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
		plan_errors_add(pj->errs, 0,
		                "%s: %sfolder_rules: must be an array of {\"folder\" or \"regex\", "
		                "\"to\"}",
		                pj->path, prefix);
		return -1;
	}
	json_array_foreach(v, i, rule)
	{
		json_t *folder = json_object_get(rule, "folder"),
		       *regex = json_object_get(rule, "regex");
		json_t *to = json_object_get(rule, "to");

		if (!json_is_object(rule) || (folder == NULL) == (regex == NULL) || to == NULL ||
		    json_object_size(rule) != 2) {
			plan_errors_add(
			    pj->errs, 0,
			    "%s: %sfolder_rules[%zu]: must be {\"folder\": NAME, \"to\": "
			    "NAME} or {\"regex\": EXPRESSION, \"to\": NAME}",
			    pj->path, prefix, i);
			ret = -1;
			continue;
		}
		if (!plan_rule_text_ok(folder != NULL ? folder : regex) || !plan_rule_text_ok(to)) {
			plan_errors_add(pj->errs, 0,
			                "%s: %sfolder_rules[%zu]: names must be non-empty strings "
			                "without control characters",
			                pj->path, prefix, i);
			ret = -1;
			continue;
		}
		total += json_string_length(folder != NULL ? folder : regex) +
		         json_string_length(to) + 3;
	}
	if (ret < 0)
		return -1;
	out = malloc(total);
	if (out == NULL) {
		pj->errs->oom = true;
		return -1;
	}
	out[0] = '\0';
	json_array_foreach(v, i, rule)
	{
		json_t *folder = json_object_get(rule, "folder");
		size_t len = strlen(out);

		snprintf(
		    out + len, total - len, "%c%s\t%s\n", folder != NULL ? '=' : '~',
		    json_string_value(folder != NULL ? folder : json_object_get(rule, "regex")),
		    json_string_value(json_object_get(rule, "to")));
	}
	/* The worker parses them the same way: refuse here what it would. */
	struct imap_rules rules;
	char why[PLAN_ERROR_MAX_LEN];
	if (imap_rules_parse(out, &rules, why, sizeof(why)) < 0) {
		plan_errors_add(pj->errs, 0, "%s: %sfolder_rules: %s (rules counted from 1)",
		                pj->path, prefix, why);
		free(out);
		return -1;
	}
	imap_rules_free(&rules);
	*out_r = out;
	return 0;
}
