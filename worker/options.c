/* The worker's command line: options, their defaults and the usage. */
#include "worker-private.h"

#include <ctype.h>
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
	    "  --split-min N          a folder's first copy with N messages or more goes in\n"
	    "                         two streams on a connection pair more (default 1000;\n"
	    "                         0: never, the destination's UIDs keep source order)\n"
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
	    "  --listen ADDR:PORT     health listener: /healthz, /readyz, /metrics (env\n"
	    "                         MAILSHIFT_WORKER_LISTEN; default: none)\n"
	    "  --tmpdir DIR           spool of large messages, the only place written to\n"
	    "                         (env MAILSHIFT_TMPDIR, else TMPDIR, else /tmp)\n"
	    "Every option from --ca-file on can also be set as MAILSHIFT_WORKER_NAME\n"
	    "(--batch-mb: MAILSHIFT_WORKER_BATCH_MB); the command line wins.\n"
	    "environment:\n"
	    "  MAILSHIFT_DB_TIMEOUT=SECS            PostgreSQL connect timeout (default 10)\n"
	    "  MAILSHIFT_DB_STATEMENT_TIMEOUT=SECS  PostgreSQL statement timeout (default 60)\n"
	    "  MAILSHIFT_DB_PASSWORD_FILE=PATH      PostgreSQL password, read from PATH\n"
	    "  MAILSHIFT_KEY_FILE_PERMISSIVE=1      only warn about a key file others can read\n"
	    "  MAILSHIFT_LOG=LEVEL                  debug, info (default), warn or error\n"
	    "  MAILSHIFT_TOPIC_PREFIX=P             topics P+jobs, P+events (default mailshift.)\n"
	    "  MAILSHIFT_TOPIC_JOBS=NAME            the jobs topic's whole name\n"
	    "  MAILSHIFT_TOPIC_EVENTS=NAME          the events topic's whole name\n"
	    "  MAILSHIFT_KAFKA_PROPERTIES_FILE=PATH librdkafka properties (name=value lines)\n"
	    "  MAILSHIFT_KAFKA_NAME=VALUE           librdkafka property name (lower case, _ is .)\n"
	    "  MAILSHIFT_KAFKA_NAME_FILE=PATH       the same, the value read from PATH\n");
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
static int fault_option(struct sync_config *cfg, int c, const char *arg, const char *what,
                        long *shutdown_s)
{
	long v;

	switch (c) {
	case 'T':
		if (parse_int(arg, what, 1, 3600, &v) < 0)
			return -1;
		cfg->io_timeout_s = (int)v;
		break;
	case 'S':
		if (parse_int(arg, what, 0, 86400, &v) < 0)
			return -1;
		cfg->stall_timeout_s = (int)v;
		break;
	case 'D':
		if (parse_int(arg, what, 1, 3600, shutdown_s) < 0)
			return -1;
		break;
	case 'F':
		if (parse_int(arg, what, 1, 10000000, &v) < 0)
			return -1;
		cfg->max_folders = (int)v;
		break;
	case 'M':
		if (parse_int(arg, what, 1, 1 << 20, &v) < 0)
			return -1;
		cfg->max_message_bytes = (uint64_t)v << 20;
		break;
	}
	return 0;
}

/* One option's value into w and o; what names it in errors (the flag or
 * its environment variable).  -1 when the value is bad (said). */
static int option_apply(struct worker *w, struct worker_options *o, int c, const char *arg,
                        const char *what)
{
	long v;

	switch (c) {
	case 'd':
		o->db = arg;
		break;
	case 'b':
		free(o->brokers);
		o->brokers = strdup(arg);
		break;
	case 'B':
		o->brokers_file = arg;
		break;
	case 'k':
		o->key_file = arg;
		break;
	case 'c':
		w->sync.ca_file = arg;
		break;
	case 'a':
		if (parse_int(arg, what, 1, 1000, &v) < 0)
			return -1;
		w->capacity = (int)v;
		break;
	case 'f':
		if (parse_int(arg, what, 1, 64, &v) < 0)
			return -1;
		w->sync.folder_threads = (int)v;
		break;
	case 'n':
		if (parse_int(arg, what, 1, 10000, &v) < 0)
			return -1;
		w->sync.batch_count = (size_t)v;
		break;
	case 'm':
		if (parse_int(arg, what, 1, 1024, &v) < 0)
			return -1;
		w->sync.batch_bytes = (size_t)v << 20;
		break;
	case 's':
		if (parse_int(arg, what, 0, 100000000, &v) < 0)
			return -1;
		w->sync.split_min = (uint32_t)v;
		break;
	case 'x':
		return parse_int(arg, what, 1, 86400, &o->idle_exit);
	case 'i':
		o->id = arg;
		break;
	case 'l':
		if (parse_int(arg, what, 2, 3600, &v) < 0)
			return -1;
		w->sync.lease_ttl_s = (int)v;
		break;
	case 'L':
		o->listen = *arg != '\0' ? arg : NULL;
		break;
	case 't':
		w->sync.tmpdir = arg;
		break;
	default:
		return fault_option(&w->sync, c, arg, what, &o->shutdown_s);
	}
	return 0;
}

/* MAILSHIFT_WORKER_ + the option's name in upper case, - as _. */
static void option_env_name(const char *opt, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "MAILSHIFT_WORKER_");

	for (; *opt != '\0' && n + 1 < size; opt++)
		buf[n++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
	buf[n] = '\0';
}

int worker_options_parse(int argc, char **argv, struct worker *w, struct worker_options *o,
                         int *exit_r)
{
	/* The first four have their own variables, shared with the coordinator
	 * (MAILSHIFT_DB...); the others from ca-file on get MAILSHIFT_WORKER_*. */
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
	    {"split-min", required_argument, NULL, 's'},
	    {"exit-when-idle", required_argument, NULL, 'x'},
	    {"id", required_argument, NULL, 'i'},
	    {"lease-ttl", required_argument, NULL, 'l'},
	    {"io-timeout", required_argument, NULL, 'T'},
	    {"stall-timeout", required_argument, NULL, 'S'},
	    {"shutdown-timeout", required_argument, NULL, 'D'},
	    {"max-folders", required_argument, NULL, 'F'},
	    {"max-message-mb", required_argument, NULL, 'M'},
	    {"listen", required_argument, NULL, 'L'},
	    {"tmpdir", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *tmpdir = getenv("TMPDIR");
	char what[64];
	int c;

	o->db = getenv("MAILSHIFT_DB");
	o->brokers_file = getenv("MAILSHIFT_BROKERS_FILE");
	o->key_file = getenv("MAILSHIFT_KEY_FILE");
	o->id = NULL;
	o->listen = NULL;
	o->brokers =
	    getenv("MAILSHIFT_BROKERS") != NULL ? strdup(getenv("MAILSHIFT_BROKERS")) : NULL;
	o->idle_exit = 0;
	o->shutdown_s = 10;
	w->capacity = 4;
	w->sync.folder_threads = 0; /* from the budgets (sync_account) */
	w->sync.batch_count = 100;
	w->sync.batch_bytes = 8u << 20;
	w->sync.window = 5000;
	w->sync.split_min = 1000;
	w->sync.lease_ttl_s = 60;
	w->sync.stall_timeout_s = 120;
	w->sync.max_folders = 10000;
	w->sync.max_message_bytes = (uint64_t)256 << 20;
	w->sync.tmpdir = tmpdir != NULL && *tmpdir != '\0' ? tmpdir : "/tmp";
	if (getenv("MAILSHIFT_TMPDIR") != NULL && *getenv("MAILSHIFT_TMPDIR") != '\0')
		w->sync.tmpdir = getenv("MAILSHIFT_TMPDIR");
	for (size_t i = 4; opts[i].has_arg == required_argument; i++) {
		const char *v;

		option_env_name(opts[i].name, what, sizeof(what));
		v = getenv(what);
		if (v != NULL && option_apply(w, o, opts[i].val, v, what) < 0)
			goto bad;
	}
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = NULL;

		for (size_t i = 0; opts[i].name != NULL; i++)
			if (opts[i].val == c)
				name = opts[i].name;
		if (c == 'h' || c == '?' || name == NULL) {
			usage();
			*exit_r = c == 'h' ? 0 : 2;
			return -1;
		}
		snprintf(what, sizeof(what), "--%s", name);
		if (option_apply(w, o, c, optarg, what) < 0)
			goto bad;
	}
	return 0;
bad:
	*exit_r = 2;
	return -1;
}
