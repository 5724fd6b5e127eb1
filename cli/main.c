/* mailshift: the operator's command line, a client of the coordinator's HTTP
 * API.  main reads the global options and the token, then runs one
 * subcommand from the table in commands.c. */
#include "api.h"
#include "commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_API "http://127.0.0.1:8080"
#define DEFAULT_TIMEOUT_S 30
#define TOKEN_MAX 4096

static void usage(FILE *f)
{
	fprintf(f, "usage: mailshift [options] COMMAND [ARGS]\n"
	           "commands (MIGRATION is an id, ACCOUNT an id or source login):\n");
	cli_usage_print(f);
	fprintf(f,
	        "options:\n"
	        "  --api URL            the coordinator's API (env MAILSHIFT_API,\n"
	        "                       default " DEFAULT_API ")\n"
	        "  --token-file PATH    file holding the API token, first line (env\n"
	        "                       MAILSHIFT_API_TOKEN_FILE); not needed in local mode\n"
	        "  --timeout SECS       bound of each request (env MAILSHIFT_API_TIMEOUT,\n"
	        "                       default %d; connecting: at most 10)\n"
	        "  --json               print the API's JSON answers (any command)\n"
	        "  -h, --help           this text\n"
	        "exit status:\n"
	        "  0  done\n"
	        "  1  usage: bad arguments or a local file that cannot be read\n"
	        "  2  the API refused the request (4xx): its code and message are printed\n"
	        "  3  the API is unreachable, timed out, failed (5xx) or answered no JSON\n"
	        "  4  not done: wait timed out or the pass ended with accounts not synced;\n"
	        "     proof found differences\n",
	        DEFAULT_TIMEOUT_S);
}

/* The token: the first line of the file that is neither blank nor a
 * comment, trimmed.  The file's content is never printed. */
static int read_token(const char *path, char *token, size_t len)
{
	char line[TOKEN_MAX];
	FILE *f = fopen(path, "r");
	int found = 0;

	if (f == NULL) {
		fprintf(stderr, "mailshift: token file %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *s = line, *e;

		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strcspn(s, "\r\n");
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		snprintf(token, len, "%s", s);
		found = 1;
	}
	memset(line, 0, sizeof(line));
	fclose(f);
	if (!found) {
		fprintf(stderr, "mailshift: token file %s holds no token\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"api", required_argument, NULL, 'a'},     {"token-file", required_argument, NULL, 't'},
	    {"timeout", required_argument, NULL, 'T'}, {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *base = getenv("MAILSHIFT_API"),
	           *token_file = getenv("MAILSHIFT_API_TOKEN_FILE");
	const char *timeout_s = getenv("MAILSHIFT_API_TIMEOUT");
	const struct cli_command *cmd;
	struct cli c = {0};
	char token[TOKEN_MAX] = "";
	long long timeout;
	int ch, i, n, nargs, ret;

	/* --json is accepted after the subcommand too ("mailshift status 3 --json"):
	 * taken out of argv before the subcommand's own words are read. */
	for (i = 1, n = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = 1;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	/* "+": options end at the subcommand (its own, like delta's --final, follow). */
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			base = optarg;
			break;
		case 't':
			token_file = optarg;
			break;
		case 'T':
			timeout_s = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = cli_command_find(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "mailshift: unknown command \"%s\" (mailshift --help lists them)\n",
		        argv[optind]);
		return EXIT_USAGE;
	}
	nargs = argc - optind - 1;
	for (i = optind + 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: mailshift %s %s\n", cmd->name, cmd->args);
			return EXIT_OK;
		}
	if (nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
		fprintf(stderr, "mailshift: usage: mailshift %s %s\n", cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	timeout = timeout_s != NULL ? cli_number_arg(timeout_s) : DEFAULT_TIMEOUT_S;
	if (timeout < 1 || timeout > 3600) {
		fprintf(stderr, "mailshift: --timeout: want whole seconds 1..3600, not \"%s\"\n",
		        timeout_s);
		return EXIT_USAGE;
	}
	if (token_file != NULL && token_file[0] != '\0' &&
	    read_token(token_file, token, sizeof(token)) < 0)
		return EXIT_USAGE;
	c.api = api_create(base != NULL && base[0] != '\0' ? base : DEFAULT_API,
	                   token[0] != '\0' ? token : NULL, (long)timeout);
	memset(token, 0, sizeof(token));
	if (c.api == NULL) {
		fprintf(stderr, "mailshift: cannot set up the HTTP client (libcurl)\n");
		return EXIT_UNREACHABLE;
	}
	ret = cmd->run(&c, nargs + 1, argv + optind);
	api_destroy(&c.api);
	return ret;
}
