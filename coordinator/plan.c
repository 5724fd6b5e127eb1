#include "plan.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

/* 100,000 accounts of a few hundred bytes each fit easily; anything larger is
 * not an accounts file. */
#define PLAN_CSV_MAX_BYTES (256u * 1024 * 1024)
#define PLAN_CSV_MAX_FIELDS 64
#define PLAN_ERROR_MAX_LEN 512

/* ---- error collection ---- */

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

static void plan_errors_add(struct plan_errors *errs, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void plan_errors_add(struct plan_errors *errs, int line, const char *fmt, ...)
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

static bool plan_errors_any(const struct plan_errors *errs)
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
static void plan_errors_flush(struct plan_errors *errs, char *err, size_t errlen)
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

static void plan_account_clear(struct plan_account *acct)
{
	free(acct->src_login);
	plan_wipe_free(acct->src_password);
	free(acct->dst_login);
	plan_wipe_free(acct->dst_password);
	memset(acct, 0, sizeof(*acct));
}

static void plan_accounts_free(struct plan *plan)
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

static bool has_control(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return true;
	}
	return false;
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

/* Consumes a line end at pos (CRLF, LF or a lone CR) and counts the line.
 * Returns false if pos is not at a line end. */
static bool csv_eat_eol(struct csv_reader *r)
{
	if (r->pos < r->len && r->data[r->pos] == '\r') {
		r->pos++;
		if (r->pos < r->len && r->data[r->pos] == '\n')
			r->pos++;
		r->line++;
		return true;
	}
	if (r->pos < r->len && r->data[r->pos] == '\n') {
		r->pos++;
		r->line++;
		return true;
	}
	return false;
}

/* After a malformed field: skips to the end of the physical line so the next
 * record can be read. */
static void csv_skip_line(struct csv_reader *r)
{
	while (r->pos < r->len && r->data[r->pos] != '\n' && r->data[r->pos] != '\r')
		r->pos++;
	(void)csv_eat_eol(r);
}

static enum csv_result csv_fail(struct csv_reader *r, const char *error, int line)
{
	r->error = error;
	r->error_field = r->nfields;
	r->error_line = line;
	return CSV_BAD_RECORD;
}

/* Reads the next record into r->fields.  Field values stay valid until the
 * reader's data is freed. */
static enum csv_result csv_read_record(struct csv_reader *r)
{
	r->nfields = 0;
	r->error = NULL;
	if (r->pos >= r->len)
		return CSV_EOF;
	r->record_line = r->line;

	for (;;) {
		struct csv_field *f;
		size_t w = r->pos;
		int field_line = r->line;
		bool end_record = false;

		if (r->nfields == PLAN_CSV_MAX_FIELDS) {
			csv_skip_line(r);
			return csv_fail(r, "too many fields", field_line);
		}
		f = &r->fields[r->nfields];
		f->value = r->data + w;
		f->quoted = false;

		if (r->pos < r->len && r->data[r->pos] == '"') {
			bool closed = false;

			f->quoted = true;
			r->pos++;
			while (r->pos < r->len) {
				char c = r->data[r->pos];

				if (c == '"') {
					if (r->pos + 1 < r->len && r->data[r->pos + 1] == '"') {
						r->data[w++] = '"';
						r->pos += 2;
						continue;
					}
					r->pos++;
					closed = true;
					break;
				}
				if (c == '\n' || (c == '\r' && (r->pos + 1 >= r->len ||
				                                r->data[r->pos + 1] != '\n')))
					r->line++;
				r->data[w++] = c;
				r->pos++;
			}
			if (!closed) {
				/* The quote swallowed the rest of the file: nothing
				 * after it can be read reliably. */
				r->error = "unterminated quote";
				r->error_field = r->nfields;
				r->error_line = field_line;
				return CSV_FATAL;
			}
			if (r->pos < r->len && r->data[r->pos] != ',' && r->data[r->pos] != '\r' &&
			    r->data[r->pos] != '\n') {
				csv_skip_line(r);
				return csv_fail(r, "text after the closing quote", field_line);
			}
		} else {
			while (r->pos < r->len) {
				char c = r->data[r->pos];

				if (c == ',' || c == '\r' || c == '\n')
					break;
				if (c == '"') {
					csv_skip_line(r);
					return csv_fail(
					    r,
					    "quote inside an unquoted field "
					    "(quote the whole field and double the quote)",
					    field_line);
				}
				r->data[w++] = c;
				r->pos++;
			}
		}

		/* pos is at ',', a line end or the end of the data; the byte at w
		 * (<= pos) has been consumed or is the delimiter just examined. */
		if (r->pos < r->len && r->data[r->pos] == ',') {
			r->pos++;
		} else {
			if (!csv_eat_eol(r) && r->pos < r->len) {
				/* Not reached: the loops above stop only at these. */
				csv_skip_line(r);
				return csv_fail(r, "unexpected character", field_line);
			}
			end_record = true;
		}
		r->data[w] = '\0';
		f->len = (size_t)(r->data + w - f->value);
		r->nfields++;
		if (end_record)
			return CSV_RECORD;
		if (r->pos >= r->len) {
			/* "a,b," at the end of the file: a final empty field. */
			f = &r->fields[r->nfields];
			if (r->nfields == PLAN_CSV_MAX_FIELDS)
				return csv_fail(r, "too many fields", field_line);
			f->value = r->data + r->len;
			f->len = 0;
			f->quoted = false;
			r->nfields++;
			return CSV_RECORD;
		}
	}
}

/* ---- accounts ---- */

enum plan_col {
	COL_SRC_LOGIN,
	COL_SRC_PASSWORD,
	COL_DST_LOGIN,
	COL_DST_PASSWORD,
	COL_PRIORITY,
	COL_SOURCE,
	COL_COUNT
};

static const char *const plan_col_names[COL_COUNT][5] = {
    [COL_SRC_LOGIN] = {"source_login", "src_login", "source_user", "user", NULL},
    [COL_SRC_PASSWORD] = {"source_password", "src_password", "password", NULL},
    [COL_DST_LOGIN] = {"destination_login", "dst_login", "destination_user", NULL},
    [COL_DST_PASSWORD] = {"destination_password", "dst_password", NULL},
    [COL_PRIORITY] = {"priority", NULL},
    [COL_SOURCE] = {"source", "source_profile", "source_server", NULL},
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
	const char *path;
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
	if (strlen(login) != len || has_control(login, len)) {
		plan_csv_field_error(csv, line, (size_t)csv->col_of[col],
		                     "contains a control character");
		return NULL;
	}
	return login;
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
	if (!ok)
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

static int plan_accounts_parse_into(const char *csv_path, struct plan *plan,
                                    struct plan_errors *errs)
{
	struct plan_csv csv = {.path = csv_path, .plan = plan, .errs = errs};
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

int plan_accounts_parse(const char *csv_path, struct plan *plan, char *err, size_t errlen)
{
	struct plan_errors errs = {0};
	int ret;

	ret = plan_accounts_parse_into(csv_path, plan, &errs);
	if (ret < 0)
		plan_errors_flush(&errs, err, errlen);
	return ret;
}

/* ---- plan JSON ---- */

struct plan_json {
	const char *path;
	struct plan_errors *errs;
};

static const char *const plan_top_keys[] = {"name",        "source",   "sources",
                                            "destination", "accounts", NULL};
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
                                               "max_messages_per_second",
                                               "max_bytes_per_second",
                                               "account_daily_bytes",
                                               "blackout",
                                               NULL};
static const char *const plan_tls_values[] = {"implicit", "starttls", "none", NULL};
static const char *const plan_auth_values[] = {"login", "plain", "xoauth2", NULL};

static bool plan_in_list(const char *s, const char *const *list)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++) {
		if (strcmp(s, list[i]) == 0)
			return true;
	}
	return false;
}

static void plan_json_unknown_keys(struct plan_json *pj, json_t *obj, const char *prefix,
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
static int plan_json_string(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
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

static int plan_json_choice(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
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

static int plan_json_int(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
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
static int plan_json_exclude(struct plan_json *pj, json_t *obj, const char *prefix, char **out_r)
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
static int plan_json_size(struct plan_json *pj, json_t *obj, const char *prefix, const char *key,
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

static void plan_json_server(struct plan_json *pj, json_t *obj, const char *prefix,
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
static void plan_json_sources(struct plan_json *pj, json_t *root, struct plan *plan)
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
		         has_control(key, strlen(key)))
			plan_errors_add(pj->errs, 0,
			                "%s: sources: \"%.64s\": a profile name must be non-empty, "
			                "without commas or control characters",
			                pj->path, key);
		plan_json_server(pj, value, prefix, srv, &plan->src_master_passwords[plan->nsrcs]);
		plan->nsrcs++;
	}
}

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
	(void)plan_json_string(&pj, root, "", "name", true, NULL, &plan->name);
	plan_json_sources(&pj, root, plan);
	plan_json_server(&pj, json_object_get(root, "destination"), "destination.", &plan->dst,
	                 &plan->dst_master_password);
	plan->dst.name = strdup("destination");
	if (plan->dst.name == NULL)
		errs.oom = true;
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
