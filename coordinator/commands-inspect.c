/* The inspection commands: estimate, proof, empty-destination.  The work is
 * in inspect.h (shared with the HTTP API); here only arguments and the text
 * an operator reads (or the API's JSON with --json). */
#include "commands-private.h"

#include "inspect.h"
#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Options after the migration: --json, --out DIR, --confirm LOGIN; the rest
 * are account names, moved to the front of names. */
struct inspect_args {
	bool json;
	const char *out, *confirm;
	char **names;
	int n;
};

static int args_parse(int argc, char **argv, struct inspect_args *a)
{
	memset(a, 0, sizeof(*a));
	a->names = calloc((size_t)argc + 1, sizeof(*a->names));
	if (a->names == NULL)
		return -1;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = true;
		} else if (strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "--confirm") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "mailshift-coordinator: %s needs a value\n",
				        argv[i]);
				return -1;
			}
			if (argv[i][2] == 'o')
				a->out = argv[++i];
			else
				a->confirm = argv[++i];
		} else if (strncmp(argv[i], "--", 2) == 0) {
			fprintf(stderr, "mailshift-coordinator: unknown option %s\n", argv[i]);
			return -1;
		} else {
			a->names[a->n++] = argv[i];
		}
	}
	return 0;
}

static void print_json(const json_t *j)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (text != NULL)
		printf("%s\n", text);
	free(text);
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "";
}

static long long jnum(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* Setup shared by the three: migration, accounts, key.  0, or the exit code. */
static int inspect_setup(struct command_ctx *c, int argc, char **argv, struct inspect_args *a,
                         int64_t *mid_r, int64_t **ids_r, struct secret_key **key_r)
{
	char err[512];

	*ids_r = NULL;
	*key_r = NULL;
	if (command_parse_id(argv[1], "migration", mid_r) < 0 || args_parse(argc, argv, a) < 0)
		return 2;
	if (a->n > 0 && command_resolve_accounts(c->st, *mid_r, a->names, a->n, ids_r) < 0)
		return 1;
	if (account_key_open(c->st, c->o->key_file, false, key_r, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	return 0;
}

/* What inspect_setup and the command left to free. */
static void inspect_teardown(struct inspect_args *a, int64_t *ids, struct secret_key **key,
                             json_t *r)
{
	json_decref(r);
	free(ids);
	free(a->names);
	secret_key_destroy(key);
}

static void human_bytes(long long b, char *out, size_t outlen)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, outlen, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

/* estimate MIGRATION [ACCOUNT...] [--json] */
int cmd_estimate(struct command_ctx *c, int argc, char **argv)
{
	struct inspect_args a;
	struct secret_key *key = NULL;
	int64_t mid, *ids = NULL;
	char err[1024] = "";
	json_t *r = NULL;
	int ret = inspect_setup(c, argc, argv, &a, &mid, &ids, &key);

	if (ret != 0)
		goto out;
	r = inspect_estimate(c->st, key, mid, ids, (size_t)a.n, err, sizeof(err), NULL);
	if (r == NULL) {
		fprintf(stderr, "%s\n", err);
		ret = 1;
		goto out;
	}
	if (a.json) {
		print_json(r);
	} else {
		const json_t *acc, *f;
		size_t i, k;
		char b[32];
		json_array_foreach(json_object_get(r, "accounts"), i, acc)
		{
			human_bytes(jnum(acc, "bytes"), b, sizeof(b));
			printf("%s: %lld messages, %s\n", jstr(acc, "account"),
			       jnum(acc, "messages"), b);
			if (jstr(acc, "error")[0] != '\0')
				printf("  error: %s\n", jstr(acc, "error"));
			json_array_foreach(json_object_get(acc, "folders"), k, f)
			{
				human_bytes(jnum(f, "bytes"), b, sizeof(b));
				printf("  %-30s %8lld %10s%s%s%s\n", jstr(f, "name"),
				       jnum(f, "messages"), b,
				       json_is_true(json_object_get(f, "excluded")) ? "  (excluded)"
				                                                    : "",
				       jstr(f, "error")[0] != '\0' ? "  error: " : "",
				       jstr(f, "error"));
			}
		}
		human_bytes(jnum(r, "bytes"), b, sizeof(b));
		printf("total: %lld messages, %s", jnum(r, "messages"), b);
		if (json_is_integer(json_object_get(r, "eta_seconds"))) {
			long long eta = jnum(r, "eta_seconds");
			printf("; about %lldh%02lldm at the %s rate", eta / 3600, eta % 3600 / 60,
			       jstr(r, "rate_source"));
		} else {
			printf("; no rate measured or budgeted yet: no ETA");
		}
		printf("\n");
	}
	for (size_t i = 0; i < json_array_size(json_object_get(r, "accounts")); i++)
		if (jstr(json_array_get(json_object_get(r, "accounts"), i), "error")[0] != '\0')
			ret = 1;
out:
	inspect_teardown(&a, ids, &key, r);
	return ret;
}

/* proof MIGRATION [ACCOUNT...] [--out DIR] [--json]: exit 0 only when exact. */
int cmd_proof(struct command_ctx *c, int argc, char **argv)
{
	struct inspect_args a;
	struct secret_key *key = NULL;
	int64_t mid, *ids = NULL;
	char err[1024] = "";
	json_t *r = NULL;
	int ret = inspect_setup(c, argc, argv, &a, &mid, &ids, &key);

	if (ret != 0)
		goto out;
	r = inspect_proof(c->st, key, mid, ids, (size_t)a.n, "operator", a.out, err, sizeof(err),
	                  NULL);
	if (r == NULL) {
		fprintf(stderr, "%s\n", err);
		ret = 1;
		goto out;
	}
	if (a.json) {
		print_json(r);
	} else {
		const json_t *acc, *d;
		size_t i, k;
		json_array_foreach(json_object_get(r, "accounts"), i, acc)
		{
			printf("%s: %s (%lld missing, %lld extra, %lld changed)\n",
			       jstr(acc, "account"),
			       json_is_true(json_object_get(acc, "exact")) ? "exact" : "NOT EXACT",
			       jnum(acc, "missing"), jnum(acc, "extra"), jnum(acc, "changed"));
			if (jstr(acc, "error")[0] != '\0')
				printf("  error: %s\n", jstr(acc, "error"));
			json_array_foreach(json_object_get(acc, "differences"), k, d)
			{
				printf("  %-22s %s src uid %lld dst uid %lld: %s\n",
				       jstr(d, "kind"), jstr(d, "folder"), jnum(d, "source_uid"),
				       jnum(d, "destination_uid"), jstr(d, "detail"));
			}
		}
		printf("migration %" PRId64 ": %s\n", mid,
		       json_is_true(json_object_get(r, "exact")) ? "complete, exact" : "NOT EXACT");
		if (a.out != NULL)
			printf("report: %s/proof-migration-%" PRId64 ".md (differences: .csv)\n",
			       a.out, mid);
	}
	ret = json_is_true(json_object_get(r, "exact")) ? 0 : 1;
out:
	inspect_teardown(&a, ids, &key, r);
	return ret;
}

/* empty-destination MIGRATION ACCOUNT --confirm LOGIN [--json] */
int cmd_empty_destination(struct command_ctx *c, int argc, char **argv)
{
	struct inspect_args a;
	struct secret_key *key = NULL;
	int64_t mid, *ids = NULL;
	char err[1024] = "";
	enum inspect_code code;
	json_t *r = NULL;
	int ret = inspect_setup(c, argc, argv, &a, &mid, &ids, &key);

	if (ret != 0)
		goto out;
	if (a.n != 1) {
		fprintf(stderr, "mailshift-coordinator: empty-destination takes one account\n");
		ret = 2;
		goto out;
	}
	r = inspect_empty_destination(c->st, key, mid, ids[0], a.confirm, "cli", err, sizeof(err),
	                              &code);
	if (r == NULL) {
		fprintf(stderr, "%s\n", err);
		ret = code == INSPECT_CONFIRMATION ? 2 : 1;
		goto out;
	}
	if (a.json)
		print_json(r);
	else
		printf("%s: %lld messages deleted from %s; the next pass copies everything again\n",
		       jstr(r, "account"), jnum(r, "deleted"), jstr(r, "destination_login"));
out:
	inspect_teardown(&a, ids, &key, r);
	return ret;
}

/* --- proofs at the end of final passes, beside the scheduler ------------- */

/* Seconds between two looks for final passes ended. */
#define FINAL_PROOF_INTERVAL_S 5

struct final_proofs {
	const struct command_options *o;
	volatile sig_atomic_t *stop;
	pthread_t thread;
	bool started;
};

static void *final_proofs_thread(void *arg)
{
	struct final_proofs *fp = arg;
	struct store *st = NULL;
	struct secret_key *key = NULL;
	char err[STORE_ERRLEN] = "";

	if (store_open(fp->o->db, &st, err, sizeof(err)) < 0 ||
	    account_key_open(st, fp->o->key_file, false, &key, err, sizeof(err)) < 0) {
		log_warn("final passes will not be proven (%s); run `proof` by hand", err);
		store_close(&st);
		return NULL;
	}
	while (!*fp->stop) {
		if (inspect_final_proofs(st, key, fp->stop, err, sizeof(err)) < 0) {
			log_warn("final proofs: %s", err);
			/* A lost connection is opened again at the next look. */
			store_close(&st);
			if (store_open(fp->o->db, &st, err, sizeof(err)) < 0)
				log_warn("final proofs: %s", err);
		}
		for (int i = 0; i < FINAL_PROOF_INTERVAL_S * 10 && !*fp->stop; i++)
			usleep(100 * 1000);
		if (st == NULL)
			break;
	}
	secret_key_destroy(&key);
	store_close(&st);
	return NULL;
}

struct final_proofs *command_final_proofs_start(const struct command_options *o,
                                                volatile sig_atomic_t *stop)
{
	struct final_proofs *fp = calloc(1, sizeof(*fp));

	if (fp == NULL)
		return NULL;
	fp->o = o;
	fp->stop = stop;
	fp->started = pthread_create(&fp->thread, NULL, final_proofs_thread, fp) == 0;
	return fp;
}

void command_final_proofs_stop(struct final_proofs **fp)
{
	if (*fp == NULL)
		return;
	if ((*fp)->started)
		pthread_join((*fp)->thread, NULL);
	free(*fp);
	*fp = NULL;
}
