/* The coordinator's commands: one handler per command and the table that
 * names them, their arguments and their usage (see commands.h). */
#include "commands.h"

#include "account.h"
#include "log.h"
#include "plan.h"
#include "queue.h"
#include "report.h"
#include "scheduler.h"
#include "secret.h"
#include "store-account.h"
#include "store-pass.h"
#include "store-schedule.h"
#include "verifier.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
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
static int cmd_import(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	const char *path = argv[1];
	struct store_new_account *rows = NULL;
	struct secret_key *key = NULL;
	struct plan *plan = NULL;
	char error[STORE_ERRLEN] = "";
	char err[8192];
	int64_t mid;
	int ret = 1;

	(void)argc;
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
	                           plan->naccounts, &mid, error, sizeof(error)) < 0) {
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
static int publish_due(struct store *st, const struct command_options *o, int64_t mid,
                       size_t *published_r)
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
	char error[STORE_ERRLEN] = "";

	if (store_account_find(st, mid, which, id_r, error, sizeof(error)) < 0) {
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

/* Queues pass N of a migration (all accounts, or those named) and publishes
 * the jobs the connection budgets allow now. */
static int pass_queue(struct command_ctx *c, int64_t mid, int pass, const char *kind,
                      const int64_t *ids, size_t nids)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	size_t queued = 0, published = 0;
	char error[STORE_ERRLEN] = "";
	int ret;

	if (o->brokers == NULL) {
		fprintf(stderr, "no Kafka brokers: give --brokers or --brokers-file\n");
		return 1;
	}
	if (store_pass_start(st, mid, pass, kind, ids, nids, &queued, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (queued == 0) {
		char states[512];
		int64_t fresh = 0, verified = 0;

		if (store_migration_states(st, mid, states, sizeof(states), &fresh, &verified,
		                           error, sizeof(error)) < 0) {
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

/* pass MIGRATION N [ACCOUNT...] */
static int cmd_pass(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, pass, *ids = NULL;
	int n = argc - 3, ret;

	if (parse_id(argv[1], "migration", &mid) < 0 || parse_id(argv[2], "pass", &pass) < 0 ||
	    pass > 100000 || (n > 0 && resolve_accounts(c->st, mid, argv + 3, n, &ids) < 0))
		return 2;
	ret = pass_queue(c, mid, (int)pass, pass == 1 ? "bulk" : "delta", ids, (size_t)n);
	free(ids);
	return ret;
}

/* start MIGRATION: pass 1, the bulk copy. */
static int cmd_start(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid;

	(void)argc;
	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	return pass_queue(c, mid, 1, "bulk", NULL, 0);
}

/* delta MIGRATION [--final] [ACCOUNT...]: the pass after the last one. */
static int cmd_delta(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, *ids = NULL;
	int first = 2, last = 0, ret;
	bool final = first < argc && strcmp(argv[first], "--final") == 0;
	char error[STORE_ERRLEN] = "";

	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (final)
		first++;
	if (argc > first && resolve_accounts(c->st, mid, argv + first, argc - first, &ids) < 0)
		return 2;
	if (store_pass_last(c->st, mid, &last, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		free(ids);
		return 1;
	}
	if (last == 0) {
		fprintf(stderr, "migration %" PRId64 ": no pass yet: run start first\n", mid);
		free(ids);
		return 1;
	}
	ret = pass_queue(c, mid, last + 1, final ? "final" : "delta", ids, (size_t)(argc - first));
	free(ids);
	return ret;
}

/* passes MIGRATION [N] */
static int cmd_passes(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, pass = 0;

	if (parse_id(argv[1], "migration", &mid) < 0 ||
	    (argc == 3 && parse_id(argv[2], "pass", &pass) < 0))
		return 2;
	return report_passes(c->st, mid, (int)pass);
}

/* wait MIGRATION N [SECS] */
static int cmd_wait(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, pass, secs = 3600;

	if (parse_id(argv[1], "migration", &mid) < 0 || parse_id(argv[2], "pass", &pass) < 0 ||
	    (argc == 4 && parse_id(argv[3], "seconds", &secs) < 0))
		return 2;
	return report_wait(c->st, mid, (int)pass, (int)secs);
}

/* status MIGRATION [ACCOUNT] */
static int cmd_status(struct command_ctx *c, int argc, char **argv)
{
	int64_t mid, account_id = 0;

	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (argc == 3 && account_arg(c->st, mid, argv[2], &account_id) < 0)
		return 1;
	return report_status(c->st, mid, account_id);
}

/* pause|resume|cancel MIGRATION [ACCOUNT]: argv[0] is the action. */
static int cmd_control(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const char *action = argv[0];
	struct store_job *jobs = NULL;
	size_t count = 0, changed = 0, unchanged = 0;
	char error[STORE_ERRLEN] = "";
	int64_t mid, account_id = 0;
	int ret = 0;

	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (argc == 3 && account_arg(st, mid, argv[2], &account_id) < 0)
		return 1;
	if (store_accounts_control(st, mid, account_id, action, &jobs, &count, &changed, &unchanged,
	                           error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	free(jobs);
	if (count > 0 && c->o->brokers != NULL)
		ret = publish_due(st, c->o, mid, NULL);
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
static int verify_and_join(struct store *st, const struct command_options *o, int64_t mid,
                           const int64_t *ids, size_t n)
{
	struct secret_key *key = NULL;
	char error[STORE_ERRLEN] = "";
	char err[512];
	size_t queued = 0;
	int last = 0, ret;

	if (account_key_open(st, o->key_file, false, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	ret = verifier_run(o->db, key, mid, ids, n, 8) != 0 ? 1 : 0;
	secret_key_destroy(&key);
	if (store_pass_last(st, mid, &last, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (last > 0) {
		if (store_pass_start(st, mid, last, last == 1 ? "bulk" : "delta", ids, n, &queued,
		                     error, sizeof(error)) < 0) {
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
static int cmd_add(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	const char *csv = argv[2];
	struct store_new_account *rows = NULL;
	struct secret_key *key = NULL;
	struct plan *plan = NULL;
	int64_t mid, *ids = NULL;
	char error[STORE_ERRLEN] = "";
	char err[8192];
	int ret = 1;

	(void)argc;
	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	plan = calloc(1, sizeof(*plan));
	if (plan == NULL)
		return 1;
	/* The CSV names source profiles: the migration's. */
	if (store_migration_sources(st, mid, &plan->srcs, &plan->nsrcs, error, sizeof(error)) < 0) {
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
	if (store_accounts_add(st, mid, rows, plan->naccounts, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s: %s (nothing added)\n", csv, error);
		goto out;
	}
	for (size_t i = 0; i < plan->naccounts; i++) {
		if (store_account_find(st, mid, plan->accounts[i].src_login, &ids[i], error,
		                       sizeof(error)) < 0) {
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
static int cmd_passwd(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const struct command_options *o = c->o;
	const char *which = argv[2], *side = argv[3];
	struct store_account acct;
	struct secret_key *key = NULL;
	unsigned char *secret = NULL;
	size_t secret_len = 0;
	int64_t mid, id;
	char error[STORE_ERRLEN] = "";
	char pw[4096], err[512];
	size_t len;
	int ret = 1;

	(void)argc;
	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (strcmp(side, "source") != 0 && strcmp(side, "destination") != 0 &&
	    strcmp(side, "both") != 0) {
		fprintf(stderr, "passwd: the side is source, destination or both, not %s\n", side);
		return 2;
	}
	if (store_account_find(st, mid, which, &id, error, sizeof(error)) < 0 ||
	    store_account_get(st, id, &acct, error, sizeof(error)) < 0) {
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
		if (store_account_secret(st, id, s, secret, secret_len, error, sizeof(error)) < 0) {
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
static int cmd_remove(struct command_ctx *c, int argc, char **argv)
{
	struct store *st = c->st;
	const char *which = argv[2];
	struct store_job *jobs = NULL;
	size_t njobs = 0, changed = 0, unchanged = 0;
	char error[STORE_ERRLEN] = "";
	char owner[128] = "";
	int64_t mid, id;

	(void)argc;
	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (store_account_find(st, mid, which, &id, error, sizeof(error)) < 0 ||
	    store_accounts_control(st, mid, id, "cancel", &jobs, &njobs, &changed, &unchanged,
	                           error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	free(jobs);
	for (int i = 0; i <= REMOVE_WAIT_S * 2; i++) {
		if (store_account_lease_holder(st, id, owner, sizeof(owner), error, sizeof(error)) <
		    0) {
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
	if (store_account_remove(st, id, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	log_info("migration %" PRId64 ": account %" PRId64 " (%s) removed; what was copied"
	         " stays on the destination",
	         mid, id, which);
	return 0;
}

/* verify MIGRATION */
static int cmd_verify(struct command_ctx *c, int argc, char **argv)
{
	struct secret_key *key = NULL;
	char err[512];
	int64_t mid;
	int ret;

	(void)argc;
	if (parse_id(argv[1], "migration", &mid) < 0)
		return 2;
	if (account_key_open(c->st, c->o->key_file, false, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Logins at once: within Dovecot's default per-user-and-IP limit. */
	ret = verifier_run(c->o->db, key, mid, NULL, 0, 8) == 0 ? 0 : 1;
	secret_key_destroy(&key);
	return ret;
}

/* step: one scheduler step. */
static int cmd_step(struct command_ctx *c, int argc, char **argv)
{
	struct scheduler_config sc = {
	    .db_conninfo = c->o->db, .brokers = c->o->brokers, .republish_s = REPUBLISH_S};

	(void)argc;
	(void)argv;
	return scheduler_once(&sc) < 0 ? 1 : 0;
}

/* run: the scheduler daemon, until SIGTERM or SIGINT. */
static int cmd_run(struct command_ctx *c, int argc, char **argv)
{
	struct scheduler_config sc = {
	    .db_conninfo = c->o->db,
	    .brokers = c->o->brokers,
	    .interval_ms = 500,
	    .republish_s = REPUBLISH_S,
	    .stop = &stop_requested,
	};

	(void)argc;
	(void)argv;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	return scheduler_run(&sc) < 0 ? 1 : 0;
}

static const struct command commands[] = {
    {"import", "PLAN.json", 1, 1, 0, cmd_import,
     "store a migration and its accounts; prints its id"},
    {"verify", "MIGRATION", 1, 1, COMMAND_MIGRATION, cmd_verify,
     "check every account's source and destination login\n"
     "(verified, auth_failed or verify_failed)"},
    {"start", "MIGRATION", 1, 1, COMMAND_MIGRATION, cmd_start,
     "pass 1 (the bulk copy) for every verified account"},
    {"delta", "MIGRATION [--final] [ACCOUNT...]", 1, -1, COMMAND_MIGRATION, cmd_delta,
     "the next pass, for every account or those named;\n"
     "--final marks the pass after the MX switch"},
    {"pass", "MIGRATION N [ACCOUNT...]", 2, -1, COMMAND_MIGRATION, cmd_pass,
     "run pass N (1 = bulk, 2.. = delta)"},
    {"wait", "MIGRATION N [SECS]", 2, 3, COMMAND_MIGRATION | COMMAND_PASS, cmd_wait,
     "wait until pass N ended for every account: synced,\n"
     "refused, cancelled, or failed with no retry left"},
    {"passes", "MIGRATION [N]", 1, 2, COMMAND_MIGRATION | COMMAND_PASS, cmd_passes,
     "each pass's kind, counts and timings; with N, per\n"
     "account"},
    {"status", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_status,
     "per-account state, counts and last error"},
    {"add", "MIGRATION CSV", 2, 2, COMMAND_MIGRATION, cmd_add,
     "more accounts (same columns as the plan's CSV); they\n"
     "are verified and join the current pass"},
    {"passwd", "MIGRATION ACCOUNT source|destination|both", 3, 3, COMMAND_MIGRATION, cmd_passwd,
     "new password from stdin"},
    {"remove", "MIGRATION ACCOUNT", 2, 2, COMMAND_MIGRATION, cmd_remove,
     "forget an account (its copied mail stays)"},
    {"pause", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_control,
     "stop starting work; running accounts checkpoint"},
    {"resume", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_control,
     "continue paused accounts"},
    {"cancel", "MIGRATION [ACCOUNT]", 1, 2, COMMAND_MIGRATION, cmd_control, "stop for good"},
    {"run", "", 0, 0, COMMAND_BROKERS | COMMAND_OWN_DB, cmd_run,
     "the scheduler daemon: re-queues accounts whose lease\n"
     "expired and publishes the jobs owed (one active\n"
     "coordinator at a time, the others stand by)"},
    {"step", "", 0, 0, COMMAND_BROKERS | COMMAND_OWN_DB, cmd_step, "one scheduler step, then exit"},
};

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Every command naming a migration (and wait or passes naming a pass) fails
 * clearly when it does not exist, rather than reporting nothing with exit 0.
 * Arguments that are not ids are left to the command's own parsing; so is a
 * wrong argument count, checked after this. */
int command_migration_args_exist(struct store *st, const struct command *cmd, int argc, char **argv)
{
	char error[STORE_ERRLEN] = "";
	char *end;
	long long mid, pass = 0;

	if ((cmd->flags & COMMAND_MIGRATION) == 0 || argc < 2)
		return 0;
	errno = 0;
	mid = strtoll(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || mid < 1)
		return 0;
	if ((cmd->flags & COMMAND_PASS) != 0 && argc >= 3) {
		errno = 0;
		pass = strtoll(argv[2], &end, 10);
		if (errno != 0 || *end != '\0' || pass < 1 || pass > 100000)
			pass = 0;
	}
	if (store_migration_exists(st, (int64_t)mid, (int)pass, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	return 0;
}

/* Column at which a command's description starts. */
#define USAGE_COLUMN 28

void command_usage_print(FILE *f)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cmd = &commands[i];
		const char *line = cmd->help, *nl;
		char head[128];
		int indent = USAGE_COLUMN;

		snprintf(head, sizeof(head), "%s%s%s", cmd->name, cmd->args[0] != '\0' ? " " : "",
		         cmd->args);
		/* A description starts beside the command if a space is left. */
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
