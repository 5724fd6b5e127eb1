/* The commands about accounts: accounts, account, add, passwd, remove,
 * pause / resume / cancel, empty-destination. */
#include "commands.h"
#include "format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MAX 1024

/* accounts MIGRATION [--state S] [--q TEXT] */
int cmd_accounts(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char err[API_ERRLEN], query[512] = "", b[32], *path;
	json_t *items = NULL, *a;
	size_t i, used = 0;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	for (int k = 2; k < argc; k += 2) {
		char *esc;

		if ((strcmp(argv[k], "--state") != 0 && strcmp(argv[k], "--q") != 0) ||
		    k + 1 >= argc) {
			fprintf(stderr,
			        "mailshift: usage: mailshift accounts MIGRATION [--state S] "
			        "[--q TEXT]\n");
			return EXIT_USAGE;
		}
		esc = api_escape(argv[k + 1]);
		used +=
		    (size_t)snprintf(query + used, sizeof(query) - used, "%c%s=%s",
		                     used == 0 ? '?' : '&', argv[k] + 2, esc != NULL ? esc : "");
		free(esc);
		if (used >= sizeof(query)) {
			fprintf(stderr, "mailshift: accounts: filter too long\n");
			return EXIT_USAGE;
		}
	}
	path = cli_path(m, NULL, "/accounts");
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "accounts", "out of memory");
	{
		char *full = NULL;

		if (asprintf(&full, "%s%s", path, query) < 0)
			full = NULL;
		free(path);
		path = full;
	}
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "accounts", "out of memory");
	ret = api_get_all(c->api, path, 10000000, &items, err, sizeof(err));
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "accounts", err);
	if (c->json) {
		json_t *wrap = json_pack("{s:O}", "items", items);

		fmt_json_print(wrap);
		json_decref(wrap);
		json_decref(items);
		return EXIT_OK;
	}
	printf("%-6s %-28s %-28s %-13s %4s %9s %11s %6s  %s\n", "ID", "SOURCE", "DESTINATION",
	       "STATE", "PASS", "MESSAGES", "BYTES", "ERRORS", "LAST ERROR");
	json_array_foreach(items, i, a)
	{
		char pass[24];

		snprintf(pass, sizeof(pass), "%lld/%lld", fmt_int(a, "pass_done", 0),
		         fmt_int(a, "pass", 0));
		printf("%-6lld %-28s %-28s %-13s %4s %9lld %11s %6lld  %s\n", fmt_int(a, "id", 0),
		       fmt_str(a, "source_login", "-"), fmt_str(a, "destination_login", "-"),
		       fmt_str(a, "state", "-"), pass, fmt_int(a, "messages", 0),
		       fmt_bytes(fmt_int(a, "bytes", 0), b, sizeof(b)), fmt_int(a, "errors", 0),
		       fmt_str(a, "last_error", ""));
	}
	json_decref(items);
	return EXIT_OK;
}

/* account MIGRATION ACCOUNT */
int cmd_account(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char err[API_ERRLEN], b[32], cell[64], *path;
	json_t *a = NULL, *v;
	size_t i;
	int ret;

	(void)argc;
	if (m < 0)
		return EXIT_USAGE;
	path = cli_path(m, argv[2], "");
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "account", "out of memory");
	ret = api_get(c->api, path, &a, err, sizeof(err));
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "account", err);
	if (c->json) {
		fmt_json_print(a);
		json_decref(a);
		return EXIT_OK;
	}
	printf("account %lld: %s -> %s\n", fmt_int(a, "id", 0), fmt_str(a, "source_login", "-"),
	       fmt_str(a, "destination_login", "-"));
	printf("state %s, pass %lld of %lld done, %lld messages, %s, %lld errors\n",
	       fmt_str(a, "state", "-"), fmt_int(a, "pass_done", 0), fmt_int(a, "pass", 0),
	       fmt_int(a, "messages", 0), fmt_bytes(fmt_int(a, "bytes", 0), b, sizeof(b)),
	       json_is_array(json_object_get(a, "errors"))
	           ? (long long)json_array_size(json_object_get(a, "errors"))
	           : fmt_int(a, "errors", 0));
	if (fmt_str(a, "last_error", NULL) != NULL)
		printf("last error: %s\n", fmt_str(a, "last_error", ""));

	printf("\nfolders:\n  %-30s %-30s %8s %8s %7s %7s %6s %11s\n", "SOURCE", "DESTINATION",
	       "SRC MSGS", "DST MSGS", "COPIED", "MATCHED", "FAILED", "BYTES");
	json_array_foreach(json_object_get(a, "folders"), i, v)
	{
		printf("  %-30s %-30s %8lld %8lld %7lld %7lld %6lld %11s\n",
		       fmt_str(v, "source_name", "-"), fmt_str(v, "destination_name", "-"),
		       fmt_int(v, "source_messages", 0), fmt_int(v, "destination_messages", 0),
		       fmt_int(v, "copied", 0), fmt_int(v, "matched", 0), fmt_int(v, "failed", 0),
		       fmt_bytes(fmt_int(v, "bytes", 0), b, sizeof(b)));
		if (fmt_str(v, "error", NULL) != NULL)
			printf("    error: %s\n", fmt_str(v, "error", ""));
	}
	printf("\npasses:\n");
	json_array_foreach(json_object_get(a, "passes"), i, v)
	{
		printf("  pass %lld %s: %s, %lld messages, %s, started %s, finished %s\n",
		       fmt_int(v, "number", fmt_int(v, "pass", 0)), fmt_str(v, "kind", ""),
		       fmt_str(v, "state", "-"), fmt_int(v, "messages", 0),
		       fmt_bytes(fmt_int(v, "bytes", 0), b, sizeof(b)),
		       fmt_str(v, "started_at", "-"), fmt_str(v, "finished_at", "-"));
	}
	printf("\nerrors:\n");
	json_array_foreach(json_object_get(a, "errors"), i, v)
	{
		printf("  %s %s uid %s: %s\n", fmt_str(v, "at", "-"), fmt_str(v, "folder", "-"),
		       fmt_cell(json_object_get(v, "uid"), cell, sizeof(cell)),
		       fmt_str(v, "error", "-"));
	}
	printf("\nhistory:\n");
	json_array_foreach(json_object_get(a, "history"), i, v)
	{
		printf("  %s %s -> %s by %s: %s\n", fmt_str(v, "at", "-"),
		       fmt_str(v, "from_state", "-"), fmt_str(v, "to_state", "-"),
		       fmt_str(v, "actor", "-"), fmt_str(v, "reason", ""));
	}
	json_decref(a);
	return EXIT_OK;
}

/* add MIGRATION CSV: the file's text as the body, text/csv. */
int cmd_add(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char err[API_ERRLEN], *path = NULL, *csv = NULL;
	json_t *reply = NULL;
	FILE *f;
	size_t len = 0;
	int ret = EXIT_USAGE;

	(void)argc;
	if (m < 0)
		return EXIT_USAGE;
	f = fopen(argv[2], "rb");
	if (f == NULL) {
		fprintf(stderr, "mailshift: add: %s: %s\n", argv[2], strerror(errno));
		return EXIT_USAGE;
	}
	{
		FILE *mem = open_memstream(&csv, &len);
		char buf[65536];
		size_t n;

		while (mem != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, mem);
		if (mem != NULL)
			fclose(mem);
	}
	if (ferror(f) || csv == NULL) {
		fprintf(stderr, "mailshift: add: %s: cannot read\n", argv[2]);
		fclose(f);
		goto out;
	}
	fclose(f);
	path = cli_path(m, NULL, "/accounts");
	ret = api_call(c->api, "POST", path, NULL, csv, "text/csv", 0, &reply, NULL, err,
	               sizeof(err));
	if (ret != EXIT_OK) {
		cli_fail(ret, "add", err);
		goto out;
	}
	if (c->json)
		fmt_json_print(reply);
	else
		printf("%lld accounts added\n", fmt_int(reply, "added", 0));
out:
	free(path);
	free(csv);
	json_decref(reply);
	return ret;
}

/* passwd MIGRATION ACCOUNT SIDE: the password from stdin (never from the
 * command line, which other users can see), its first line. */
int cmd_passwd(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char err[API_ERRLEN], pw[PASSWORD_MAX], *path = NULL;
	json_t *body = NULL, *reply = NULL;
	size_t len;
	int ret = EXIT_USAGE;

	(void)argc;
	if (m < 0)
		return EXIT_USAGE;
	if (strcmp(argv[3], "source") != 0 && strcmp(argv[3], "destination") != 0 &&
	    strcmp(argv[3], "both") != 0) {
		fprintf(stderr,
		        "mailshift: passwd: the side is source, destination or both, not "
		        "\"%s\"\n",
		        argv[3]);
		return EXIT_USAGE;
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL || (len = strcspn(pw, "\r\n")) == 0) {
		fprintf(stderr, "mailshift: passwd: no password on stdin (one line)\n");
		goto out;
	}
	pw[len] = '\0';
	body = json_pack("{s:s,s:s}", "side", argv[3], "password", pw);
	memset(pw, 0, sizeof(pw));
	if (body == NULL) {
		fprintf(stderr, "mailshift: passwd: the password is not valid UTF-8\n");
		goto out;
	}
	path = cli_path(m, argv[2], "/password");
	ret = api_send(c->api, "PUT", path, body, &reply, err, sizeof(err));
	if (ret != EXIT_OK) {
		cli_fail(ret, "passwd", err);
		goto out;
	}
	if (c->json)
		fmt_json_print(reply);
	else
		printf("password changed (%s) for %s\n", argv[3], argv[2]);
out:
	if (body != NULL) {
		/* jansson keeps its own copy of the password: overwritten in place. */
		json_t *p = json_object_get(body, "password");
		char *s = (char *)json_string_value(p);

		if (s != NULL)
			memset(s, 0, json_string_length(p));
	}
	memset(pw, 0, sizeof(pw));
	json_decref(body);
	json_decref(reply);
	free(path);
	return ret;
}

/* remove MIGRATION ACCOUNT */
int cmd_remove(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char err[API_ERRLEN], *path;
	json_t *reply = NULL;
	int ret;

	(void)argc;
	if (m < 0)
		return EXIT_USAGE;
	path = cli_path(m, argv[2], "");
	ret = path != NULL ? api_send(c->api, "DELETE", path, NULL, &reply, err, sizeof(err))
	                   : cli_fail(EXIT_UNREACHABLE, "remove", "out of memory");
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "remove", err);
	if (c->json)
		fmt_json_print(reply);
	else
		printf("removed %s (its copied mail stays at the destination)\n", argv[2]);
	json_decref(reply);
	return EXIT_OK;
}

/* pause|resume|cancel MIGRATION [ACCOUNT] */
int cmd_control(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	char err[API_ERRLEN], rest[32], *path;
	json_t *reply = NULL;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	snprintf(rest, sizeof(rest), "/%s", argv[0]);
	path = cli_path(m, argc == 3 ? argv[2] : NULL, rest);
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, argv[0], "out of memory");
	ret = api_send(c->api, "POST", path, NULL, &reply, err, sizeof(err));
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, argv[0], err);
	if (c->json)
		fmt_json_print(reply);
	else if (argc == 3)
		printf("%s: %s\n", argv[0], argv[2]);
	else
		printf("%s: %lld accounts changed\n", argv[0], fmt_int(reply, "accounts", 0));
	json_decref(reply);
	return EXIT_OK;
}

/* empty-destination MIGRATION ACCOUNT --confirm DESTINATION_LOGIN: the
 * confirmation is the destination login typed out, checked by the API. */
int cmd_empty_destination(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]);
	const char *confirm = NULL, *account = NULL;
	char err[API_ERRLEN], *path;
	json_t *reply = NULL, *body;
	int ret;

	if (m < 0)
		return EXIT_USAGE;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--confirm") == 0 && i + 1 < argc)
			confirm = argv[++i];
		else if (account == NULL && strncmp(argv[i], "--", 2) != 0)
			account = argv[i];
	}
	if (account == NULL || confirm == NULL) {
		fprintf(stderr, "mailshift: empty-destination deletes every message of the account "
		                "at the destination: give --confirm DESTINATION_LOGIN\n");
		return EXIT_USAGE;
	}
	path = cli_path(m, account, "/empty-destination");
	if (path == NULL)
		return cli_fail(EXIT_UNREACHABLE, "empty-destination", "out of memory");
	body = json_pack("{s:s}", "confirm", confirm);
	ret = api_send(c->api, "POST", path, body, &reply, err, sizeof(err));
	json_decref(body);
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "empty-destination", err);
	if (c->json)
		fmt_json_print(reply);
	else
		printf("destination of %s emptied\n", account);
	json_decref(reply);
	return EXIT_OK;
}
