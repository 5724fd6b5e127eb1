/* Human renderings shared by the CLI's commands: sizes, durations, bars and
 * tolerant readers of the API's JSON (a field missing or null reads as a
 * default, so an older server does not crash the client). */
#ifndef MAILSHIFT_CLI_FORMAT_H
#define MAILSHIFT_CLI_FORMAT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Integer field of obj (also a real, rounded), or def when missing/null. */
long long fmt_int(const json_t *obj, const char *key, long long def);
/* String field of obj, or def when missing/null (numbers are not strings). */
const char *fmt_str(const json_t *obj, const char *key, const char *def);
/* "1.5 MiB", "512 B"; buf of at least 16 bytes. */
const char *fmt_bytes(long long n, char *buf, size_t len);
/* "1:02:03", "4:05" or "-" when secs < 0. */
const char *fmt_duration(long long secs, char *buf, size_t len);
/* A bar of width cells filled done/total ('#' and '-'); "?" cells when
 * total <= 0.  buf holds at least width + 3 bytes: "[###---]". */
const char *fmt_bar(long long done, long long total, int width, char *buf, size_t len);
/* The states object {"synced": 3, ...} as "synced 3, running 1" (zeros
 * left out), in the order of the account state machine. */
const char *fmt_states(const json_t *states, char *buf, size_t len);
/* JSON value printed for --json: indented, with a final newline. */
void fmt_json_print(const json_t *v);
/* A JSON value as text for a table cell ("-" for null, strings bare). */
const char *fmt_cell(const json_t *v, char *buf, size_t len);
/* One CSV field, quoted when it holds a comma, a quote or a line break. */
void fmt_csv_field(FILE *f, const char *s);

#endif
