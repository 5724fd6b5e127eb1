/* mailshift-coordinator: the thin coordinator.  Applies the schema, imports a
 * plan (server settings and the accounts CSV, secrets encrypted), publishes
 * one job per account for a pass, and reports progress from PostgreSQL.
 * (Scheduling with budgets and blackout windows, verification and the HTTP API
 * come with the fleet work; they take the place of the `pass` command.) */
#include "log.h"
#include "plan.h"
#include "queue.h"
#include "report.h"
#include "scheduler.h"
#include "verifier.h"
#include "secret.h"
#include "store.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct options {
	const char *db;
	const char *brokers_file;
	char *brokers;
	const char *key_file;
};

static int parse_id(const char *s, const char *what, int64_t *v_r)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1) {
		fprintf(stderr, "mailshift-coordinator: %s: not a positive integer: %s\n", what, s);
		return -1;
	}
	*v_r = v;
	return 0;
}

static int encrypt_secret(const struct secret_key *key, const char *role, const char *login,
			  const char *secret, unsigned char **out_r, size_t *len_r)
{
	char aad[512], err[256];

	snprintf(aad, sizeof(aad), "%s:%s", role, login);
	if (secret_encrypt(key, aad, (const unsigned char *)secret, strlen(secret), out_r, len_r,
			   err, sizeof(err)) < 0) {
		log_error("account %s: %s", login, err);
		return -1;
	}
	return 0;
}

/* import PLAN: the plan and every account in one transaction, after the whole
 * file was validated: a bad line or a database error imports nothing. */
static int cmd_import(struct store *st, const struct options *o, const char *path)
{
	struct store_new_account *rows = NULL;
	struct secret_key *key = NULL;
	struct plan *plan = NULL;
	const char *error;
	char err[8192];
	int64_t mid;
	int ret = 1;

	if (plan_load(path, &plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (secret_key_load(o->key_file, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	rows = calloc(plan->naccounts + 1, sizeof(*rows));
	if (rows == NULL) {
		fprintf(stderr, "out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < plan->naccounts; i++) {
		const struct plan_account *a = &plan->accounts[i];
		struct store_new_account *r = &rows[i];
		/* With a master user, the secret is the master's password. */
		const char *src_pw = plan->src_master_password != NULL ? plan->src_master_password
								       : a->src_password;
		const char *dst_pw = plan->dst_master_password != NULL ? plan->dst_master_password
						: a->dst_password != NULL ? a->dst_password
									  : a->src_password;
		unsigned char *s = NULL, *d = NULL;

		if (encrypt_secret(key, "src", a->src_login, src_pw, &s, &r->src_secret_len) < 0 ||
		    encrypt_secret(key, "dst", a->dst_login, dst_pw, &d, &r->dst_secret_len) < 0) {
			free(s);
			goto out;
		}
		r->src_secret = s;
		r->dst_secret = d;
		r->src_login = a->src_login;
		r->dst_login = a->dst_login;
		r->priority = a->priority;
		r->line = a->line;
	}
	if (store_migration_import(st, plan->name, &plan->src, &plan->dst, rows, plan->naccounts,
				   &mid, &error) < 0) {
		fprintf(stderr, "%s: %s (nothing imported)\n", path, error);
		goto out;
	}
	printf("%" PRId64 "\n", mid);
	log_info("migration %" PRId64 " (%s): %zu accounts imported", mid, plan->name,
		 plan->naccounts);
	ret = 0;
out:
	if (rows != NULL) {
		for (size_t i = 0; i < plan->naccounts; i++) {
			free((void *)rows[i].src_secret);
			free((void *)rows[i].dst_secret);
		}
		free(rows);
	}
	plan_destroy(&plan);
	secret_key_destroy(&key);
	return ret;
}

/* Publishes the jobs and marks them published. */
static int publish_jobs(struct store *st, const struct options *o, const struct store_job *jobs,
			size_t count)
{
	struct queue_producer *producer = NULL;
	int64_t *ids = NULL;
	const char *error;
	char err[512];
	int ret = 1;

	if (count == 0)
		return 0;
	if (o->brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		return 1;
	}
	ids = calloc(count, sizeof(*ids));
	if (ids == NULL || queue_producer_create(o->brokers, &producer, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", ids == NULL ? "out of memory" : err);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		struct queue_job job = {.migration_id = jobs[i].migration_id,
					.account_id = jobs[i].account_id,
					.pass = jobs[i].pass};
		ids[i] = jobs[i].account_id;
		if (queue_job_publish(producer, &job, err, sizeof(err)) < 0) {
			fprintf(stderr, "account %" PRId64 ": %s\n", jobs[i].account_id, err);
			goto out;
		}
	}
	if (queue_producer_flush(producer, 30000, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (store_jobs_published(st, ids, count, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		goto out;
	}
	ret = 0;
out:
	free(ids);
	queue_producer_destroy(&producer);
	return ret;
}

/* pass MIGRATION N: queue the accounts and publish one job each. */
static int cmd_pass(struct store *st, const struct options *o, int64_t mid, int pass)
{
	struct store_job *jobs = NULL;
	int64_t *ids = NULL;
	size_t count = 0;
	const char *error;
	int ret = 1;

	if (o->brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		return 1;
	}
	if (store_pass_start(st, mid, pass, &ids, &count, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	jobs = calloc(count + 1, sizeof(*jobs));
	if (jobs == NULL)
		goto out;
	for (size_t i = 0; i < count; i++)
		jobs[i] = (struct store_job){.migration_id = mid, .account_id = ids[i], .pass = pass};
	ret = publish_jobs(st, o, jobs, count);
	if (ret == 0)
		log_info("migration %" PRId64 ": pass %d queued for %zu accounts", mid, pass,
			 count);
out:
	free(jobs);
	free(ids);
	return ret;
}

/* pause|resume|cancel MIGRATION [ACCOUNT] */
static int cmd_control(struct store *st, const struct options *o, const char *action,
		       int64_t mid, int64_t account_id)
{
	struct store_job *jobs = NULL;
	size_t count = 0;
	const char *error;
	int ret;

	if (store_accounts_control(st, mid, account_id, action, &jobs, &count, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	ret = publish_jobs(st, o, jobs, count);
	log_info("migration %" PRId64 ": %s done%s", mid, action,
		 strcmp(action, "pause") == 0 ? "; running accounts stop at their next checkpoint"
					      : "");
	free(jobs);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mailshift-coordinator [options] COMMAND\n"
		"commands:\n"
		"  import PLAN.json          store a migration and its accounts; prints its id\n"
		"  verify MIGRATION          check every account's source and destination login\n"
		"                            (verified, auth_failed or verify_failed)\n"
		"  pass MIGRATION N          run pass N (1 = bulk, 2.. = delta) for every verified\n"
		"                            account\n"
		"  wait MIGRATION N [SECS]   wait until pass N ended for every account\n"
		"  status MIGRATION          per-account state, counts and last error\n"
		"  pause MIGRATION [ACCOUNT] stop starting work; running accounts checkpoint\n"
		"  resume MIGRATION [ACCOUNT] continue paused accounts\n"
		"  cancel MIGRATION [ACCOUNT] stop for good\n"
		"  run                       the scheduler daemon: re-queues accounts whose lease\n"
		"                            expired and publishes the jobs owed (one active\n"
		"                            coordinator at a time, the others stand by)\n"
		"options:\n"
		"  --db CONNINFO          PostgreSQL (env MAILSHIFT_DB)\n"
		"  --brokers LIST         Kafka bootstrap servers (env MAILSHIFT_BROKERS)\n"
		"  --brokers-file PATH    file holding the bootstrap list (env MAILSHIFT_BROKERS_FILE)\n"
		"  --key-file PATH        secret key file (env MAILSHIFT_KEY_FILE)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"brokers", required_argument, NULL, 'b'},
		{"brokers-file", required_argument, NULL, 'B'},
		{"key-file", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct options o = {
		.db = getenv("MAILSHIFT_DB"),
		.brokers_file = getenv("MAILSHIFT_BROKERS_FILE"),
		.key_file = getenv("MAILSHIFT_KEY_FILE"),
	};
	struct store *st = NULL;
	const char *error, *cmd;
	char err[512];
	int64_t mid = 0;
	int c, ret = 2;

	if (getenv("MAILSHIFT_BROKERS") != NULL)
		o.brokers = strdup(getenv("MAILSHIFT_BROKERS"));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.db = optarg;
			break;
		case 'b':
			free(o.brokers);
			o.brokers = strdup(optarg);
			break;
		case 'B':
			o.brokers_file = optarg;
			break;
		case 'k':
			o.key_file = optarg;
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	log_init("coordinator");
	if (optind >= argc) {
		usage();
		goto out;
	}
	cmd = argv[optind];
	if (o.db == NULL) {
		fprintf(stderr, "no database: give --db or MAILSHIFT_DB\n");
		goto out;
	}
	if (o.brokers == NULL && o.brokers_file != NULL &&
	    queue_brokers_from_file(o.brokers_file, &o.brokers, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (store_open(o.db, &st, &error) < 0 || store_schema_apply(st, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		ret = 1;
		goto out;
	}
	if (strcmp(cmd, "import") == 0 && argc - optind == 2) {
		ret = cmd_import(st, &o, argv[optind + 1]);
	} else if (strcmp(cmd, "pass") == 0 && argc - optind == 3) {
		int64_t pass;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0 ||
		    parse_id(argv[optind + 2], "pass", &pass) < 0 || pass > 1000)
			goto out;
		ret = cmd_pass(st, &o, mid, (int)pass);
	} else if (strcmp(cmd, "wait") == 0 && (argc - optind == 3 || argc - optind == 4)) {
		int64_t pass, secs = 3600;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0 ||
		    parse_id(argv[optind + 2], "pass", &pass) < 0 ||
		    (argc - optind == 4 && parse_id(argv[optind + 3], "seconds", &secs) < 0))
			goto out;
		ret = report_wait(st, mid, (int)pass, (int)secs);
	} else if (strcmp(cmd, "verify") == 0 && argc - optind == 2) {
		struct secret_key *key = NULL;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		if (secret_key_load(o.key_file, &key, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			ret = 1;
			goto out;
		}
		/* Logins at once: within Dovecot's default per-user-and-IP limit. */
		ret = verifier_run(o.db, key, mid, 8) == 0 ? 0 : 1;
		secret_key_destroy(&key);
	} else if (strcmp(cmd, "run") == 0 && argc - optind == 1) {
		struct scheduler_config sc = {
			.db_conninfo = o.db,
			.brokers = o.brokers,
			.interval_ms = 500,
			.republish_s = 300,
			.stop = &stop_requested,
		};
		if (o.brokers == NULL) {
			fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
			goto out;
		}
		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		store_close(&st); /* the scheduler keeps its own connection */
		ret = scheduler_run(&sc) < 0 ? 1 : 0;
	} else if ((strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0 ||
		    strcmp(cmd, "cancel") == 0) &&
		   (argc - optind == 2 || argc - optind == 3)) {
		int64_t account_id = 0;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0 ||
		    (argc - optind == 3 && parse_id(argv[optind + 2], "account", &account_id) < 0))
			goto out;
		ret = cmd_control(st, &o, cmd, mid, account_id);
	} else if (strcmp(cmd, "status") == 0 && argc - optind == 2) {
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		ret = report_status(st, mid);
	} else {
		usage();
	}
out:
	store_close(&st);
	free(o.brokers);
	return ret;
}
