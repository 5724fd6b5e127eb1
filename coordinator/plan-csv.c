/* The CSV reader (RFC 4180) under the accounts CSV: records and fields,
 * quoting, line ends and the line numbers errors give.  Its structs are in
 * plan-private.h; its one user is plan-accounts.c. */
#include "plan-private.h"

#include <stdbool.h>
#include <stddef.h>

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
enum csv_result csv_read_record(struct csv_reader *r)
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
