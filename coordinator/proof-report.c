/* A proof written for people: Markdown for the customer, CSV for a
 * spreadsheet (see proof-report.h). */
#include "proof-report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "";
}

static long long num(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* A cell of a Markdown table: '|' and line breaks would cut the row. */
static void md_cell(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n' || *s == '\r')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

/* A CSV field, quoted (RFC 4180). */
static void csv_field(FILE *f, const char *s, const char *sep)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
	fputs(sep, f);
}

static void uid_text(const json_t *v, char *out, size_t outlen)
{
	if (json_is_integer(v))
		snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
	else
		out[0] = '\0';
}

static void write_md(FILE *f, const json_t *proof)
{
	const json_t *accounts = json_object_get(proof, "accounts"), *a;
	size_t i;

	fprintf(f, "# Proof of completeness: migration %lld\n\n", num(proof, "migration"));
	fprintf(f,
	        "Made %s. Every folder copied was read on both servers and every message"
	        " compared by content (SHA-256 of its bytes, line endings aside), size,"
	        " flags and received date.\n\n",
	        str(proof, "at"));
	fprintf(f, "**Verdict: %s.**\n\n",
	        json_is_true(json_object_get(proof, "exact"))
	            ? "complete: the destination holds exactly the source's messages"
	            : "not exact: the differences are listed below");
	fprintf(f, "| Account | Result | Missing | Extra | Changed |\n|---|---|---|---|---|\n");
	json_array_foreach(accounts, i, a)
	{
		fputs("| ", f);
		md_cell(f, str(a, "account"));
		fprintf(f, " | %s | %lld | %lld | %lld |\n",
		        json_is_true(json_object_get(a, "exact")) ? "exact" : "**differs**",
		        num(a, "missing"), num(a, "extra"), num(a, "changed"));
	}
	json_array_foreach(accounts, i, a)
	{
		const json_t *folders = json_object_get(a, "folders"), *fo;
		const json_t *diffs = json_object_get(a, "differences"), *d;
		size_t k;

		fputs("\n## ", f);
		md_cell(f, str(a, "account"));
		if (strcmp(str(a, "state"), "running") == 0)
			fputs("\n\nThe account was being copied while it was proven: run the proof"
			      " again once its pass has ended.",
			      f);
		fprintf(f, "\n\n%s\n\n",
		        json_is_true(json_object_get(a, "exact"))
		            ? "Complete: every message is on the destination, unchanged."
		            : "Not exact.");
		if (str(a, "error")[0] != '\0') {
			fputs("The proof could not be completed: ", f);
			md_cell(f, str(a, "error"));
			fputs("\n\n", f);
		}
		fprintf(f,
		        "| Folder | Destination folder | Source | Destination | Missing | Extra |"
		        " Changed |\n|---|---|---|---|---|---|---|\n");
		json_array_foreach(folders, k, fo)
		{
			fputs("| ", f);
			md_cell(f, str(fo, "name"));
			fputs(" | ", f);
			md_cell(f, str(fo, "destination_name"));
			fprintf(f, " | %lld | %lld | %lld | %lld | %lld |\n", num(fo, "source"),
			        num(fo, "destination"), num(fo, "missing"), num(fo, "extra"),
			        num(fo, "changed"));
		}
		if (json_array_size(diffs) == 0)
			continue;
		fprintf(f, "\n| Folder | Difference | Source UID | Destination UID | Source |"
		           " Destination | Detail |\n|---|---|---|---|---|---|---|\n");
		json_array_foreach(diffs, k, d)
		{
			char su[16], du[16];
			uid_text(json_object_get(d, "source_uid"), su, sizeof(su));
			uid_text(json_object_get(d, "destination_uid"), du, sizeof(du));
			fputs("| ", f);
			md_cell(f, str(d, "folder"));
			fprintf(f, " | %s | %s | %s | ", str(d, "kind"), su, du);
			md_cell(f, str(d, "source"));
			fputs(" | ", f);
			md_cell(f, str(d, "destination"));
			fputs(" | ", f);
			md_cell(f, str(d, "detail"));
			fputs(" |\n", f);
		}
	}
}

static void write_csv(FILE *f, const json_t *proof)
{
	const json_t *a, *d;
	size_t i, k;

	fputs("account,folder,kind,source_uid,destination_uid,source,destination,detail\r\n", f);
	json_array_foreach(json_object_get(proof, "accounts"), i, a)
	{
		json_array_foreach(json_object_get(a, "differences"), k, d)
		{
			char su[16], du[16];
			uid_text(json_object_get(d, "source_uid"), su, sizeof(su));
			uid_text(json_object_get(d, "destination_uid"), du, sizeof(du));
			csv_field(f, str(a, "account"), ",");
			csv_field(f, str(d, "folder"), ",");
			csv_field(f, str(d, "kind"), ",");
			csv_field(f, su, ",");
			csv_field(f, du, ",");
			csv_field(f, str(d, "source"), ",");
			csv_field(f, str(d, "destination"), ",");
			csv_field(f, str(d, "detail"), "\r\n");
		}
	}
}

int proof_report_write(const json_t *proof, const char *dir, char *err, size_t errlen)
{
	char path[4096];
	const char *ext[2] = {"md", "csv"};

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		FILE *f;
		int n = snprintf(path, sizeof(path), "%s/proof-migration-%lld.%s", dir,
		                 num(proof, "migration"), ext[i]);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			snprintf(err, errlen, "%s: path too long", dir);
			return -1;
		}
		f = fopen(path, "w");
		if (f == NULL) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (i == 0)
			write_md(f, proof);
		else
			write_csv(f, proof);
		if (fclose(f) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}
