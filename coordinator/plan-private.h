/* Internals of the plan (plan.h), shared by the files that cut it by concern:
 *   plan.c           plan_load (the top of the plan JSON), plan_destroy, error
 *                    collection, the text checks the others share
 *   plan-json.c      one typed member of a JSON object, with its error text:
 *                    strings, choices, integers, exclude lists, sizes, rates
 *   plan-server.c    a server profile: its keys, blackout windows, sources
 *   plan-csv.c       the CSV reader (RFC 4180)
 *   plan-accounts.c  the accounts CSV: columns, rows, duplicates,
 *                    plan_accounts_parse
 * Not a public interface: only these files include it.
 *
 * Errors are never returned as text by these functions: they are added to a
 * struct plan_errors (with the CSV line, 0 for JSON and file errors) and
 * written out once, sorted, by plan_errors_flush. */
#ifndef MAILSHIFT_PLAN_PRIVATE_H
#define MAILSHIFT_PLAN_PRIVATE_H

#include "plan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PLAN_CSV_MAX_FIELDS 64
#define PLAN_ERROR_MAX_LEN 512

/* ---- error collection (plan.c) ---- */

struct plan_error {
	int line; /* CSV line, 0 for file-level and JSON errors */
	int seq;  /* order of discovery, to keep the sort stable */
	char *text;
};

struct plan_errors {
	struct plan_error items[PLAN_MAX_ERRORS];
	size_t count;
	size_t dropped;
	bool oom;
};

/* Records one error; past PLAN_MAX_ERRORS only counts it; on allocation
 * failure sets errs->oom. */
void plan_errors_add(struct plan_errors *errs, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool plan_errors_any(const struct plan_errors *errs);
/* Writes the errors, sorted by line, one per line into err, and frees them. */
void plan_errors_flush(struct plan_errors *errs, char *err, size_t errlen);

/* ---- shared helpers (plan.c) ---- */

/* Frees an account's strings, wiping its passwords, and zeroes it. */
void plan_account_clear(struct plan_account *acct);
/* Clears and frees plan's accounts; plan->naccounts becomes 0. */
void plan_accounts_free(struct plan *plan);
/* True if s holds a control character (below 0x20, or DEL). */
bool plan_has_control(const char *s, size_t len);

/* ---- CSV reader (plan-csv.c) ---- */

/* ---- CSV reader (RFC 4180) ----
 * Decodes fields in place in a private, mutable copy of the file: a decoded
 * field is never longer than its encoded form, so the write position never
 * passes the read position. */

struct csv_field {
	char *value; /* NUL-terminated, may contain line breaks */
	size_t len;
	bool quoted;
};

struct csv_reader {
	char *data; /* file contents, NUL-terminated */
	size_t len;
	size_t pos;
	int line; /* physical line at pos, 1-based */

	struct csv_field fields[PLAN_CSV_MAX_FIELDS];
	size_t nfields;
	int record_line;
	/* Set when csv_read_record fails: */
	const char *error;
	size_t error_field; /* 0-based; the field the error is about */
	int error_line;
};

enum csv_result { CSV_EOF = 0, CSV_RECORD = 1, CSV_BAD_RECORD = -1, CSV_FATAL = -2 };

/* Reads the next record into r->fields.  Field values stay valid until the
 * reader's data is freed. */
enum csv_result csv_read_record(struct csv_reader *r);

/* ---- accounts CSV (plan-accounts.c) ---- */

/* plan_accounts_parse with the errors added to errs instead of written out. */
int plan_accounts_parse_into(const char *csv_path, struct plan *plan, struct plan_errors *errs);
/* The same from text in memory when text is not NULL (csv_path labels it). */
int plan_accounts_parse_data(const char *csv_path, const char *text, size_t textlen,
                             struct plan *plan, struct plan_errors *errs);

/* ---- plan JSON (plan-json.c, plan-server.c) ----
 * prefix is the JSON path of obj, ending in "." ("" at the top level); the
 * readers return 0, or -1 after recording an error (or setting oom). */

struct plan_json {
	const char *path;
	struct plan_errors *errs;
};

/* Records an error for every key of obj not in the NULL-ended known. */
void plan_json_unknown_keys(struct plan_json *pj, json_t *obj, const char *prefix,
                            const char *const *known);
/* Copies an optional string member: absent or null gives def (which may be
 * NULL). */
int plan_json_string(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                     bool required, const char *def, char **out_r);
/* A string member that must be one of the NULL-ended values; def if absent. */
int plan_json_choice(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                     const char *const *values, const char *def, char **out_r);
/* An integer member in min..max; def if absent. */
int plan_json_int(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                  long long min, long long max, int def, int *out_r);
/* The exclude array, joined with commas (the form store_server.exclude keeps). */
int plan_json_exclude(struct plan_json *pj, json_t *obj, const char *prefix, char **out_r);
/* A source profile's "folder_rules" in lib/imap/rules.h's text form ("" when
 * absent); -1 with the rule named in pj's errors. */
int plan_json_folder_rules(struct plan_json *pj, json_t *obj, const char *prefix, char **out_r);
/* A size or a rate, an integer or a string with a unit, at most max (named by
 * max_text in the error). */
int plan_json_size(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
                   int64_t max, const char *max_text, int64_t *out_r);

/* Reads the server object obj (NULL when absent) at prefix into srv. */
void plan_json_server(struct plan_json *pj, json_t *obj, const char *prefix,
                      struct store_server *srv, char **master_password_r);
/* "source": {...} or "sources": {"NAME": {...}, ...} into plan->srcs. */
void plan_json_sources(struct plan_json *pj, json_t *root, struct plan *plan);

#endif
