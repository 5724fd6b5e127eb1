/* status MIGRATION [ACCOUNT] [--watch [SECS]]: the migration's progress and
 * its accounts; with --watch, live bars per migration and per running
 * account (messages and bytes, rate, ETA from bytes), redrawn in place on a
 * terminal and printed as plain lines otherwise, until nothing is queued,
 * running or waiting (or Ctrl-C). */
#include "commands.h"
#include "format.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define MAX_TRACKED 512
#define MAX_ACCOUNT_BARS 12
/* Weight of the newest sample in the smoothed rates. */
#define RATE_ALPHA 0.5

static volatile sig_atomic_t watch_stop;

static void on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Rates measured between frames, per migration (id 0) and account. */
struct tracked {
	long long id;
	long long messages, bytes;
	double at, msg_rate, byte_rate;
	int seen;
};

struct watch {
	struct tracked t[MAX_TRACKED];
	size_t n;
	int tty, lines;   /* lines drawn by the last frame (tty redraw) */
	json_t *estimate; /* the API's estimate (source counts), or NULL */
};

/* The source's totals of an account (estimate's entry by id or login), or
 * of the migration when a is NULL: -1 when not known. */
static void source_totals(const struct watch *w, const json_t *a, long long *mt, long long *bt)
{
	const json_t *e;
	size_t i;

	*mt = *bt = -1;
	if (w->estimate == NULL)
		return;
	if (a == NULL) {
		*mt = fmt_int(w->estimate, "messages", -1);
		*bt = fmt_int(w->estimate, "bytes", -1);
		return;
	}
	json_array_foreach(json_object_get(w->estimate, "accounts"), i, e)
	{
		const json_t *id = json_object_get(e, "account");

		if ((json_is_integer(id) && json_integer_value(id) == fmt_int(a, "id", -2)) ||
		    (json_is_string(id) &&
		     strcmp(json_string_value(id), fmt_str(a, "source_login", "")) == 0) ||
		    fmt_int(e, "account_id", -2) == fmt_int(a, "id", -3)) {
			*mt = fmt_int(e, "messages", -1);
			*bt = fmt_int(e, "bytes", -1);
			return;
		}
	}
}

/* A total the bars can use: what the API knows once it is exact (every
 * folder synced; pass -1 while it is only a lower bound), else the source's
 * count from the estimate, and none at all when below what is done. */
static long long usable_total(long long source, long long known, long long done)
{
	long long t = known >= 0 ? known : source;

	return t >= done && t > 0 ? t : -1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Updates the rates of id with its current counts; returns its entry. */
static struct tracked *track(struct watch *w, long long id, long long messages, long long bytes)
{
	struct tracked *t = NULL;
	double now = now_s();

	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].id == id)
			t = &w->t[i];
	if (t == NULL) {
		if (w->n == MAX_TRACKED)
			w->n = 0; /* forget all: rates restart, nothing breaks */
		t = &w->t[w->n++];
		memset(t, 0, sizeof(*t));
		t->id = id;
	}
	if (t->seen && now > t->at) {
		double dt = now - t->at;
		double mr = (double)(messages - t->messages) / dt;
		double br = (double)(bytes - t->bytes) / dt;

		if (mr < 0 || br < 0) /* a new pass restarted the counts */
			mr = br = 0;
		t->msg_rate = t->seen > 1 ? RATE_ALPHA * mr + (1 - RATE_ALPHA) * t->msg_rate : mr;
		t->byte_rate = t->seen > 1 ? RATE_ALPHA * br + (1 - RATE_ALPHA) * t->byte_rate : br;
	}
	t->messages = messages;
	t->bytes = bytes;
	t->at = now;
	t->seen++;
	return t;
}

/* One frame line: on a terminal it clears what the last frame left there. */
static void line(struct watch *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct watch *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(w->tty ? "\033[K\n" : "\n");
	w->lines++;
}

static int pct(long long done, long long total)
{
	if (total <= 0)
		return 0;
	return done >= total ? 100 : (int)(done * 100 / total);
}

/* The bars of one unit of work: messages and bytes, rate and ETA. */
static void draw_bars(struct watch *w, const char *indent, long long md, long long mt, long long bd,
                      long long bt, const struct tracked *t)
{
	char bar[BAR_WIDTH + 3], b1[32], b2[32], b3[32], eta[32];
	long long left = bt - bd;

	if (mt > 0)
		line(w, "%smessages %s %3d%%  %lld/%lld  %.1f/s", indent,
		     fmt_bar(md, mt, BAR_WIDTH, bar, sizeof(bar)), pct(md, mt), md, mt,
		     t->msg_rate);
	else
		line(w, "%smessages %lld  %.1f/s", indent, md, t->msg_rate);
	if (bt > 0)
		line(w, "%sbytes    %s %3d%%  %s/%s  %s/s  ETA %s", indent,
		     fmt_bar(bd, bt, BAR_WIDTH, bar, sizeof(bar)), pct(bd, bt),
		     fmt_bytes(bd, b1, sizeof(b1)), fmt_bytes(bt, b2, sizeof(b2)),
		     fmt_bytes((long long)t->byte_rate, b3, sizeof(b3)),
		     left <= 0 ? "0:00"
		     : t->byte_rate >= 1
		         ? fmt_duration((long long)((double)left / t->byte_rate), eta, sizeof(eta))
		         : "-");
	else
		line(w, "%sbytes    %s  %s/s", indent, fmt_bytes(bd, b1, sizeof(b1)),
		     fmt_bytes((long long)t->byte_rate, b3, sizeof(b3)));
}

/* One account's progress: its counts, or the live ones of its run when
 * larger; totals from the source counts when the API gives them. */
static void draw_account(struct watch *w, const json_t *a)
{
	const json_t *p = json_object_get(a, "progress");
	/* Done: copied and matched (found already at the destination). */
	long long md = fmt_int(a, "messages", 0) + fmt_int(a, "matched", 0);
	long long bd = fmt_int(a, "bytes", 0), mt, bt;
	struct tracked *t;

	if (fmt_int(p, "messages", 0) > md)
		md = fmt_int(p, "messages", 0);
	if (fmt_int(p, "bytes", 0) > bd)
		bd = fmt_int(p, "bytes", 0);
	source_totals(w, a, &mt, &bt);
	mt = usable_total(mt, -1, md);
	bt = usable_total(bt, -1, bd);
	t = track(w, fmt_int(a, "id", 0), md, bd);
	line(w, "  %s %s  %s%s%s", fmt_str(a, "state", "-"), fmt_str(a, "source_login", "-"),
	     fmt_str(p, "folder", ""), fmt_str(p, "worker", NULL) != NULL ? "  worker " : "",
	     fmt_str(p, "worker", ""));
	draw_bars(w, "    ", md, mt, bd, bt, t);
}

static int is_active(const char *state)
{
	return strcmp(state, "queued") == 0 || strcmp(state, "running") == 0 ||
	       strcmp(state, "waiting") == 0;
}

/* One frame; *active_r: accounts queued, running or waiting. */
static int frame(struct cli *c, struct watch *w, long long m, int *active_r)
{
	char err[API_ERRLEN], states[512], stamp[32], *path;
	json_t *mig = NULL, *accounts = NULL, *a;
	const json_t *st;
	struct tracked *t;
	time_t now = time(NULL);
	long long md, bd, mt, bt;
	size_t i, shown = 0;
	int ret;

	path = cli_path(m, NULL, "");
	ret = path != NULL ? api_get(c->api, path, &mig, err, sizeof(err)) : EXIT_UNREACHABLE;
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "status", err);
	path = cli_path(m, NULL, "/accounts?state=running");
	ret = path != NULL ? api_get_all(c->api, path, 1000, &accounts, err, sizeof(err))
	                   : EXIT_UNREACHABLE;
	free(path);
	if (ret != EXIT_OK) {
		json_decref(mig);
		return cli_fail(ret, "status", err);
	}
	st = json_object_get(mig, "states");
	*active_r =
	    fmt_int(st, "queued", 0) + fmt_int(st, "running", 0) + fmt_int(st, "waiting", 0) > 0;
	if (w->tty && w->lines > 0)
		printf("\033[%dA\r", w->lines);
	w->lines = 0;
	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	line(w, "%s migration %lld %s, pass %lld: %s", stamp, m, fmt_str(mig, "name", ""),
	     fmt_int(mig, "current_pass", 0), fmt_states(st, states, sizeof(states)));
	md = fmt_int(mig, "messages_done", 0);
	bd = fmt_int(mig, "bytes_done", 0);
	source_totals(w, NULL, &mt, &bt);
	/* What the API knows is a total only once nothing runs (a folder's count
	 * arrives when it is synced): mid-pass it would read 100 % between folders. */
	mt = usable_total(mt, *active_r ? -1 : fmt_int(mig, "messages_total", -1), md);
	bt = usable_total(bt, *active_r ? -1 : fmt_int(mig, "bytes_total", -1), bd);
	t = track(w, 0, md, bd);
	draw_bars(w, "  ", md, mt, bd, bt, t);
	json_array_foreach(accounts, i, a)
	{
		if (!is_active(fmt_str(a, "state", "")))
			continue;
		/* A fleet runs hundreds at once: the first few drawn, the rest counted. */
		if (shown++ == MAX_ACCOUNT_BARS) {
			line(w, "  ... and %zu more running", json_array_size(accounts) - i);
			break;
		}
		draw_account(w, a);
	}
	if (w->tty)
		printf("\033[J");
	fflush(stdout);
	json_decref(mig);
	json_decref(accounts);
	return EXIT_OK;
}

/* The source's counts, once, for the bars' totals: the API knows a folder's
 * count only once the folder is synced.  Without an estimate (an API that
 * does not offer it, or a source that does not answer in time) the bars
 * use what the API knows. */
static void load_estimate(struct cli *c, struct watch *w, long long m)
{
	char err[API_ERRLEN], *path = cli_path(m, NULL, "/estimate");
	json_t *body = json_object();

	if (path != NULL && api_call(c->api, "POST", path, body, NULL, NULL, 60, &w->estimate, NULL,
	                             err, sizeof(err)) != EXIT_OK) {
		fprintf(stderr,
		        "mailshift: status: no estimate of the source (%s): totals are the "
		        "folders synced so far\n",
		        err);
		w->estimate = NULL;
	}
	json_decref(body);
	free(path);
}

static int watch_run(struct cli *c, long long m, long long interval)
{
	struct watch *w = calloc(1, sizeof(*w));
	int ret = EXIT_OK, active = 1;

	if (w == NULL)
		return cli_fail(EXIT_UNREACHABLE, "status", "out of memory");
	w->tty = isatty(STDOUT_FILENO);
	load_estimate(c, w, m);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!watch_stop && active) {
		ret = frame(c, w, m, &active);
		if (ret != EXIT_OK || !active)
			break;
		if (!w->tty)
			printf("\n"); /* plain output: frames apart */
		for (long long k = 0; k < interval * 10 && !watch_stop; k++)
			usleep(100 * 1000);
	}
	if (ret == EXIT_OK && !active)
		printf("nothing queued, running or waiting: done watching\n");
	json_decref(w->estimate);
	free(w);
	return ret;
}

/* status without --watch: the migration and its accounts once. */
static int status_once(struct cli *c, long long m)
{
	char err[API_ERRLEN], states[512], b1[32], b2[32], *path;
	json_t *mig = NULL, *accounts = NULL, *a;
	size_t i;
	int ret;

	path = cli_path(m, NULL, "");
	ret = path != NULL ? api_get(c->api, path, &mig, err, sizeof(err)) : EXIT_UNREACHABLE;
	free(path);
	if (ret != EXIT_OK)
		return cli_fail(ret, "status", err);
	path = cli_path(m, NULL, "/accounts");
	ret = path != NULL ? api_get_all(c->api, path, 10000000, &accounts, err, sizeof(err))
	                   : EXIT_UNREACHABLE;
	free(path);
	if (ret != EXIT_OK) {
		json_decref(mig);
		return cli_fail(ret, "status", err);
	}
	if (c->json) {
		json_t *both = json_pack("{s:O,s:O}", "migration", mig, "accounts", accounts);

		fmt_json_print(both);
		json_decref(both);
		goto out;
	}
	printf("migration %lld %s, pass %lld: %s\n", m, fmt_str(mig, "name", ""),
	       fmt_int(mig, "current_pass", 0),
	       fmt_states(json_object_get(mig, "states"), states, sizeof(states)));
	printf("messages %lld of %lld, bytes %s of %s, %lld errors\n",
	       fmt_int(mig, "messages_done", 0), fmt_int(mig, "messages_total", 0),
	       fmt_bytes(fmt_int(mig, "bytes_done", 0), b1, sizeof(b1)),
	       fmt_bytes(fmt_int(mig, "bytes_total", 0), b2, sizeof(b2)),
	       fmt_int(mig, "errors", 0));
	printf("\n%-28s %-13s %5s %9s %11s %6s  %s\n", "ACCOUNT", "STATE", "PASS", "MESSAGES",
	       "BYTES", "ERRORS", "LAST ERROR");
	json_array_foreach(accounts, i, a)
	{
		char pass[24];

		snprintf(pass, sizeof(pass), "%lld/%lld", fmt_int(a, "pass_done", 0),
		         fmt_int(a, "pass", 0));
		printf("%-28s %-13s %5s %9lld %11s %6lld  %s\n", fmt_str(a, "source_login", "-"),
		       fmt_str(a, "state", "-"), pass, fmt_int(a, "messages", 0),
		       fmt_bytes(fmt_int(a, "bytes", 0), b1, sizeof(b1)), fmt_int(a, "errors", 0),
		       fmt_str(a, "last_error", ""));
	}
out:
	json_decref(mig);
	json_decref(accounts);
	return EXIT_OK;
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	long long m = cli_migration_arg(argv[1]), interval = 2;
	const char *account = NULL;
	int watch = 0;

	if (m < 0)
		return EXIT_USAGE;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--watch") == 0) {
			watch = 1;
			if (i + 1 < argc && cli_number_arg(argv[i + 1]) >= 1)
				interval = cli_number_arg(argv[++i]);
		} else if (account == NULL && strncmp(argv[i], "--", 2) != 0) {
			account = argv[i];
		} else {
			fprintf(stderr, "mailshift: usage: mailshift status MIGRATION [ACCOUNT] "
			                "[--watch [SECS]]\n");
			return EXIT_USAGE;
		}
	}
	if (account != NULL) {
		char *args[] = {"account", argv[1], (char *)account, NULL};

		return cmd_account(c, 3, args);
	}
	if (watch)
		return c->json ? (fprintf(stderr, "mailshift: status: --watch draws for people; "
		                                  "use --json without it\n"),
		                  EXIT_USAGE)
		               : watch_run(c, m, interval);
	return status_once(c, m);
}
