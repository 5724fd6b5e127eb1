/* The accounts CSV of a plan: its columns and their aliases, the header, one
 * row's checks (logins, passwords, priority, source profile), duplicate
 * logins, and plan_accounts_parse.  The records come from the CSV reader in
 * plan-csv.c; errors are collected as plan.c does (plan-private.h). */
#include "plan-private.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* 100,000 accounts of a few hundred bytes each fit easily; anything larger is
 * not an accounts file. */
#define PLAN_CSV_MAX_BYTES (256u * 1024 * 1024)

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Trims blanks in place; returns the new start. */
static char *trim(char *s, size_t *len)
{
	size_t n = *len;

	while (n > 0 && is_blank((unsigned char)s[0])) {
		s++;
		n--;
	}
	while (n > 0 && is_blank((unsigned char)s[n - 1]))
		n--;
	s[n] = '\0';
	*len = n;
	return s;
}

/* Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or len. */
static size_t utf8_invalid_at(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else
			return i;
		if (len - i <= n)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return i;
		i += n + 1;
	}
	return len;
}

/* ---- accounts ---- */

enum plan_col {
	COL_SRC_LOGIN,
	COL_SRC_PASSWORD,
	COL_DST_LOGIN,
	COL_DST_PASSWORD,
	COL_PRIORITY,
	COL_SOURCE,
	COL_FOLDER_MAP,
	COL_COUNT
};

static const char *const plan_col_names[COL_COUNT][5] = {
    [COL_SRC_LOGIN] = {"source_login", "src_login", "source_user", "user", NULL},
    [COL_SRC_PASSWORD] = {"source_password", "src_password", "password", NULL},
    [COL_DST_LOGIN] = {"destination_login", "dst_login", "destination_user", NULL},
    [COL_DST_PASSWORD] = {"destination_password", "dst_password", NULL},
    [COL_PRIORITY] = {"priority", NULL},
    [COL_SOURCE] = {"source", "source_profile", "source_server", NULL},
    [COL_FOLDER_MAP] = {"folder_map", "folder_rules", NULL},
};

static int plan_col_lookup(const char *name)
{
	int col, i;

	for (col = 0; col < COL_COUNT; col++) {
		for (i = 0; plan_col_names[col][i] != NULL; i++) {
			if (strcasecmp(name, plan_col_names[col][i]) == 0)
				return col;
		}
	}
	return -1;
}

struct plan_csv {
	const char *path; /* the file, or the label of text */
	const char *text; /* the CSV given in memory (an API body), or NULL */
	size_t textlen;
	const struct plan *plan; /* its source profiles */
	struct csv_reader reader;
	size_t ncols;
	char *col_names[PLAN_CSV_MAX_FIELDS]; /* header names as written, trimmed */
	int col_kind[PLAN_CSV_MAX_FIELDS];    /* enum plan_col or -1 */
	int col_of[COL_COUNT];                /* field index of each column or -1 */
	struct plan_account *accounts;
	size_t naccounts, cap;
	struct plan_errors *errs;
};

static const char *plan_csv_col_name(const struct plan_csv *csv, size_t field)
{
	return field < csv->ncols ? csv->col_names[field] : "?";
}

static void plan_csv_field_error(struct plan_csv *csv, int line, size_t field, const char *what)
{
	if (csv->ncols == 0)
		plan_errors_add(csv->errs, line, "%s:%d: column %zu: %s", csv->path, line,
		                field + 1, what);
	else
		plan_errors_add(csv->errs, line, "%s:%d: column %zu (%s): %s", csv->path, line,
		                field + 1, plan_csv_col_name(csv, field), what);
}

static int plan_csv_read_file(struct plan_csv *csv)
{
	struct stat st;
	FILE *fp = NULL;
	char *data = NULL;
	size_t len;
	int ret = -1;

	if (csv->text != NULL) {
		/* A copy: the reader's buffer is wiped and freed like a file's. */
		if (csv->textlen > PLAN_CSV_MAX_BYTES) {
			plan_errors_add(csv->errs, 0, "%s: larger than %u bytes", csv->path,
			                PLAN_CSV_MAX_BYTES);
			return -1;
		}
		data = malloc(csv->textlen + 1);
		if (data == NULL) {
			plan_errors_add(csv->errs, 0, "%s: out of memory", csv->path);
			return -1;
		}
		memcpy(data, csv->text, csv->textlen);
		data[csv->textlen] = '\0';
		csv->reader.data = data;
		csv->reader.len = csv->textlen;
		csv->reader.line = 1;
		return 0;
	}
	fp = fopen(csv->path, "rbe");
	if (fp == NULL) {
		plan_errors_add(csv->errs, 0, "%s: cannot open: %s", csv->path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) < 0) {
		plan_errors_add(csv->errs, 0, "%s: cannot stat: %s", csv->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		plan_errors_add(csv->errs, 0, "%s: not a regular file", csv->path);
		goto out;
	}
	if ((unsigned long long)st.st_size > PLAN_CSV_MAX_BYTES) {
		plan_errors_add(csv->errs, 0, "%s: larger than %u bytes", csv->path,
		                PLAN_CSV_MAX_BYTES);
		goto out;
	}
	len = (size_t)st.st_size;
	data = malloc(len + 1);
	if (data == NULL) {
		plan_errors_add(csv->errs, 0, "%s: out of memory", csv->path);
		goto out;
	}
	if (len > 0 && fread(data, 1, len, fp) != len) {
		plan_errors_add(csv->errs, 0, "%s: cannot read: %s", csv->path,
		                ferror(fp) ? strerror(errno) : "file shrank while reading");
		goto out;
	}
	data[len] = '\0';
	csv->reader.data = data;
	csv->reader.len = len;
	csv->reader.line = 1;
	data = NULL;
	ret = 0;
out:
	free(data);
	if (fp != NULL)
		(void)fclose(fp);
	return ret;
}

/* Returns 0 if the header is usable (data rows can be checked against it). */
static int plan_csv_header(struct plan_csv *csv)
{
	struct csv_reader *r = &csv->reader;
	size_t i, nknown = 0;
	int line = r->record_line;
	int ret = 0;

	for (i = 0; i < COL_COUNT; i++)
		csv->col_of[i] = -1;
	for (i = 0; i < r->nfields; i++) {
		size_t len = r->fields[i].len;
		char *name = trim(r->fields[i].value, &len);

		csv->col_names[i] = name;
		csv->col_kind[i] = plan_col_lookup(name);
		if (csv->col_kind[i] >= 0)
			nknown++;
	}
	csv->ncols = r->nfields;
	if (nknown == 0) {
		/* Probably a data row: its fields may be passwords, so none is
		 * echoed. */
		plan_errors_add(csv->errs, line,
		                "%s:%d: no header row: the first line must name the columns "
		                "(source_login, source_password, destination_login, "
		                "destination_password, priority)",
		                csv->path, line);
		return -1;
	}
	for (i = 0; i < csv->ncols; i++) {
		int kind = csv->col_kind[i];

		if (kind < 0) {
			plan_csv_field_error(csv, line, i, "unknown column");
			ret = -1;
		} else if (csv->col_of[kind] >= 0) {
			char what[PLAN_ERROR_MAX_LEN];
			size_t first = (size_t)csv->col_of[kind];

			(void)snprintf(what, sizeof(what), "same column as column %zu (%s)",
			               first + 1, csv->col_names[first]);
			plan_csv_field_error(csv, line, i, what);
			ret = -1;
		} else {
			csv->col_of[kind] = (int)i;
		}
	}
	if (csv->col_of[COL_SRC_LOGIN] < 0) {
		plan_errors_add(csv->errs, line, "%s:%d: missing column source_login", csv->path,
		                line);
		ret = -1;
	}
	if (csv->col_of[COL_SRC_PASSWORD] < 0) {
		plan_errors_add(csv->errs, line, "%s:%d: missing column source_password", csv->path,
		                line);
		ret = -1;
	}
	return ret;
}

static struct csv_field *plan_csv_get(struct plan_csv *csv, enum plan_col col)
{
	return csv->col_of[col] < 0 ? NULL : &csv->reader.fields[csv->col_of[col]];
}

/* Checks a login field and trims it; returns NULL (error recorded) if bad. */
static const char *plan_csv_login(struct plan_csv *csv, enum plan_col col, bool required)
{
	struct csv_field *f = plan_csv_get(csv, col);
	int line = csv->reader.record_line;
	size_t len;
	char *login;

	if (f == NULL)
		return "";
	len = f->len;
	login = trim(f->value, &len);
	if (len == 0) {
		if (required)
			plan_csv_field_error(csv, line, (size_t)csv->col_of[col], "empty");
		return required ? NULL : "";
	}
	if (strlen(login) != len || plan_has_control(login, len)) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[col],
		                     "contains a control character");
		return NULL;
	}
	return login;
}

/* The folder_map column: "FROM=TO;FROM=TO", folder renames of this account
 * alone (applied before its source profile's folder_rules), as rules text in
 * *out_r (NULL when empty).  Returns false with the field's error added. */
static bool plan_csv_folder_map(struct plan_csv *csv, int line, char **out_r)
{
	struct csv_field *f = plan_csv_get(csv, COL_FOLDER_MAP);
	size_t len = f != NULL ? f->len : 0;
	char *map = f != NULL ? trim(f->value, &len) : NULL;
	char *out = NULL, *pair, *save = NULL;
	size_t used = 0;
	bool ok = true;

	*out_r = NULL;
	if (len == 0)
		return true;
	if (memchr(map, '\0', len) != NULL || plan_has_control(map, len)) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_FOLDER_MAP],
		                     "contains a control character");
		return false;
	}
	map = strndup(map, len);
	out = malloc(2 * len + 2);
	if (map == NULL || out == NULL) {
		csv->errs->oom = true;
		free(map);
		free(out);
		return false;
	}
	for (pair = strtok_r(map, ";", &save); pair != NULL && ok;
	     pair = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(pair, '=');
		size_t flen, tlen;
		char *from, *to;

		if (eq == NULL) {
			ok = false;
			break;
		}
		*eq = '\0';
		flen = strlen(pair);
		tlen = strlen(eq + 1);
		from = trim(pair, &flen);
		to = trim(eq + 1, &tlen);
		if (flen == 0 || tlen == 0) {
			ok = false;
			break;
		}
		used +=
		    (size_t)sprintf(out + used, "=%.*s\t%.*s\n", (int)flen, from, (int)tlen, to);
	}
	free(map);
	if (ok && used == 0)
		ok = false;
	if (!ok) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_FOLDER_MAP],
		                     "must be FROM=TO pairs separated by ';' (e.g. \"Sent "
		                     "Items=Sent;Old=Archive/Old\")");
		free(out);
		return false;
	}
	*out_r = out;
	return true;
}

static void plan_csv_row(struct plan_csv *csv)
{
	struct csv_reader *r = &csv->reader;
	int line = r->record_line;
	struct plan_account acct = {0};
	struct csv_field *f;
	const char *src_login, *dst_login;
	bool ok = true;

	if (r->nfields != csv->ncols) {
		plan_errors_add(csv->errs, line, "%s:%d: has %zu fields, the header has %zu",
		                csv->path, line, r->nfields, csv->ncols);
		return;
	}
	/* Text fields go to PostgreSQL and IMAP as UTF-8; passwords are kept byte
	 * for byte (encrypted, never stored as text). */
	for (size_t i = 0; i < r->nfields; i++) {
		size_t bad;
		char what[128];

		if (csv->col_kind[i] == COL_SRC_PASSWORD || csv->col_kind[i] == COL_DST_PASSWORD)
			continue;
		bad = utf8_invalid_at(r->fields[i].value, r->fields[i].len);
		if (bad == r->fields[i].len)
			continue;
		(void)snprintf(what, sizeof(what),
		               "not valid UTF-8: byte 0x%02x at byte %zu of the field (save the"
		               " file as UTF-8)",
		               (unsigned)(unsigned char)r->fields[i].value[bad], bad + 1);
		plan_csv_field_error(csv, line, i, what);
		return;
	}
	src_login = plan_csv_login(csv, COL_SRC_LOGIN, true);
	dst_login = plan_csv_login(csv, COL_DST_LOGIN, false);
	ok = src_login != NULL && dst_login != NULL;

	f = plan_csv_get(csv, COL_SRC_PASSWORD);
	if (f->len == 0) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_SRC_PASSWORD], "empty");
		ok = false;
	} else if (strlen(f->value) != f->len) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_SRC_PASSWORD],
		                     "contains a NUL byte");
		ok = false;
	}
	f = plan_csv_get(csv, COL_DST_PASSWORD);
	if (f != NULL && strlen(f->value) != f->len) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_DST_PASSWORD],
		                     "contains a NUL byte");
		ok = false;
	}

	acct.priority = PLAN_PRIORITY_DEFAULT;
	f = plan_csv_get(csv, COL_PRIORITY);
	if (f != NULL) {
		size_t len = f->len;
		char *s = trim(f->value, &len), *end = NULL;
		long prio;

		if (len > 0) {
			errno = 0;
			prio = strtol(s, &end, 10);
			if (errno != 0 || end != s + len || prio < 1 || prio > 9) {
				plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_PRIORITY],
				                     "must be an integer 1..9");
				ok = false;
			} else {
				acct.priority = (int)prio;
			}
		}
	}
	f = plan_csv_get(csv, COL_SOURCE);
	{
		size_t len = f != NULL ? f->len : 0;
		char *name = f != NULL ? trim(f->value, &len) : NULL;
		const struct plan *plan = csv->plan;
		size_t i;

		if (len == 0 && plan->nsrcs > 1) {
			plan_csv_field_error(csv, line,
			                     f != NULL ? (size_t)csv->col_of[COL_SOURCE] : 0,
			                     "the plan has several source profiles: name one "
			                     "in column source");
			ok = false;
		} else if (len > 0) {
			for (i = 0; i < plan->nsrcs; i++) {
				if (strcmp(plan->srcs[i].name, name) == 0)
					break;
			}
			if (i == plan->nsrcs) {
				char what[PLAN_ERROR_MAX_LEN];
				size_t used = 0;

				used += (size_t)snprintf(what, sizeof(what),
				                         "unknown source profile \"%.64s\" (the "
				                         "plan has:",
				                         name);
				for (i = 0; i < plan->nsrcs && used < sizeof(what); i++)
					used += (size_t)snprintf(what + used, sizeof(what) - used,
					                         " %s", plan->srcs[i].name);
				if (used < sizeof(what))
					(void)snprintf(what + used, sizeof(what) - used, ")");
				plan_csv_field_error(csv, line, (size_t)csv->col_of[COL_SOURCE],
				                     what);
				ok = false;
			} else {
				acct.source = i;
			}
		}
	}
	if (!ok || !plan_csv_folder_map(csv, line, &acct.folder_rules))
		return;

	acct.line = line;
	acct.src_login = strdup(src_login);
	acct.dst_login = strdup(dst_login[0] != '\0' ? dst_login : src_login);
	acct.src_password = strdup(plan_csv_get(csv, COL_SRC_PASSWORD)->value);
	f = plan_csv_get(csv, COL_DST_PASSWORD);
	if (f != NULL && f->len > 0)
		acct.dst_password = strdup(f->value);
	if (acct.src_login == NULL || acct.dst_login == NULL || acct.src_password == NULL ||
	    (f != NULL && f->len > 0 && acct.dst_password == NULL)) {
		csv->errs->oom = true;
		plan_account_clear(&acct);
		return;
	}
	if (csv->naccounts == csv->cap) {
		size_t cap = csv->cap == 0 ? 64 : csv->cap * 2;
		struct plan_account *tmp = realloc(csv->accounts, cap * sizeof(*tmp));

		if (tmp == NULL) {
			csv->errs->oom = true;
			plan_account_clear(&acct);
			return;
		}
		csv->accounts = tmp;
		csv->cap = cap;
	}
	csv->accounts[csv->naccounts++] = acct;
}

static int plan_login_cmp(const void *a, const void *b)
{
	const struct plan_account *x = *(const struct plan_account *const *)a;
	const struct plan_account *y = *(const struct plan_account *const *)b;
	int c = strcasecmp(x->src_login, y->src_login);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Logins are compared case-insensitively: IMAP servers treat "Bob@x" and
 * "bob@x" as the same mailbox, and copying it twice would duplicate mail.
 * Sorting keeps this O(n log n) for 100,000 accounts. */
static void plan_csv_check_duplicates(struct plan_csv *csv)
{
	const struct plan_account **sorted;
	const struct plan_account *first = NULL;
	char what[64];
	size_t i;

	if (csv->naccounts < 2)
		return;
	sorted = calloc(csv->naccounts, sizeof(*sorted));
	if (sorted == NULL) {
		csv->errs->oom = true;
		return;
	}
	for (i = 0; i < csv->naccounts; i++)
		sorted[i] = &csv->accounts[i];
	qsort(sorted, csv->naccounts, sizeof(*sorted), plan_login_cmp);
	for (i = 0; i < csv->naccounts; i++) {
		if (first == NULL || strcasecmp(first->src_login, sorted[i]->src_login) != 0) {
			first = sorted[i];
			continue;
		}
		(void)snprintf(what, sizeof(what), "duplicate of line %d", first->line);
		plan_csv_field_error(csv, sorted[i]->line, (size_t)csv->col_of[COL_SRC_LOGIN],
		                     what);
	}
	free(sorted);
}

int plan_accounts_parse_into(const char *csv_path, struct plan *plan, struct plan_errors *errs)
{
	return plan_accounts_parse_data(csv_path, NULL, 0, plan, errs);
}

int plan_accounts_parse_data(const char *csv_path, const char *text, size_t textlen,
                             struct plan *plan, struct plan_errors *errs)
{
	struct plan_csv csv = {
	    .path = csv_path, .text = text, .textlen = textlen, .plan = plan, .errs = errs};
	struct csv_reader *r = &csv.reader;
	bool header_ok = false, have_header = false;
	enum csv_result res;
	size_t i;
	int ret = -1;

	plan_accounts_free(plan);
	if (plan_csv_read_file(&csv) < 0)
		goto out;

	if (r->len >= 2 &&
	    (((unsigned char)r->data[0] == 0xff && (unsigned char)r->data[1] == 0xfe) ||
	     ((unsigned char)r->data[0] == 0xfe && (unsigned char)r->data[1] == 0xff))) {
		plan_errors_add(errs, 0, "%s: file is UTF-16; save it as UTF-8", csv_path);
		goto out;
	}
	if (r->len >= 3 && memcmp(r->data, "\xef\xbb\xbf", 3) == 0)
		r->pos = 3;

	while ((res = csv_read_record(r)) != CSV_EOF) {
		if (res == CSV_RECORD && r->nfields == 1 && r->fields[0].len == 0 &&
		    !r->fields[0].quoted)
			continue; /* blank line */
		if (res != CSV_RECORD) {
			if (have_header)
				plan_csv_field_error(&csv, r->error_line, r->error_field, r->error);
			else
				plan_errors_add(errs, r->error_line, "%s:%d: column %zu: %s",
				                csv_path, r->error_line, r->error_field + 1,
				                r->error);
			if (res == CSV_FATAL || !have_header)
				break;
			continue;
		}
		if (!have_header) {
			have_header = true;
			header_ok = plan_csv_header(&csv) == 0;
			if (!header_ok)
				break;
			continue;
		}
		plan_csv_row(&csv);
		if (errs->dropped > 0)
			break;
	}
	if (!have_header && !plan_errors_any(errs))
		plan_errors_add(errs, 0, "%s: empty file: a header row is required", csv_path);
	if (header_ok)
		plan_csv_check_duplicates(&csv);
	if (plan_errors_any(errs))
		goto out;

	plan->accounts = csv.accounts;
	plan->naccounts = csv.naccounts;
	csv.accounts = NULL;
	csv.naccounts = 0;
	ret = 0;
out:
	for (i = 0; i < csv.naccounts; i++)
		plan_account_clear(&csv.accounts[i]);
	free(csv.accounts);
	if (r->data != NULL) {
		/* The file holds every account's password. */
		explicit_bzero(r->data, r->len);
		free(r->data);
	}
	return ret;
}

int plan_accounts_parse_text(const char *label, const char *text, size_t len, struct plan *plan,
                             char *err, size_t errlen)
{
	struct plan_errors errs = {0};
	int ret;

	ret = plan_accounts_parse_data(label, text, len, plan, &errs);
	if (ret < 0)
		plan_errors_flush(&errs, err, errlen);
	return ret;
}

int plan_accounts_parse(const char *csv_path, struct plan *plan, char *err, size_t errlen)
{
	struct plan_errors errs = {0};
	int ret;

	ret = plan_accounts_parse_into(csv_path, plan, &errs);
	if (ret < 0)
		plan_errors_flush(&errs, err, errlen);
	return ret;
}
