/* The worker's command line: options, their defaults and the usage. */
#include "worker-private.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: mailshift-worker [options]\n"
	    "  --db CONNINFO          PostgreSQL (env MAILSHIFT_DB)\n"
	    "  --brokers LIST         Kafka bootstrap servers (env MAILSHIFT_BROKERS)\n"
	    "  --brokers-file PATH    file holding the bootstrap list (env "
	    "MAILSHIFT_BROKERS_FILE)\n"
	    "  --key-file PATH        secret key file (env MAILSHIFT_KEY_FILE, or\n"
	    "                         MAILSHIFT_SECRET_KEY holding the key)\n"
	    "  --ca-file PATH         extra CA certificates for every IMAP server\n"
	    "  --accounts N           accounts copied at once (default 4)\n"
	    "  --folders N            parallel folders per account (default: from the\n"
	    "                         servers' connection budgets, half the smaller one,\n"
	    "                         at most 4, and 8 shared by the accounts at once)\n"
	    "  --batch-count N        messages per append batch (default 100)\n"
	    "  --batch-mb N           megabytes per batch (default 8)\n"
	    "  --exit-when-idle SECS  exit after SECS without work (default: run forever)\n"
	    "  --lease-ttl SECS       account lease lifetime, renewed while copying (default 60)\n"
	    "  --io-timeout SECS      IMAP connect and read timeout (default 60)\n"
	    "  --stall-timeout SECS   a folder thread without progress this long is abandoned\n"
	    "                         and its account's lease no longer renewed (default 120,\n"
	    "                         0: never)\n"
	    "  --shutdown-timeout SECS  SIGTERM: exit within SECS whatever the accounts are\n"
	    "                         doing (default 10)\n"
	    "  --max-folders N        folders per account; more is an account error (default "
	    "10000)\n"
	    "  --max-message-mb N     larger messages get a message error (default 256)\n"
	    "  --id NAME              worker id, unique in the fleet (default host-pid-time)\n"
	    "environment: MAILSHIFT_DB_TIMEOUT, MAILSHIFT_DB_STATEMENT_TIMEOUT (seconds: "
	    "PostgreSQL\n"
	    "connect and statement bounds, default 10 and 60), MAILSHIFT_KEY_FILE_PERMISSIVE=1\n"
	    "(only warn about a key file others can read)\n");
}

static int parse_int(const char *s, const char *what, long min, long max, long *v_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "mailshift-worker: %s: must be an integer %ld..%ld\n", what, min,
		        max);
		return -1;
	}
	*v_r = v;
	return 0;
}

/* The bounds on faults: --io-timeout (T), --stall-timeout (S),
 * --shutdown-timeout (D), --max-folders (F), --max-message-mb (M). */
static int fault_option(struct sync_config *cfg, int c, const char *arg, long *shutdown_s)
{
	long v;

	switch (c) {
	case 'T':
		if (parse_int(arg, "--io-timeout", 1, 3600, &v) < 0)
			return -1;
		cfg->io_timeout_s = (int)v;
		break;
	case 'S':
		if (parse_int(arg, "--stall-timeout", 0, 86400, &v) < 0)
			return -1;
		cfg->stall_timeout_s = (int)v;
		break;
	case 'D':
		if (parse_int(arg, "--shutdown-timeout", 1, 3600, shutdown_s) < 0)
			return -1;
		break;
	case 'F':
		if (parse_int(arg, "--max-folders", 1, 10000000, &v) < 0)
			return -1;
		cfg->max_folders = (int)v;
		break;
	case 'M':
		if (parse_int(arg, "--max-message-mb", 1, 1 << 20, &v) < 0)
			return -1;
		cfg->max_message_bytes = (uint64_t)v << 20;
		break;
	}
	return 0;
}

int worker_options_parse(int argc, char **argv, struct worker *w, struct worker_options *o,
                         int *exit_r)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"brokers", required_argument, NULL, 'b'},
	    {"brokers-file", required_argument, NULL, 'B'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"ca-file", required_argument, NULL, 'c'},
	    {"accounts", required_argument, NULL, 'a'},
	    {"folders", required_argument, NULL, 'f'},
	    {"batch-count", required_argument, NULL, 'n'},
	    {"batch-mb", required_argument, NULL, 'm'},
	    {"exit-when-idle", required_argument, NULL, 'x'},
	    {"id", required_argument, NULL, 'i'},
	    {"lease-ttl", required_argument, NULL, 'l'},
	    {"io-timeout", required_argument, NULL, 'T'},
	    {"stall-timeout", required_argument, NULL, 'S'},
	    {"shutdown-timeout", required_argument, NULL, 'D'},
	    {"max-folders", required_argument, NULL, 'F'},
	    {"max-message-mb", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long v;
	int c;

	o->db = getenv("MAILSHIFT_DB");
	o->brokers_file = getenv("MAILSHIFT_BROKERS_FILE");
	o->key_file = getenv("MAILSHIFT_KEY_FILE");
	o->id = NULL;
	o->brokers =
	    getenv("MAILSHIFT_BROKERS") != NULL ? strdup(getenv("MAILSHIFT_BROKERS")) : NULL;
	o->idle_exit = 0;
	o->shutdown_s = 10;
	w->capacity = 4;
	w->sync.folder_threads = 0; /* from the budgets (sync_account) */
	w->sync.batch_count = 100;
	w->sync.batch_bytes = 8u << 20;
	w->sync.window = 5000;
	w->sync.lease_ttl_s = 60;
	w->sync.stall_timeout_s = 120;
	w->sync.max_folders = 10000;
	w->sync.max_message_bytes = (uint64_t)256 << 20;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->db = optarg;
			break;
		case 'b':
			free(o->brokers);
			o->brokers = strdup(optarg);
			break;
		case 'B':
			o->brokers_file = optarg;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 'c':
			w->sync.ca_file = optarg;
			break;
		case 'a':
			if (parse_int(optarg, "--accounts", 1, 1000, &v) < 0)
				goto bad;
			w->capacity = (int)v;
			break;
		case 'f':
			if (parse_int(optarg, "--folders", 1, 64, &v) < 0)
				goto bad;
			w->sync.folder_threads = (int)v;
			break;
		case 'n':
			if (parse_int(optarg, "--batch-count", 1, 10000, &v) < 0)
				goto bad;
			w->sync.batch_count = (size_t)v;
			break;
		case 'm':
			if (parse_int(optarg, "--batch-mb", 1, 1024, &v) < 0)
				goto bad;
			w->sync.batch_bytes = (size_t)v << 20;
			break;
		case 'x':
			if (parse_int(optarg, "--exit-when-idle", 1, 86400, &o->idle_exit) < 0)
				goto bad;
			break;
		case 'i':
			o->id = optarg;
			break;
		case 'l':
			if (parse_int(optarg, "--lease-ttl", 2, 3600, &v) < 0)
				goto bad;
			w->sync.lease_ttl_s = (int)v;
			break;
		case 'T':
		case 'S':
		case 'D':
		case 'F':
		case 'M':
			if (fault_option(&w->sync, c, optarg, &o->shutdown_s) < 0)
				goto bad;
			break;
		default:
			usage();
			*exit_r = c == 'h' ? 0 : 2;
			return -1;
		}
	}
	return 0;
bad:
	*exit_r = 2;
	return -1;
}
