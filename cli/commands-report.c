/* The commands that read what happened or will: errors, report, proof,
 * estimate, throughput, and the server profiles (show, set). */
#include "commands.h"
#include "format.h"

#include <stdlib.h>
#include <string.h>

/* A GET (or a POST with body, taken) of the migration's REST, printed as
 * JSON for --json or by show.  Returns the exit code; *reply_r keeps the
 * answer when given (else it is freed). */
static int fetch(struct cli *c, const char *what, const char *method, long long m,
                 const char *account, const char *rest, json_t *body, json_t **reply_r)
{
	char err[API_ERRLEN], *path = cli_path(m, account, rest);
	json_t *reply = NULL;
	int ret;

	if (path == NULL) {
		json_decref(body);
		return cli_fail(EXIT_UNREACHABLE, what, "out of memory");
	}
	ret = api_send(c->api, method, path, body, &reply, err, sizeof(err));
	json_decref(body);
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, what, err);
	*reply_r = reply;
	return EXIT_OK;
}

/* errors MIGRATION [--account ACCOUNT] [--limit N] */
int cmd_errors(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]), limit = 100000;
	char err[API_ERRLEN], cell[64], *path = NULL, *esc = NULL, rest[512];
	const char *account = NULL;
	json_t *items = NULL, *e;
	size_t i;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	for (int k = 2; k < argc; k += 2) {
		if (k + 1 < argc && strcmp(argv[k], "--account") == 0) {
			account = argv[k + 1];
		} else if (k + 1 < argc && strcmp(argv[k], "--limit") == 0 &&
		           (limit = cli_number_arg(argv[k + 1])) > 0) {
		} else {
			fprintf(stderr, "mailshift: usage: mailshift errors MIGRATION [--account "
			                "ACCOUNT] [--limit N]\n");
			return EXIT_USAGE;
		}
	}
	if (account != NULL && (esc = api_escape(account)) == NULL)
		return cli_fail(EXIT_UNREACHABLE, "errors", "out of memory");
	snprintf(rest, sizeof(rest), "/errors%s%s", esc != NULL ? "?account=" : "",
	         esc != NULL ? esc : "");
	free(esc);
	path = cli_path(m, NULL, rest);
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "errors", "out of memory");
	ret = api_get_all(c->api, path, (size_t)limit, &items, err, sizeof(err));
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "errors", err);
	while (json_array_size(items) > (size_t)limit)
		json_array_remove(items, json_array_size(items) - 1);
	if (c->json) {
		json_t *wrap = json_pack("{s:O}", "items", items);

		fmt_json_print(wrap);
		json_decref(wrap);
	} else {
		/* The server's words as they came, one error a line. */
		json_array_foreach(items, i, e)
		{
			printf("%s  %s  %s  uid %s: %s\n", fmt_str(e, "at", "-"),
			       fmt_str(e, "account", "-"), fmt_str(e, "folder", "-"),
			       fmt_cell(json_object_get(e, "uid"), cell, sizeof(cell)),
			       fmt_str(e, "error", "-"));
		}
		if (json_array_size(items) == 0)
			printf("no errors\n");
	}
	json_decref(items);
	return EXIT_OK;
}

/* report MIGRATION [--csv]: the API's report; --csv as the API writes it. */
int cmd_report(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	int csv = argc == 3 && strcmp(argv[2], "--csv") == 0;
	char err[API_ERRLEN], b[32], *path, *text = NULL;
	json_t *reply = NULL, *accounts, *a, *f;
	size_t i, j;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	if (argc == 3 && !csv) {
		fprintf(stderr, "mailshift: usage: mailshift report MIGRATION [--csv]\n");
		return EXIT_USAGE;
	}
	path = cli_path(m, NULL, csv && !c->json ? "/report?format=csv" : "/report?format=json");
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "report", "out of memory");
	if (csv && !c->json) {
		ret = api_call(c->api, "GET", path, NULL, NULL, NULL, 0, NULL, &text, err,
		               sizeof(err));
		free(path);
		if (ret != EXIT_OK)
			return cli_fail(ret, "report", err);
		fputs(text, stdout);
		free(text);
		return EXIT_OK;
	}
	ret = api_get(c->api, path, &reply, err, sizeof(err));
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "report", err);
	if (c->json) {
		fmt_json_print(reply);
		json_decref(reply);
		return EXIT_OK;
	}
	accounts = json_is_array(reply) ? reply : json_object_get(reply, "accounts");
	json_array_foreach(accounts, i, a)
	{
		printf("%s -> %s: %s, passes %lld, %lld errors, started %s, finished %s\n",
		       fmt_str(a, "source_login", fmt_str(a, "account", "-")),
		       fmt_str(a, "destination_login", "-"), fmt_str(a, "state", "-"),
		       fmt_int(a, "passes", fmt_int(a, "pass_done", 0)), fmt_int(a, "errors", 0),
		       fmt_str(a, "started_at", "-"), fmt_str(a, "finished_at", "-"));
		json_array_foreach(json_object_get(a, "folders"), j, f)
		{
			printf("  %-30s source %7lld  destination %7lld  %s\n",
			       fmt_str(f, "source_name", fmt_str(f, "name", "-")),
			       fmt_int(f, "source_messages", 0),
			       fmt_int(f, "destination_messages", 0),
			       fmt_bytes(fmt_int(f, "bytes", 0), b, sizeof(b)));
		}
	}
	json_decref(reply);
	return EXIT_OK;
}

/* One account's proof: a line per folder, a line per difference. */
static int print_proof(const json_t *p)
{
	char cell[64], cell2[64];
	const json_t *v;
	size_t i;
	int exact = json_is_true(json_object_get(p, "exact"));

	printf("%s: %s (at %s)\n", fmt_str(p, "account", fmt_str(p, "source_login", "-")),
	       exact ? "complete, exact" : "DIFFERENCES", fmt_str(p, "at", "-"));
	json_array_foreach(json_object_get(p, "folders"), i, v)
	{
		printf("  %-30s source %6lld  destination %6lld  missing %lld  extra %lld  changed "
		       "%lld\n",
		       fmt_str(v, "name", "-"), fmt_int(v, "source", 0),
		       fmt_int(v, "destination", 0), fmt_int(v, "missing", 0),
		       fmt_int(v, "extra", 0), fmt_int(v, "changed", 0));
	}
	json_array_foreach(json_object_get(p, "differences"), i, v)
	{
		printf("  %s %s: source uid %s, destination uid %s: %s\n",
		       fmt_str(v, "folder", "-"), fmt_str(v, "kind", "-"),
		       fmt_cell(json_object_get(v, "source_uid"), cell, sizeof(cell)),
		       fmt_cell(json_object_get(v, "destination_uid"), cell2, sizeof(cell2)),
		       fmt_str(v, "detail", ""));
	}
	return exact;
}

/* proof MIGRATION [--last] [ACCOUNT...]: runs the proof (POST) or shows the
 * stored one (--last; per account when one is named).  Exit 4 when any
 * account's proof is not exact. */
int cmd_proof(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	json_t *reply = NULL, *list, *p, *body;
	int last = 0, n = 0, all_exact = 1, ret;
	size_t i;

	if (m < 0)
		return EXIT_USAGE;
	for (int k = 2; k < argc; k++) {
		if (strcmp(argv[k], "--last") == 0)
			last = 1;
		else
			argv[2 + n++] = argv[k];
	}
	if (last && n == 1) {
		ret = fetch(c, "proof", "GET", m, argv[2], "/proof", NULL, &reply);
	} else if (last) {
		ret = fetch(c, "proof", "GET", m, NULL, "/proof", NULL, &reply);
	} else {
		body = json_object();
		if (n > 0)
			json_object_set_new(body, "accounts", cli_string_array(n, argv + 2));
		/* A proof reads every message's headers both sides: minutes, not seconds. */
		{
			char err[API_ERRLEN], *path = cli_path(m, NULL, "/proof");

			ret = path != NULL ? api_call(c->api, "POST", path, body, NULL, NULL, 3600,
			                              &reply, NULL, err, sizeof(err))
			                   : EXIT_UNREACHABLE;
			if (ret != EXIT_OK)
				cli_fail(ret, "proof", path != NULL ? err : "out of memory");
			free(path);
		}
		json_decref(body);
	}
	if (ret != EXIT_OK)
		return ret;
	/* One account's proof, or a list of them under "accounts" or "items". */
	list = json_object_get(reply, "accounts");
	if (!json_is_array(list))
		list = json_object_get(reply, "items");
	if (json_is_array(reply))
		list = reply;
	if (c->json)
		fmt_json_print(reply);
	if (json_is_array(list)) {
		json_array_foreach(list, i, p)
		{
			if (c->json)
				all_exact &= json_is_true(json_object_get(p, "exact"));
			else
				all_exact &= print_proof(p);
		}
	} else if (c->json) {
		all_exact = json_is_true(json_object_get(reply, "exact"));
	} else {
		all_exact = print_proof(reply);
	}
	if (json_object_get(reply, "exact") != NULL &&
	    !json_is_true(json_object_get(reply, "exact")))
		all_exact = 0;
	json_decref(reply);
	return all_exact ? EXIT_OK : EXIT_NOT_DONE;
}

/* estimate MIGRATION [ACCOUNT...] */
int cmd_estimate(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char b[32], d[32];
	json_t *reply = NULL, *body, *a, *f;
	size_t i, j;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	body = json_object();
	if (argc > 2)
		json_object_set_new(body, "accounts", cli_string_array(argc - 2, argv + 2));
	ret = fetch(c, "estimate", "POST", m, NULL, "/estimate", body, &reply);
	if (ret != EXIT_OK)
		return ret;
	if (c->json) {
		fmt_json_print(reply);
		json_decref(reply);
		return EXIT_OK;
	}
	json_array_foreach(json_object_get(reply, "accounts"), i, a)
	{
		printf("%s: %lld messages, %s\n", fmt_str(a, "account", "-"),
		       fmt_int(a, "messages", 0), fmt_bytes(fmt_int(a, "bytes", 0), b, sizeof(b)));
		json_array_foreach(json_object_get(a, "folders"), j, f)
		{
			printf("  %-30s %7lld %11s%s\n", fmt_str(f, "name", "-"),
			       fmt_int(f, "messages", 0),
			       fmt_bytes(fmt_int(f, "bytes", 0), b, sizeof(b)),
			       json_is_true(json_object_get(f, "excluded")) ? "  (excluded)" : "");
		}
	}
	printf("total: %lld messages, %s", fmt_int(reply, "messages", 0),
	       fmt_bytes(fmt_int(reply, "bytes", 0), b, sizeof(b)));
	if (fmt_int(reply, "rate_bytes_per_s", -1) >= 0)
		printf(", measured %s/s",
		       fmt_bytes(fmt_int(reply, "rate_bytes_per_s", 0), b, sizeof(b)));
	printf(", ETA %s\n", fmt_duration(fmt_int(reply, "eta_seconds", -1), d, sizeof(d)));
	json_decref(reply);
	return EXIT_OK;
}

/* throughput MIGRATION [--minutes N] */
int cmd_throughput(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]), minutes = 60;
	char rest[64], b[32];
	json_t *reply = NULL, *row, *rows;
	size_t i;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	if (argc != 2 && (argc != 4 || strcmp(argv[2], "--minutes") != 0 ||
	                  (minutes = cli_number_arg(argv[3])) < 1)) {
		fprintf(stderr, "mailshift: usage: mailshift throughput MIGRATION [--minutes N]\n");
		return EXIT_USAGE;
	}
	snprintf(rest, sizeof(rest), "/throughput?minutes=%lld", minutes);
	ret = fetch(c, "throughput", "GET", m, NULL, rest, NULL, &reply);
	if (ret != EXIT_OK)
		return ret;
	if (c->json) {
		fmt_json_print(reply);
		json_decref(reply);
		return EXIT_OK;
	}
	rows = json_is_array(reply) ? reply : json_object_get(reply, "items");
	printf("%-22s %9s %11s\n", "MINUTE", "MESSAGES", "BYTES");
	json_array_foreach(rows, i, row)
	{
		printf("%-22s %9lld %11s\n", fmt_str(row, "at", "-"), fmt_int(row, "messages", 0),
		       fmt_bytes(fmt_int(row, "bytes", 0), b, sizeof(b)));
	}
	json_decref(reply);
	return EXIT_OK;
}

static void print_servers(const json_t *list)
{
	char cell[256], b[32];
	const json_t *s;
	size_t i;

	json_array_foreach(list, i, s)
	{
		printf("%lld %s %s: %s:%lld tls %s, ca %s, auth %s, %lld connections\n",
		       fmt_int(s, "id", 0), fmt_str(s, "role", "-"), fmt_str(s, "name", "-"),
		       fmt_str(s, "host", "-"), fmt_int(s, "port", 0), fmt_str(s, "tls", "-"),
		       fmt_str(s, "ca_file", "system"), fmt_str(s, "auth", "-"),
		       fmt_int(s, "max_connections", 0));
		printf("    rate %s messages/s, %s/s, daily per account %s, blackouts %s\n",
		       fmt_int(s, "rate_messages", 0) > 0
		           ? fmt_cell(json_object_get(s, "rate_messages"), cell, sizeof(cell))
		           : "unlimited",
		       fmt_int(s, "rate_bytes", 0) > 0
		           ? fmt_bytes(fmt_int(s, "rate_bytes", 0), b, sizeof(b))
		           : "unlimited",
		       fmt_int(s, "account_daily_bytes", 0) > 0
		           ? fmt_bytes(fmt_int(s, "account_daily_bytes", 0), b, sizeof(b))
		           : "unlimited",
		       fmt_cell(json_object_get(s, "blackouts"), cell, sizeof(cell)));
	}
}

/* server show MIGRATION | server set MIGRATION ID FIELD=VALUE...: a VALUE that
 * parses as JSON (numbers, true, null, a blackout list) is sent as that, any
 * other as a string ("host=imap.example.org"). */
int cmd_server(struct cli *c, int argc, char **argv)
{
	long long m = argc > 2 ? cli_migration_arg(argv[2]) : -1, id;
	char rest[64];
	json_t *reply = NULL, *body, *list;
	int ret;

	if (strcmp(argv[1], "show") == 0 && argc == 3) {
		if (m < 0)
			return EXIT_USAGE;
		ret = fetch(c, "server show", "GET", m, NULL, "/servers", NULL, &reply);
		if (ret != EXIT_OK)
			return ret;
		list = json_is_array(reply) ? reply : json_object_get(reply, "items");
		if (c->json)
			fmt_json_print(reply);
		else
			print_servers(list);
		json_decref(reply);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "set") != 0 || argc < 5) {
		fprintf(stderr, "mailshift: usage: mailshift server show MIGRATION | server set "
		                "MIGRATION ID FIELD=VALUE...\n");
		return EXIT_USAGE;
	}
	if (m < 0)
		return EXIT_USAGE;
	if ((id = cli_number_arg(argv[3])) < 1) {
		fprintf(stderr,
		        "mailshift: server set: ID must be a server id (server show lists "
		        "them), not \"%s\"\n",
		        argv[3]);
		return EXIT_USAGE;
	}
	body = json_object();
	for (int i = 4; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		json_t *v;

		if (eq == NULL || eq == argv[i]) {
			fprintf(stderr, "mailshift: server set: want FIELD=VALUE, not \"%s\"\n",
			        argv[i]);
			json_decref(body);
			return EXIT_USAGE;
		}
		*eq = '\0';
		v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
		if (v == NULL)
			v = json_string(eq + 1);
		json_object_set_new(body, argv[i], v);
	}
	snprintf(rest, sizeof(rest), "/servers/%lld", id);
	ret = fetch(c, "server set", "PATCH", m, NULL, rest, body, &reply);
	if (ret != EXIT_OK)
		return ret;
	if (c->json) {
		fmt_json_print(reply);
	} else {
		list = json_array();
		json_array_append(list, reply);
		print_servers(list);
		json_decref(list);
	}
	json_decref(reply);
	return EXIT_OK;
}
