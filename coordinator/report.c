#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tally {
	int pass;
	int total, synced, ended;
};

static void print_row(const struct store_account_status *r, void *context)
{
	(void)context;
	printf("account %-4" PRId64 " %-24s %-11s pass %d/%d  folders %-3" PRId64
	       " messages %-7" PRId64 " bytes %-11" PRId64 " message errors %" PRId64 "%s%s\n",
	       r->id, r->src_login, r->state, r->pass_done, r->pass, r->folders, r->messages,
	       r->bytes, r->failed_messages, r->last_error[0] != '\0' ? "  last error: " : "",
	       r->last_error);
}

static void count_row(const struct store_account_status *r, void *context)
{
	struct tally *t = context;

	if (r->pass < t->pass)
		return; /* not scheduled for this pass (unverified, refused, cancelled) */
	t->total++;
	if (r->pass_done >= t->pass) {
		t->synced++;
		t->ended++;
	} else if (strcmp(r->state, "failed") == 0 || strcmp(r->state, "auth_failed") == 0 ||
		   strcmp(r->state, "cancelled") == 0) {
		t->ended++;
	}
}

int report_status(struct store *st, int64_t migration_id)
{
	const char *error;

	if (store_migration_status(st, migration_id, print_row, NULL, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	return 0;
}

int report_wait(struct store *st, int64_t migration_id, int pass, int seconds)
{
	time_t deadline = time(NULL) + seconds;
	struct tally t;
	const char *error;

	for (;;) {
		memset(&t, 0, sizeof(t));
		t.pass = pass;
		if (store_migration_status(st, migration_id, count_row, &t, &error) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (t.ended == t.total || time(NULL) >= deadline)
			break;
		usleep(50 * 1000);
	}
	report_status(st, migration_id);
	if (t.ended < t.total)
		fprintf(stderr, "timed out: %d of %d accounts still running pass %d\n",
			t.total - t.ended, t.total, pass);
	return t.synced == t.total ? 0 : 1;
}
