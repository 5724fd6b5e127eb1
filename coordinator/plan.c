/* The plan's entry points: plan_load (the top of the plan JSON, then its
 * accounts CSV) and plan_destroy, with the parts every plan file shares:
 * error collection and the text checks.  The neighbours (plan-private.h lists
 * them): plan-json.c reads typed JSON values, plan-server.c the server
 * profiles, plan-csv.c is the CSV reader, plan-accounts.c the accounts CSV. */
#include "plan-private.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- error collection ---- */

void plan_errors_add(struct plan_errors *errs, int line, const char *fmt, ...)
{
	char buf[PLAN_ERROR_MAX_LEN];
	va_list args;
	char *text;

	if (errs->count == PLAN_MAX_ERRORS) {
		errs->dropped++;
		return;
	}
	va_start(args, fmt);
	/* A truncated message is still useful. */
	(void)vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	text = strdup(buf);
	if (text == NULL) {
		errs->oom = true;
		return;
	}
	errs->items[errs->count].line = line;
	errs->items[errs->count].seq = (int)errs->count;
	errs->items[errs->count].text = text;
	errs->count++;
}

bool plan_errors_any(const struct plan_errors *errs)
{
	return errs->count > 0 || errs->dropped > 0 || errs->oom;
}

static int plan_error_cmp(const void *a, const void *b)
{
	const struct plan_error *ea = a, *eb = b;

	if (ea->line != eb->line)
		return ea->line < eb->line ? -1 : 1;
	return ea->seq < eb->seq ? -1 : ea->seq > eb->seq;
}

/* Writes the errors, sorted by line, one per line into err, and frees them. */
void plan_errors_flush(struct plan_errors *errs, char *err, size_t errlen)
{
	size_t i, used = 0;
	int n;

	qsort(errs->items, errs->count, sizeof(errs->items[0]), plan_error_cmp);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	for (i = 0; i < errs->count; i++) {
		if (err != NULL && used < errlen) {
			n = snprintf(err + used, errlen - used, "%s%s", i > 0 ? "\n" : "",
			             errs->items[i].text);
			if (n > 0)
				used += (size_t)n;
		}
		free(errs->items[i].text);
		errs->items[i].text = NULL;
	}
	if (err != NULL && used < errlen && errs->dropped > 0) {
		n = snprintf(err + used, errlen - used, "\n... and %zu more errors", errs->dropped);
		if (n > 0)
			used += (size_t)n;
	}
	if (err != NULL && used < errlen && errs->oom)
		(void)snprintf(err + used, errlen - used, "%sout of memory", used > 0 ? "\n" : "");
	errs->count = 0;
	errs->dropped = 0;
	errs->oom = false;
}

/* ---- small helpers ---- */

static void plan_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void plan_account_clear(struct plan_account *acct)
{
	free(acct->src_login);
	plan_wipe_free(acct->src_password);
	free(acct->dst_login);
	plan_wipe_free(acct->dst_password);
	free(acct->folder_rules);
	memset(acct, 0, sizeof(*acct));
}

void plan_accounts_free(struct plan *plan)
{
	size_t i;

	for (i = 0; i < plan->naccounts; i++)
		plan_account_clear(&plan->accounts[i]);
	free(plan->accounts);
	plan->accounts = NULL;
	plan->naccounts = 0;
}

void plan_destroy(struct plan **plan)
{
	struct plan *p;

	if (plan == NULL || *plan == NULL)
		return;
	p = *plan;
	plan_accounts_free(p);
	free(p->name);
	for (size_t i = 0; i < p->nsrcs; i++) {
		store_server_clear(&p->srcs[i]);
		if (p->src_master_passwords != NULL)
			plan_wipe_free(p->src_master_passwords[i]);
	}
	free(p->srcs);
	free(p->src_master_passwords);
	store_server_clear(&p->dst);
	plan_wipe_free(p->dst_master_password);
	free(p->accounts_path);
	free(p);
	*plan = NULL;
}

bool plan_has_control(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return true;
	}
	return false;
}

/* ---- plan JSON: the top level ---- */

static const char *const plan_top_keys[] = {"name",        "source",   "sources",
                                            "destination", "accounts", NULL};

/* Resolves rel against the directory of plan_path, unless it is absolute. */
static char *plan_resolve_path(const char *plan_path, const char *rel)
{
	const char *slash = strrchr(plan_path, '/');
	size_t dirlen, total;
	char *out;
	int n;

	if (rel[0] == '/' || slash == NULL)
		return strdup(rel);
	dirlen = (size_t)(slash - plan_path);
	total = dirlen + 1 + strlen(rel) + 1;
	out = malloc(total);
	if (out == NULL)
		return NULL;
	n = snprintf(out, total, "%.*s/%s", (int)dirlen, plan_path, rel);
	if (n < 0 || (size_t)n >= total) {
		free(out);
		return NULL;
	}
	return out;
}

/* The plan's name, sources and destination (the keys both forms share). */
static void plan_read_servers(struct plan_json *pj, json_t *root, struct plan *plan)
{
	(void)plan_json_string(pj, root, "", "name", true, NULL, &plan->name);
	plan_json_sources(pj, root, plan);
	plan_json_server(pj, json_object_get(root, "destination"), "destination.", &plan->dst,
	                 &plan->dst_master_password);
	plan->dst.name = strdup("destination");
	if (plan->dst.name == NULL)
		pj->errs->oom = true;
}

static const char *const plan_text_keys[] = {"name",        "source",       "sources",
                                             "destination", "accounts_csv", NULL};

int plan_parse(const char *text, size_t len, struct plan **plan_r, char *err, size_t errlen)
{
	struct plan_errors errs = {0};
	struct plan_json pj = {.path = "plan", .errs = &errs};
	struct plan *plan = NULL;
	json_error_t jerr;
	json_t *root = NULL, *csv;
	int ret = -1;

	*plan_r = NULL;
	plan = calloc(1, sizeof(*plan));
	if (plan == NULL) {
		errs.oom = true;
		goto out;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		plan_errors_add(&errs, 0, "plan:%d:%d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		plan_errors_add(&errs, 0, "plan: the plan must be a JSON object");
		goto out;
	}
	plan_json_unknown_keys(&pj, root, "", plan_text_keys);
	plan_read_servers(&pj, root, plan);
	csv = json_object_get(root, "accounts_csv");
	if (!json_is_string(csv))
		plan_errors_add(&errs, 0, "plan: accounts_csv: required, the accounts CSV as text");
	if (plan_errors_any(&errs))
		goto out;
	if (plan_accounts_parse_data("accounts_csv", json_string_value(csv),
	                             json_string_length(csv), plan, &errs) < 0)
		goto out;
	*plan_r = plan;
	plan = NULL;
	ret = 0;
out:
	if (ret < 0)
		plan_errors_flush(&errs, err, errlen);
	json_decref(root);
	plan_destroy(&plan);
	return ret;
}

int plan_load(const char *path, struct plan **plan_r, char *err, size_t errlen)
{
	struct plan_errors errs = {0};
	struct plan_json pj = {.path = path, .errs = &errs};
	struct plan *plan = NULL;
	json_error_t jerr;
	json_t *root = NULL;
	char *accounts = NULL;
	int ret = -1;

	*plan_r = NULL;
	plan = calloc(1, sizeof(*plan));
	if (plan == NULL) {
		errs.oom = true;
		goto out;
	}
	/* Duplicate keys would silently hide a value: reject them. */
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line > 0)
			plan_errors_add(&errs, 0, "%s:%d:%d: %s", path, jerr.line, jerr.column,
			                jerr.text);
		else
			plan_errors_add(&errs, 0, "%s: %s", path, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		plan_errors_add(&errs, 0, "%s: the plan must be a JSON object", path);
		goto out;
	}
	plan_json_unknown_keys(&pj, root, "", plan_top_keys);
	plan_read_servers(&pj, root, plan);
	if (plan_json_string(&pj, root, "", "accounts", false, NULL, &accounts) == 0 &&
	    accounts != NULL) {
		if (accounts[0] == '\0') {
			plan_errors_add(&errs, 0, "%s: accounts: empty", path);
		} else {
			plan->accounts_path = plan_resolve_path(path, accounts);
			if (plan->accounts_path == NULL)
				errs.oom = true;
		}
	}
	/* The CSV is read only for a valid plan: its errors would otherwise
	 * bury the plan's. */
	if (plan_errors_any(&errs))
		goto out;
	if (plan->accounts_path != NULL &&
	    plan_accounts_parse_into(plan->accounts_path, plan, &errs) < 0)
		goto out;
	*plan_r = plan;
	plan = NULL;
	ret = 0;
out:
	if (ret < 0)
		plan_errors_flush(&errs, err, errlen);
	free(accounts);
	json_decref(root);
	plan_destroy(&plan);
	return ret;
}
