/* The subcommand table, the helpers every handler shares, and the commands
 * about migrations and passes: migrations, import, verify, start, delta,
 * passes, wait, retry. */
#include "commands.h"
#include "format.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A plan's accounts CSV larger than this is not sent (the API's own bound is
 * what counts; this only keeps a wrong path from reading a disk image). */
#define CSV_MAX (256L * 1024 * 1024)

static const struct cli_command commands[] = {
    {"migrations", "", 0, 0, cmd_migrations, "every migration: accounts by state, progress"},
    {"import", "PLAN.json", 1, 1, cmd_import,
     "store a migration from a plan and its accounts CSV\n(sent inline); prints its id"},
    {"verify", "MIGRATION", 1, 1, cmd_verify, "check every account's source and destination login"},
    {"start", "MIGRATION", 1, 1, cmd_start, "pass 1 (the bulk copy) for every verified account"},
    {"delta", "MIGRATION [--final] [ACCOUNT...]", 1, -1, cmd_delta,
     "the next pass, for every account or those named;\n--final marks the pass after the MX "
     "switch"},
    {"passes", "MIGRATION [N]", 1, 2, cmd_passes,
     "each pass's kind, counts and timings; with N, "
     "per\naccount"},
    {"wait", "MIGRATION N [SECS]", 2, 3, cmd_wait,
     "wait (default 3600 s) until pass N ended; exit 0\nonly if every account is synced"},
    {"retry", "MIGRATION N [ACCOUNT...]", 2, -1, cmd_retry,
     "queue again the failed or refused accounts of pass N\n(all, or those named)"},
    {"status", "MIGRATION [ACCOUNT] [--watch [SECS]]", 1, 4, cmd_status,
     "progress and accounts; --watch redraws live bars\n(every SECS, default 2) until nothing "
     "runs"},
    {"accounts", "MIGRATION [--state S] [--q TEXT]", 1, 5, cmd_accounts,
     "accounts with state, pass, counts, last error"},
    {"account", "MIGRATION ACCOUNT", 2, 2, cmd_account,
     "one account: folders both sides, passes, errors,\nstate history"},
    {"add", "MIGRATION CSV", 2, 2, cmd_add, "more accounts (the plan's CSV columns)"},
    {"passwd", "MIGRATION ACCOUNT source|destination|both", 3, 3, cmd_passwd,
     "new password, read from stdin"},
    {"remove", "MIGRATION ACCOUNT", 2, 2, cmd_remove, "forget an account (its copied mail stays)"},
    {"pause", "MIGRATION [ACCOUNT]", 1, 2, cmd_control,
     "stop starting work; running accounts checkpoint"},
    {"resume", "MIGRATION [ACCOUNT]", 1, 2, cmd_control, "continue paused accounts"},
    {"cancel", "MIGRATION [ACCOUNT]", 1, 2, cmd_control, "stop for good"},
    {"server", "show MIGRATION | set MIGRATION ID FIELD=VALUE...", 2, -1, cmd_server,
     "server profiles; set changes host, port, tls,\nca_file, max_connections, rate_messages,\n"
     "rate_bytes, account_daily_bytes, blackouts (JSON)"},
    {"estimate", "MIGRATION [ACCOUNT...]", 1, -1, cmd_estimate,
     "folders, messages and bytes at the source, and an ETA"},
    {"proof", "MIGRATION [--last] [ACCOUNT...]", 1, -1, cmd_proof,
     "compare source and destination message by message;\n--last shows the stored proof; exit 4 "
     "if not exact"},
    {"empty-destination", "MIGRATION ACCOUNT --confirm DESTINATION_LOGIN", 3, 4,
     cmd_empty_destination, "delete the account's mail at the destination"},
    {"errors", "MIGRATION [--account ACCOUNT] [--limit N]", 1, 5, cmd_errors,
     "message errors with the servers' words"},
    {"report", "MIGRATION [--csv]", 1, 2, cmd_report,
     "per account: state, passes, folder counts both\nsides, errors, times"},
    {"throughput", "MIGRATION [--minutes N]", 1, 3, cmd_throughput,
     "messages and bytes copied per minute"},
};

const struct cli_command *cli_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Column at which a command's description starts. */
#define USAGE_COLUMN 30

void cli_usage_print(FILE *f)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct cli_command *cmd = &commands[i];
		const char *line = cmd->help, *nl;
		char head[160];
		int indent = USAGE_COLUMN;

		snprintf(head, sizeof(head), "%s%s%s", cmd->name, cmd->args[0] != '\0' ? " " : "",
		         cmd->args);
		if (2 + strlen(head) < USAGE_COLUMN) {
			fprintf(f, "  %-*s", USAGE_COLUMN - 2, head);
			indent = 0;
		} else {
			fprintf(f, "  %s\n", head);
		}
		for (;;) {
			nl = strchr(line, '\n');
			fprintf(f, "%*s%.*s\n", indent, "",
			        nl != NULL ? (int)(nl - line) : (int)strlen(line), line);
			if (nl == NULL)
				break;
			line = nl + 1;
			indent = USAGE_COLUMN;
		}
	}
}

int cli_fail(int ret, const char *what, const char *err)
{
	fprintf(stderr, "mailshift: %s: %s\n", what, err);
	return ret;
}

long long cli_number_arg(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return -1;
	return v;
}

long long cli_migration_arg(const char *s)
{
	long long m = cli_number_arg(s);

	if (m < 1)
		fprintf(stderr,
		        "mailshift: MIGRATION must be a migration id (a positive number), "
		        "not \"%s\"\n",
		        s);
	return m < 1 ? -1 : m;
}

char *cli_path(long long m, const char *account, const char *rest)
{
	char *path = NULL, *esc = NULL;
	int n;

	if (account != NULL && (esc = api_escape(account)) == NULL)
		return NULL;
	if (esc != NULL)
		n = asprintf(&path, "/v1/migrations/%lld/accounts/%s%s", m, esc, rest);
	else
		n = asprintf(&path, "/v1/migrations/%lld%s", m, rest);
	free(esc);
	return n < 0 ? NULL : path;
}

json_t *cli_string_array(int argc, char **argv)
{
	json_t *a = json_array();

	for (int i = 0; i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	return a;
}

/* migrations */
int cmd_migrations(struct cli *c, int argc, char **argv)
{
	char err[API_ERRLEN], b1[32], b2[32], states[512];
	json_t *items = NULL, *m;
	size_t i;
	int ret;

	(void)argc;
	(void)argv;
	ret = api_get_all(c->api, "/v1/migrations", 100000, &items, err, sizeof(err));
	if (ret != EXIT_OK)
		return cli_fail(ret, "migrations", err);
	if (c->json) {
		json_t *wrap = json_pack("{s:O}", "items", items);

		fmt_json_print(wrap);
		json_decref(wrap);
	} else {
		printf("%-5s %-24s %8s %5s %19s %21s %7s  %s\n", "ID", "NAME", "ACCOUNTS", "PASS",
		       "MESSAGES", "BYTES", "ERRORS", "STATES");
		json_array_foreach(items, i, m)
		{
			char msgs[40], bytes[48];

			snprintf(msgs, sizeof(msgs), "%lld/%lld", fmt_int(m, "messages_done", 0),
			         fmt_int(m, "messages_total", 0));
			snprintf(bytes, sizeof(bytes), "%s/%s",
			         fmt_bytes(fmt_int(m, "bytes_done", 0), b1, sizeof(b1)),
			         fmt_bytes(fmt_int(m, "bytes_total", 0), b2, sizeof(b2)));
			printf("%-5lld %-24s %8lld %5lld %19s %21s %7lld  %s\n",
			       fmt_int(m, "id", 0), fmt_str(m, "name", "-"),
			       fmt_int(m, "accounts", 0), fmt_int(m, "current_pass", 0), msgs,
			       bytes, fmt_int(m, "errors", 0),
			       fmt_states(json_object_get(m, "states"), states, sizeof(states)));
		}
	}
	json_decref(items);
	return EXIT_OK;
}

/* Reads a whole local file (the accounts CSV) into a new string. */
static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (size > CSV_MAX) {
		snprintf(err, errlen, "%s: %ld bytes, more than %ld MiB", path, size,
		         CSV_MAX >> 20);
		goto out;
	}
	buf = malloc((size_t)size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[size] = '\0';
	if (strlen(buf) != (size_t)size) {
		snprintf(err, errlen, "%s: holds a NUL byte: not a CSV file", path);
		free(buf);
		buf = NULL;
	}
out:
	fclose(f);
	return buf;
}

/* Prints the answer's "warnings" (tls none and the like) to stderr. */
static void print_warnings(const json_t *reply)
{
	const json_t *w;
	char cell[512];
	size_t i;

	json_array_foreach(json_object_get(reply, "warnings"), i, w)
	{
		fprintf(stderr, "warning: %s\n", fmt_cell(w, cell, sizeof(cell)));
	}
}

/* import PLAN.json: the plan as it is, its "accounts" path replaced by the
 * CSV's text in "accounts_csv" (the API cannot read the operator's files). */
int cmd_import(struct cli *c, int argc, char **argv)
{
	char err[API_ERRLEN], *csv = NULL, *dir_copy = NULL, *csv_path = NULL;
	json_t *plan = NULL, *reply = NULL, *accounts;
	json_error_t jerr;
	int ret = EXIT_USAGE;

	(void)argc;
	plan = json_load_file(argv[1], JSON_PRESERVE_ORDER, &jerr);
	if (plan == NULL) {
		fprintf(stderr, "mailshift: import: %s:%d: %s\n", argv[1], jerr.line, jerr.text);
		goto out;
	}
	if (!json_is_object(plan)) {
		fprintf(stderr, "mailshift: import: %s: the plan must be a JSON object\n", argv[1]);
		goto out;
	}
	accounts = json_object_get(plan, "accounts");
	if (json_is_string(accounts)) {
		const char *p = json_string_value(accounts);

		dir_copy = strdup(argv[1]);
		if (dir_copy == NULL || asprintf(&csv_path, "%s/%s", dirname(dir_copy), p) < 0) {
			csv_path = NULL;
			fprintf(stderr, "mailshift: import: out of memory\n");
			goto out;
		}
		csv = read_file(p[0] == '/' ? p : csv_path, err, sizeof(err));
		if (csv == NULL) {
			fprintf(stderr, "mailshift: import: the plan's accounts file: %s\n", err);
			goto out;
		}
		json_object_del(plan, "accounts");
		json_object_set_new(plan, "accounts_csv", json_string(csv));
		if (json_object_get(plan, "accounts_csv") == NULL ||
		    json_is_null(json_object_get(plan, "accounts_csv"))) {
			fprintf(stderr, "mailshift: import: %s: not valid UTF-8\n",
			        p[0] == '/' ? p : csv_path);
			goto out;
		}
	} else if (accounts != NULL && !json_is_null(accounts)) {
		fprintf(stderr, "mailshift: import: %s: \"accounts\" must be the CSV file's path\n",
		        argv[1]);
		goto out;
	}
	ret = api_send(c->api, "POST", "/v1/migrations", plan, &reply, err, sizeof(err));
	if (ret != EXIT_OK) {
		cli_fail(ret, "import", err);
		goto out;
	}
	print_warnings(reply);
	if (c->json)
		fmt_json_print(reply);
	else
		printf("%lld\n", fmt_int(reply, "id", 0));
	if (!c->json)
		fprintf(stderr, "imported migration %lld with %lld accounts\n",
		        fmt_int(reply, "id", 0), fmt_int(reply, "accounts", 0));
out:
	json_decref(plan);
	json_decref(reply);
	free(csv);
	free(csv_path);
	free(dir_copy);
	return ret;
}

/* A POST to the migration's SUB with body; prints the JSON answer for
 * --json, else hands it to show.  Takes body (may be NULL). */
static int post_simple(struct cli *c, long long m, const char *sub, json_t *body,
                       void (*show)(const json_t *reply))
{
	char err[API_ERRLEN], *path = cli_path(m, NULL, sub);
	json_t *reply = NULL;
	int ret;

	if (path == NULL) {
		json_decref(body);
		return cli_fail(EXIT_UNREACHABLE, sub + 1, "out of memory");
	}
	ret = api_send(c->api, "POST", path, body, &reply, err, sizeof(err));
	json_decref(body);
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, sub + 1, err);
	if (c->json)
		fmt_json_print(reply);
	else
		show(reply);
	json_decref(reply);
	return EXIT_OK;
}

static void show_verify(const json_t *r)
{
	printf("verified %lld, auth_failed %lld, verify_failed %lld\n", fmt_int(r, "verified", 0),
	       fmt_int(r, "auth_failed", 0), fmt_int(r, "verify_failed", 0));
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);

	(void)argc;
	return m < 0 ? EXIT_USAGE : post_simple(c, m, "/verify", NULL, show_verify);
}

static void show_pass(const json_t *r)
{
	printf("pass %lld: %lld accounts queued\n", fmt_int(r, "number", 0),
	       fmt_int(r, "accounts", 0));
}

int cmd_start(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);

	(void)argc;
	if (m < 0)
		return EXIT_USAGE;
	return post_simple(c, m, "/passes", json_pack("{s:s}", "kind", "bulk"), show_pass);
}

/* delta MIGRATION [--final] [ACCOUNT...] */
int cmd_delta(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	int final = 0, n = 0;
	json_t *body;

	if (m < 0)
		return EXIT_USAGE;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--final") == 0)
			final = 1;
		else
			argv[2 + n++] = argv[i];
	}
	body = json_pack("{s:s}", "kind", final ? "final" : "delta");
	if (n > 0)
		json_object_set_new(body, "accounts", cli_string_array(n, argv + 2));
	return post_simple(c, m, "/passes", body, show_pass);
}

static void print_pass_row(const json_t *p)
{
	char states[512], b[32];

	printf("%-4lld %-6s %8lld %-21s %-21s %9lld %11s %6lld  %s\n", fmt_int(p, "number", 0),
	       fmt_str(p, "kind", "-"), fmt_int(p, "accounts", 0), fmt_str(p, "started_at", "-"),
	       fmt_str(p, "finished_at", "-"), fmt_int(p, "messages", 0),
	       fmt_bytes(fmt_int(p, "bytes", 0), b, sizeof(b)), fmt_int(p, "failed", 0),
	       fmt_states(json_object_get(p, "states"), states, sizeof(states)));
}

static void print_pass_header(void)
{
	printf("%-4s %-6s %8s %-21s %-21s %9s %11s %6s  %s\n", "PASS", "KIND", "ACCOUNTS",
	       "STARTED", "FINISHED", "MESSAGES", "BYTES", "FAILED", "STATES");
}

/* The per-account rows of one pass ("account_rows": "accounts" is their
 * count). */
static void print_pass_accounts(const json_t *p)
{
	const json_t *rows = json_object_get(p, "account_rows"), *a;
	char cell[64];
	size_t i;

	if (!json_is_array(rows))
		return;
	printf("\n%-32s %-10s %9s %11s  %s\n", "ACCOUNT", "STATE", "MESSAGES", "BYTES", "ERROR");
	json_array_foreach(rows, i, a)
	{
		const char *login = fmt_str(a, "source_login", fmt_str(a, "account", NULL));

		if (login == NULL)
			login = fmt_cell(json_object_get(a, "account"), cell, sizeof(cell));
		printf("%-32s %-10s %9lld %11s  %s\n", login, fmt_str(a, "state", "-"),
		       fmt_int(a, "messages", 0),
		       fmt_bytes(fmt_int(a, "bytes", 0), cell, sizeof(cell)),
		       fmt_str(a, "last_error", fmt_str(a, "error", "")));
	}
}

/* passes MIGRATION [N] */
int cmd_passes(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]), n = 0;
	char err[API_ERRLEN], *path, rest[64];
	json_t *reply = NULL, *p;
	size_t i;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	if (argc == 3 && (n = cli_number_arg(argv[2])) < 1) {
		fprintf(stderr, "mailshift: passes: N must be a pass number, not \"%s\"\n",
		        argv[2]);
		return EXIT_USAGE;
	}
	if (n > 0)
		snprintf(rest, sizeof(rest), "/passes/%lld", n);
	else
		snprintf(rest, sizeof(rest), "/passes");
	path = cli_path(m, NULL, rest);
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "passes", "out of memory");
	if (n > 0)
		ret = api_get(c->api, path, &reply, err, sizeof(err));
	else
		ret = api_get_all(c->api, path, 100000, &reply, err, sizeof(err));
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "passes", err);
	if (c->json) {
		fmt_json_print(reply);
	} else {
		print_pass_header();
		if (n > 0) {
			print_pass_row(reply);
			print_pass_accounts(reply);
		} else {
			json_array_foreach(reply, i, p)
			{
				print_pass_row(p);
			}
		}
	}
	json_decref(reply);
	return EXIT_OK;
}

/* wait MIGRATION N [SECS]: long polls of at most a minute each, so that no
 * proxy between here and the API cuts a silent connection. */
int cmd_wait(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]), n = cli_number_arg(argv[2]), secs = 3600;
	char err[API_ERRLEN], *path = NULL, rest[96];
	time_t deadline;
	json_t *reply = NULL;
	int ret = EXIT_USAGE;

	if (m < 0)
		return EXIT_USAGE;
	if (n < 1 || (argc == 4 && (secs = cli_number_arg(argv[3])) < 0)) {
		fprintf(stderr, "mailshift: wait: N and SECS must be whole numbers (N >= 1)\n");
		return EXIT_USAGE;
	}
	deadline = time(NULL) + secs;
	for (;;) {
		long long left = (long long)(deadline - time(NULL)), chunk;

		chunk = left < 0 ? 0 : left > 60 ? 60 : left;
		snprintf(rest, sizeof(rest), "/passes/%lld/wait?timeout=%lld", n, chunk);
		free(path);
		path = cli_path(m, NULL, rest);
		json_decref(reply);
		reply = NULL;
		if (path == NULL) {
			ret = cli_fail(EXIT_UNREACHABLE, "wait", "out of memory");
			goto out;
		}
		ret = api_call(c->api, "GET", path, NULL, NULL, NULL, chunk + 5, &reply, NULL, err,
		               sizeof(err));
		if (ret != EXIT_OK) {
			cli_fail(ret, "wait", err);
			goto out;
		}
		if (json_is_true(json_object_get(reply, "ended")) || time(NULL) >= deadline)
			break;
	}
	if (c->json) {
		fmt_json_print(reply);
	} else {
		print_pass_header();
		print_pass_row(reply);
	}
	if (!json_is_true(json_object_get(reply, "ended"))) {
		fprintf(stderr,
		        "mailshift: wait: timed out after %lld s: pass %lld has not ended\n", secs,
		        n);
		ret = EXIT_NOT_DONE;
	} else {
		long long total = fmt_int(reply, "scheduled", fmt_int(reply, "accounts", 0));
		long long synced = fmt_int(reply, "synced",
		                           fmt_int(json_object_get(reply, "states"), "synced", 0));

		if (synced < total) {
			fprintf(stderr,
			        "mailshift: wait: pass %lld ended with %lld of %lld accounts not "
			        "synced\n",
			        n, total - synced, total);
			ret = EXIT_NOT_DONE;
		}
	}
out:
	free(path);
	json_decref(reply);
	return ret;
}

static void show_requeued(const json_t *r)
{
	printf("%lld accounts queued again\n", fmt_int(r, "requeued", 0));
}

/* retry MIGRATION N [ACCOUNT...] */
int cmd_retry(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]), n = cli_number_arg(argv[2]);
	char rest[64];
	json_t *body = json_object();

	if (m < 0 || n < 1) {
		json_decref(body);
		if (m >= 0)
			fprintf(stderr, "mailshift: retry: N must be a pass number, not \"%s\"\n",
			        argv[2]);
		return EXIT_USAGE;
	}
	if (argc > 3)
		json_object_set_new(body, "accounts", cli_string_array(argc - 3, argv + 3));
	snprintf(rest, sizeof(rest), "/passes/%lld/retry", n);
	return post_simple(c, m, rest, body, show_requeued);
}
