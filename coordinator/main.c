/* mailshift-coordinator: the thin coordinator.  Applies the schema, imports a
 * plan (server settings and the accounts CSV, secrets encrypted), publishes
 * one job per account for a pass, and reports progress from PostgreSQL.
 * (Scheduling with budgets and blackout windows, verification and the HTTP API
 * come with the fleet work; they take the place of the `pass` command.) */
#include "account.h"
#include "log.h"
#include "plan.h"
#include "queue.h"
#include "report.h"
#include "scheduler.h"
#include "secret.h"
#include "store.h"
#include "verifier.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Seconds after which a job published but not taken is published again. */
#define REPUBLISH_S 300

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

/* Seals one password for its account; the error is logged. */
static int seal_secret(const struct secret_key *key, enum account_side side, const char *login,
                       const char *secret, unsigned char **out_r, size_t *len_r)
{
	char err[256];

	if (account_secret_seal(key, side, login, secret, out_r, len_r, err, sizeof(err)) < 0) {
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
	for (size_t i = 0; i < plan->nsrcs; i++)
		if (strcmp(plan->srcs[i].tls, "none") == 0)
			fprintf(stderr,
			        "warning: source '%s' uses tls none: passwords travel in"
			        " clear\n",
			        plan->srcs[i].name);
	if (strcmp(plan->dst.tls, "none") == 0)
		fprintf(stderr,
		        "warning: the destination uses tls none: passwords travel in clear\n");
	if (account_key_open(st, o->key_file, true, &key, err, sizeof(err)) < 0) {
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
		const char *src_master = plan->src_master_passwords[a->source];
		const char *src_pw = src_master != NULL ? src_master : a->src_password;
		const char *dst_pw = plan->dst_master_password != NULL ? plan->dst_master_password
		                     : a->dst_password != NULL         ? a->dst_password
		                                                       : a->src_password;
		unsigned char *s = NULL, *d = NULL;

		if (seal_secret(key, ACCOUNT_SRC, a->src_login, src_pw, &s, &r->src_secret_len) <
		        0 ||
		    seal_secret(key, ACCOUNT_DST, a->dst_login, dst_pw, &d, &r->dst_secret_len) <
		        0) {
			free(s);
			goto out;
		}
		r->src_secret = s;
		r->dst_secret = d;
		r->src_login = a->src_login;
		r->dst_login = a->dst_login;
		r->priority = a->priority;
		r->source = a->source;
		r->line = a->line;
	}
	if (store_migration_import(st, plan->name, plan->srcs, plan->nsrcs, &plan->dst, rows,
	                           plan->naccounts, &mid, &error) < 0) {
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

/* Publishes what the budgets and the workers' room allow now; the scheduler
 * publishes the rest as accounts finish.  *published_r counts the jobs. */
static int publish_due(struct store *st, const struct options *o, int64_t mid, size_t *published_r)
{
	struct queue_producer *producer = NULL;
	size_t count = 0;
	char err[512];
	int ret = 1;

	if (queue_producer_create(o->brokers, &producer, err, sizeof(err)) < 0 ||
	    scheduler_publish_due(st, producer, mid, 100000, REPUBLISH_S, &count, err,
	                          sizeof(err)) < 0)
		fprintf(stderr, "%s\n", err);
	else
		ret = 0;
	queue_producer_destroy(&producer);
	if (published_r != NULL)
		*published_r = count;
	return ret;
}

/* An account argument: a source login or an id; the error is printed. */
static int account_arg(struct store *st, int64_t mid, const char *which, int64_t *id_r)
{
	const char *error;

	if (store_account_find(st, mid, which, id_r, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	return 0;
}

/* Resolves account arguments (source logins or ids); caller frees *ids_r. */
static int resolve_accounts(struct store *st, int64_t mid, char **names, int n, int64_t **ids_r)
{
	int64_t *ids = calloc((size_t)n + 1, sizeof(*ids));

	if (ids == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		if (account_arg(st, mid, names[i], &ids[i]) < 0) {
			free(ids);
			return -1;
		}
	}
	*ids_r = ids;
	return 0;
}

/* pass MIGRATION N [ACCOUNT...]: queue pass N (all accounts, or those named)
 * and publish the jobs the connection budgets allow now. */
static int cmd_pass(struct store *st, const struct options *o, int64_t mid, int pass,
                    const char *kind, const int64_t *ids, size_t nids)
{
	size_t queued = 0, published = 0;
	const char *error;
	int ret;

	if (o->brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		return 1;
	}
	if (store_pass_start(st, mid, pass, kind, ids, nids, &queued, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (queued == 0) {
		char states[512];
		int64_t fresh = 0, verified = 0;

		if (store_migration_states(st, mid, states, sizeof(states), &fresh, &verified,
		                           &error) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (fresh > 0)
			fprintf(stderr,
			        "migration %" PRId64
			        ": pass %d not started: no verified accounts to"
			        " run: run `mailshift-coordinator verify %" PRId64 "` first"
			        " (accounts: %s)\n",
			        mid, pass, mid, states[0] != '\0' ? states : "none");
		else
			fprintf(stderr,
			        "migration %" PRId64 ": pass %d not started: no account to run"
			        " (accounts: %s)\n",
			        mid, pass, states[0] != '\0' ? states : "none");
		return 1;
	}
	ret = publish_due(st, o, mid, &published);
	if (ret == 0)
		log_info("migration %" PRId64 ": pass %d (%s) queued for %zu accounts; %zu jobs"
		         " published now, the scheduler publishes the rest within the"
		         " connection budgets",
		         mid, pass, kind, queued, published);
	printf("pass %d\n", pass);
	return ret;
}

/* pause|resume|cancel MIGRATION [ACCOUNT] */
static int cmd_control(struct store *st, const struct options *o, const char *action, int64_t mid,
                       int64_t account_id)
{
	struct store_job *jobs = NULL;
	size_t count = 0, changed = 0, unchanged = 0;
	const char *error;
	int ret = 0;

	if (store_accounts_control(st, mid, account_id, action, &jobs, &count, &changed, &unchanged,
	                           &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	free(jobs);
	if (count > 0 && o->brokers != NULL)
		ret = publish_due(st, o, mid, NULL);
	if (strcmp(action, "cancel") == 0)
		printf("%zu accounts cancelled, %zu already finished (synced, done, cancelled, or"
		       " failed with no retry left) kept their state\n",
		       changed, unchanged);
	else if (strcmp(action, "pause") == 0)
		printf("%zu accounts paused (running ones stop at their next checkpoint), %zu"
		       " left as they were (already paused, finished or refused)\n",
		       changed, unchanged);
	else
		printf("%zu accounts resumed (paused ones, and failed ones of their current pass"
		       " with a fresh error budget), %zu left as they were\n",
		       changed, unchanged);
	return ret;
}

/* After new or repaired credentials: verify those accounts and let the
 * verified ones join the migration's current pass. */
static int verify_and_join(struct store *st, const struct options *o, int64_t mid,
                           const int64_t *ids, size_t n)
{
	struct secret_key *key = NULL;
	const char *error;
	char err[512];
	size_t queued = 0;
	int last = 0, ret;

	if (account_key_open(st, o->key_file, false, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	ret = verifier_run(o->db, key, mid, ids, n, 8) != 0 ? 1 : 0;
	secret_key_destroy(&key);
	if (store_pass_last(st, mid, &last, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (last > 0) {
		if (store_pass_start(st, mid, last, last == 1 ? "bulk" : "delta", ids, n, &queued,
		                     &error) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (queued > 0 && o->brokers != NULL)
			ret |= publish_due(st, o, mid, NULL);
		printf("%zu accounts joined pass %d\n", queued, last);
	}
	return ret;
}

/* add MIGRATION CSV: more accounts for a migration, possibly running. */
static int cmd_add(struct store *st, const struct options *o, int64_t mid, const char *csv)
{
	struct store_new_account *rows = NULL;
	struct secret_key *key = NULL;
	struct plan *plan = calloc(1, sizeof(*plan));
	int64_t *ids = NULL;
	const char *error;
	char err[8192];
	int ret = 1;

	if (plan == NULL)
		return 1;
	/* The CSV names source profiles: the migration's. */
	if (store_migration_sources(st, mid, &plan->srcs, &plan->nsrcs, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		goto out;
	}
	if (plan->nsrcs == 0) {
		fprintf(stderr, "no migration %" PRId64 "\n", mid);
		goto out;
	}
	if (plan_accounts_parse(csv, plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (account_key_open(st, o->key_file, true, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	rows = calloc(plan->naccounts + 1, sizeof(*rows));
	ids = calloc(plan->naccounts + 1, sizeof(*ids));
	if (rows == NULL || ids == NULL)
		goto out;
	for (size_t i = 0; i < plan->naccounts; i++) {
		const struct plan_account *a = &plan->accounts[i];
		const char *dst_pw = a->dst_password != NULL ? a->dst_password : a->src_password;
		unsigned char *s = NULL, *d = NULL;

		if (plan->srcs[a->source].master_user != NULL) {
			fprintf(stderr,
			        "%s:%d: source profile %s logs in as a master user: its"
			        " accounts are added with the plan\n",
			        csv, a->line, plan->srcs[a->source].name);
			goto out;
		}
		if (seal_secret(key, ACCOUNT_SRC, a->src_login, a->src_password, &s,
		                &rows[i].src_secret_len) < 0 ||
		    seal_secret(key, ACCOUNT_DST, a->dst_login, dst_pw, &d,
		                &rows[i].dst_secret_len) < 0) {
			free(s);
			goto out;
		}
		rows[i] = (struct store_new_account){.src_login = a->src_login,
		                                     .dst_login = a->dst_login,
		                                     .src_secret = s,
		                                     .src_secret_len = rows[i].src_secret_len,
		                                     .dst_secret = d,
		                                     .dst_secret_len = rows[i].dst_secret_len,
		                                     .priority = a->priority,
		                                     .source = a->source,
		                                     .line = a->line};
	}
	if (store_accounts_add(st, mid, rows, plan->naccounts, &error) < 0) {
		fprintf(stderr, "%s: %s (nothing added)\n", csv, error);
		goto out;
	}
	for (size_t i = 0; i < plan->naccounts; i++) {
		if (store_account_find(st, mid, plan->accounts[i].src_login, &ids[i], &error) < 0) {
			fprintf(stderr, "%s\n", error);
			goto out;
		}
	}
	log_info("migration %" PRId64 ": %zu accounts added", mid, plan->naccounts);
	ret = verify_and_join(st, o, mid, ids, plan->naccounts);
out:
	if (rows != NULL) {
		for (size_t i = 0; i < plan->naccounts; i++) {
			free((void *)rows[i].src_secret);
			free((void *)rows[i].dst_secret);
		}
	}
	free(rows);
	free(ids);
	plan_destroy(&plan);
	secret_key_destroy(&key);
	return ret;
}

/* passwd MIGRATION ACCOUNT source|destination|both: the new password from
 * stdin (never from the command line, which other users can see). */
static int cmd_passwd(struct store *st, const struct options *o, int64_t mid, const char *which,
                      const char *side)
{
	struct store_account acct;
	struct secret_key *key = NULL;
	unsigned char *secret = NULL;
	size_t secret_len = 0;
	int64_t id;
	const char *error;
	char pw[4096], err[512];
	size_t len;
	int ret = 1;

	if (strcmp(side, "source") != 0 && strcmp(side, "destination") != 0 &&
	    strcmp(side, "both") != 0) {
		fprintf(stderr, "passwd: the side is source, destination or both, not %s\n", side);
		return 2;
	}
	if (store_account_find(st, mid, which, &id, &error) < 0 ||
	    store_account_get(st, id, &acct, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL || (len = strcspn(pw, "\r\n")) == 0) {
		fprintf(stderr, "passwd: give the new password on standard input\n");
		goto out;
	}
	pw[len] = '\0';
	if (account_key_open(st, o->key_file, true, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		const char *s = i == 0 ? "source" : "destination";
		if (strcmp(side, "both") != 0 && strcmp(side, s) != 0)
			continue;
		free(secret);
		secret = NULL;
		if (seal_secret(key, i == 0 ? ACCOUNT_SRC : ACCOUNT_DST,
		                i == 0 ? acct.src_login : acct.dst_login, pw, &secret,
		                &secret_len) < 0)
			goto out;
		if (store_account_secret(st, id, s, secret, secret_len, &error) < 0) {
			fprintf(stderr, "%s\n", error);
			goto out;
		}
	}
	log_info("account %" PRId64 " (%s): %s updated", id, acct.src_login,
	         strcmp(side, "both") == 0     ? "source and destination passwords"
	         : strcmp(side, "source") == 0 ? "source password"
	                                       : "destination password");
	ret = verify_and_join(st, o, mid, &id, 1);
out:
	explicit_bzero(pw, sizeof(pw));
	free(secret);
	secret_key_destroy(&key);
	store_account_clear(&acct);
	return ret;
}

/* How long remove waits for a worker copying the account to stop: its
 * heartbeat (every TTL/4) sees the cancel, and it stops at its next batch. */
#define REMOVE_WAIT_S 90

/* An account is removed only once no worker copies it: a run still appending
 * after its rows are gone would leave messages no checkpoint knows, and the
 * account added back would match them only if they landed before it looked.
 * So: cancel it, wait for its lease to be released, then delete. */
static int cmd_remove(struct store *st, int64_t mid, const char *which)
{
	struct store_job *jobs = NULL;
	size_t njobs = 0, changed = 0, unchanged = 0;
	const char *error;
	char owner[128] = "";
	int64_t id;

	if (store_account_find(st, mid, which, &id, &error) < 0 ||
	    store_accounts_control(st, mid, id, "cancel", &jobs, &njobs, &changed, &unchanged,
	                           &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	free(jobs);
	for (int i = 0; i <= REMOVE_WAIT_S * 2; i++) {
		if (store_account_lease_holder(st, id, owner, sizeof(owner), &error) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (owner[0] == '\0')
			break;
		if (i == 0)
			fprintf(stderr,
			        "account %s is being copied by worker %s: cancelled, waiting"
			        " for it to stop (at most %d s)\n",
			        which, owner, REMOVE_WAIT_S);
		usleep(500 * 1000);
	}
	if (owner[0] != '\0') {
		fprintf(stderr,
		        "account %s: worker %s still holds its lease after %d s; it is cancelled"
		        " but not removed: run remove again once it has stopped\n",
		        which, owner, REMOVE_WAIT_S);
		return 1;
	}
	if (store_account_remove(st, id, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	log_info("migration %" PRId64 ": account %" PRId64 " (%s) removed; what was copied"
	         " stays on the destination",
	         mid, id, which);
	return 0;
}

/* Every command naming a migration (and wait or passes naming a pass) fails
 * clearly when it does not exist, rather than reporting nothing with exit 0.
 * Arguments that are not ids are left to the command's own parsing. */
static int migration_args_exist(struct store *st, const char *cmd, int argc, char **argv)
{
	static const char *const with_migration[] = {
	    "pass", "start",  "delta", "passes", "add",    "passwd", "remove",
	    "wait", "verify", "pause", "resume", "cancel", "status", NULL};
	const char *error;
	char *end;
	long long mid, pass = 0;
	bool known = false;

	for (size_t i = 0; with_migration[i] != NULL; i++)
		known |= strcmp(cmd, with_migration[i]) == 0;
	if (!known || argc < 2)
		return 0;
	errno = 0;
	mid = strtoll(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || mid < 1)
		return 0;
	if ((strcmp(cmd, "wait") == 0 || strcmp(cmd, "passes") == 0) && argc >= 3) {
		errno = 0;
		pass = strtoll(argv[2], &end, 10);
		if (errno != 0 || *end != '\0' || pass < 1 || pass > 100000)
			pass = 0;
	}
	if (store_migration_exists(st, (int64_t)mid, (int)pass, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: mailshift-coordinator [options] COMMAND\n"
	    "commands:\n"
	    "  import PLAN.json          store a migration and its accounts; prints its id\n"
	    "  verify MIGRATION          check every account's source and destination login\n"
	    "                            (verified, auth_failed or verify_failed)\n"
	    "  start MIGRATION           pass 1 (the bulk copy) for every verified account\n"
	    "  delta MIGRATION [--final] [ACCOUNT...]\n"
	    "                            the next pass, for every account or those named;\n"
	    "                            --final marks the pass after the MX switch\n"
	    "  pass MIGRATION N [ACCOUNT...]  run pass N (1 = bulk, 2.. = delta)\n"
	    "  wait MIGRATION N [SECS]   wait until pass N ended for every account: synced,\n"
	    "                            refused, cancelled, or failed with no retry left\n"
	    "  passes MIGRATION [N]      each pass's kind, counts and timings; with N, per\n"
	    "                            account\n"
	    "  status MIGRATION [ACCOUNT]  per-account state, counts and last error\n"
	    "  add MIGRATION CSV         more accounts (same columns as the plan's CSV); they\n"
	    "                            are verified and join the current pass\n"
	    "  passwd MIGRATION ACCOUNT source|destination|both   new password from stdin\n"
	    "  remove MIGRATION ACCOUNT  forget an account (its copied mail stays)\n"
	    "  pause MIGRATION [ACCOUNT] stop starting work; running accounts checkpoint\n"
	    "  resume MIGRATION [ACCOUNT] continue paused accounts\n"
	    "  cancel MIGRATION [ACCOUNT] stop for good\n"
	    "  run                       the scheduler daemon: re-queues accounts whose lease\n"
	    "                            expired and publishes the jobs owed (one active\n"
	    "                            coordinator at a time, the others stand by)\n"
	    "  step                      one scheduler step, then exit\n"
	    "options:\n"
	    "  --db CONNINFO          PostgreSQL (env MAILSHIFT_DB)\n"
	    "  --brokers LIST         Kafka bootstrap servers (env MAILSHIFT_BROKERS)\n"
	    "  --brokers-file PATH    file holding the bootstrap list (env "
	    "MAILSHIFT_BROKERS_FILE)\n"
	    "  --key-file PATH        secret key file (env MAILSHIFT_KEY_FILE), mode 0600\n"
	    "environment:\n"
	    "  MAILSHIFT_DB_TIMEOUT=SECS            PostgreSQL connect timeout (default 10)\n"
	    "  MAILSHIFT_DB_STATEMENT_TIMEOUT=SECS  PostgreSQL statement timeout (default 60;\n"
	    "                                       the client gives up 10 s later)\n"
	    "  MAILSHIFT_KEY_FILE_PERMISSIVE=1      only warn about a key file others can read\n");
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
	/* "+": options end at the command (its own, like delta's --final, follow). */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
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
			free(o.brokers);
			return c == 'h' ? 0 : 2;
		}
	}
	log_init("coordinator");
	/* Keys and passwords pass through this process: no core file. */
	if (secret_process_protect(err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		ret = 1;
		goto out;
	}
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
	if (migration_args_exist(st, cmd, argc - optind, argv + optind) < 0) {
		ret = 1;
		goto out;
	}
	if (strcmp(cmd, "import") == 0 && argc - optind == 2) {
		ret = cmd_import(st, &o, argv[optind + 1]);
	} else if (strcmp(cmd, "pass") == 0 && argc - optind >= 3) {
		int64_t pass, *ids = NULL;
		int n = argc - optind - 3;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0 ||
		    parse_id(argv[optind + 2], "pass", &pass) < 0 || pass > 100000 ||
		    (n > 0 && resolve_accounts(st, mid, argv + optind + 3, n, &ids) < 0))
			goto out;
		ret =
		    cmd_pass(st, &o, mid, (int)pass, pass == 1 ? "bulk" : "delta", ids, (size_t)n);
		free(ids);
	} else if (strcmp(cmd, "start") == 0 && argc - optind == 2) {
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		ret = cmd_pass(st, &o, mid, 1, "bulk", NULL, 0);
	} else if (strcmp(cmd, "delta") == 0 && argc - optind >= 2) {
		int64_t *ids = NULL;
		int first = optind + 2, last = 0;
		bool final = first < argc && strcmp(argv[first], "--final") == 0;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		if (final)
			first++;
		if ((argc > first &&
		     resolve_accounts(st, mid, argv + first, argc - first, &ids) < 0) ||
		    store_pass_last(st, mid, &last, &error) < 0) {
			if (ids == NULL && argc > first)
				goto out;
			fprintf(stderr, "%s\n", error);
			free(ids);
			ret = 1;
			goto out;
		}
		if (last == 0) {
			fprintf(stderr, "migration %" PRId64 ": no pass yet: run start first\n",
			        mid);
			free(ids);
			ret = 1;
			goto out;
		}
		ret = cmd_pass(st, &o, mid, last + 1, final ? "final" : "delta", ids,
		               (size_t)(argc - first));
		free(ids);
	} else if (strcmp(cmd, "passes") == 0 && (argc - optind == 2 || argc - optind == 3)) {
		int64_t pass = 0;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0 ||
		    (argc - optind == 3 && parse_id(argv[optind + 2], "pass", &pass) < 0))
			goto out;
		ret = report_passes(st, mid, (int)pass);
	} else if (strcmp(cmd, "add") == 0 && argc - optind == 3) {
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		ret = cmd_add(st, &o, mid, argv[optind + 2]);
	} else if (strcmp(cmd, "passwd") == 0 && argc - optind == 4) {
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		ret = cmd_passwd(st, &o, mid, argv[optind + 2], argv[optind + 3]);
	} else if (strcmp(cmd, "remove") == 0 && argc - optind == 3) {
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		ret = cmd_remove(st, mid, argv[optind + 2]);
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
		if (account_key_open(st, o.key_file, false, &key, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			ret = 1;
			goto out;
		}
		/* Logins at once: within Dovecot's default per-user-and-IP limit. */
		ret = verifier_run(o.db, key, mid, NULL, 0, 8) == 0 ? 0 : 1;
		secret_key_destroy(&key);
	} else if (strcmp(cmd, "step") == 0 && argc - optind == 1) {
		struct scheduler_config sc = {
		    .db_conninfo = o.db, .brokers = o.brokers, .republish_s = REPUBLISH_S};
		if (o.brokers == NULL) {
			fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
			goto out;
		}
		store_close(&st);
		ret = scheduler_once(&sc) < 0 ? 1 : 0;
	} else if (strcmp(cmd, "run") == 0 && argc - optind == 1) {
		struct scheduler_config sc = {
		    .db_conninfo = o.db,
		    .brokers = o.brokers,
		    .interval_ms = 500,
		    .republish_s = REPUBLISH_S,
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
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		if (argc - optind == 3 && account_arg(st, mid, argv[optind + 2], &account_id) < 0) {
			ret = 1;
			goto out;
		}
		ret = cmd_control(st, &o, cmd, mid, account_id);
	} else if (strcmp(cmd, "status") == 0 && (argc - optind == 2 || argc - optind == 3)) {
		int64_t account_id = 0;
		if (parse_id(argv[optind + 1], "migration", &mid) < 0)
			goto out;
		if (argc - optind == 3 && account_arg(st, mid, argv[optind + 2], &account_id) < 0) {
			ret = 1;
			goto out;
		}
		ret = report_status(st, mid, account_id);
	} else {
		usage();
	}
out:
	store_close(&st);
	free(o.brokers);
	return ret;
}
