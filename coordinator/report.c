#include "report.h"

#include "ops.h"

#include "account_state.h"
#include "store-pass.h"
#include "store-proof.h"
#include "store-schedule.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Per-migration totals, printed after the accounts. */
struct totals {
	int64_t accounts, synced, running, queued, waiting, failed, refused, other;
	int64_t messages, bytes, failed_messages, live_messages, live_bytes;
};

/* The row's state; ACCOUNT_STATE_COUNT (no state) for a name it does not
 * know, which counts as none of them. */
static enum account_state row_state(const struct store_account_status *r)
{
	enum account_state state;

	return account_state_parse(r->state, &state) == 0 ? state : ACCOUNT_STATE_COUNT;
}

static void print_row(const struct store_account_status *r, void *context)
{
	struct totals *t = context;
	enum account_state state = row_state(r);

	printf("account %-4" PRId64 " %-24s %-11s pass %d/%d  folders %-3" PRId64
	       " messages %-7" PRId64 " bytes %-11" PRId64 " message errors %" PRId64,
	       r->id, r->src_login, r->state, r->pass_done, r->pass, r->folders, r->messages,
	       r->bytes, r->failed_messages);
	if (r->live_messages >= 0 && state == ACCOUNT_STATE_RUNNING)
		printf("  live: %" PRId64 " messages %" PRId64 " bytes this pass", r->live_messages,
		       r->live_bytes);
	if (r->matched > 0)
		printf("  already in destination %" PRId64, r->matched);
	if (r->filtered > 0)
		printf("  left out by the source's filters %" PRId64, r->filtered);
	if (r->failed_folders > 0)
		printf("  %" PRId64 " folders failed", r->failed_folders);
	if (r->retry_at[0] != '\0')
		printf("  next try %s", r->retry_at);
	if (r->last_error[0] != '\0')
		printf("  last error: %s", r->last_error);
	putchar('\n');
	t->accounts++;
	switch ((int)state) {
	case ACCOUNT_STATE_SYNCED:
		t->synced++;
		break;
	case ACCOUNT_STATE_RUNNING:
		t->running++;
		break;
	case ACCOUNT_STATE_QUEUED:
		t->queued++;
		break;
	case ACCOUNT_STATE_WAITING:
		t->waiting++;
		break;
	case ACCOUNT_STATE_FAILED:
		t->failed++;
		break;
	case ACCOUNT_STATE_AUTH_FAILED:
	case ACCOUNT_STATE_VERIFY_FAILED:
		t->refused++;
		break;
	default:
		t->other++;
		break;
	}
	t->messages += r->messages;
	t->bytes += r->bytes;
	t->failed_messages += r->failed_messages;
	if (r->live_messages > 0) {
		t->live_messages += r->live_messages;
		t->live_bytes += r->live_bytes;
	}
}

/* Prints a string from a server with its control characters escaped: a
 * source can name a folder with CR LF, which must not break the lines. */
static void print_escaped(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

/* One line per failed folder, under the accounts: the folder's name and the
 * command with the server's own words. */
static void print_folder_error(int64_t account_id, const char *src_name, const char *error,
                               void *context)
{
	(void)context;
	printf("account %-4" PRId64 " folder \"", account_id);
	print_escaped(src_name);
	fputs("\" failed: ", stdout);
	print_escaped(error);
	putchar('\n');
}

/* One line per message copied without keywords the destination refused. */
static void print_keywords_dropped(int64_t account_id, const char *src_name, uint32_t src_uid,
                                   const char *keywords, const char *error, void *context)
{
	(void)context;
	printf("account %-4" PRId64 " folder \"", account_id);
	print_escaped(src_name);
	printf("\" uid %" PRIu32 " copied without the keywords ", src_uid);
	print_escaped(keywords);
	fputs(": ", stdout);
	print_escaped(error);
	putchar('\n');
}

int report_status(struct store *st, int64_t migration_id, int64_t account_id)
{
	struct totals t = {0};
	char error[STORE_ERRLEN] = "";

	char warnings[2048];

	if (store_migration_status(st, migration_id, account_id, print_row, &t, error,
	                           sizeof(error)) < 0 ||
	    store_folder_errors(st, migration_id, account_id, print_folder_error, NULL, error,
	                        sizeof(error)) < 0 ||
	    store_keywords_dropped_each(st, migration_id, account_id, print_keywords_dropped, NULL,
	                                error, sizeof(error)) < 0 ||
	    store_migration_cleartext(st, migration_id, warnings, sizeof(warnings), error,
	                              sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (account_id == 0)
		printf("migration %" PRId64 ": %" PRId64 " accounts: %" PRId64 " synced, %" PRId64
		       " running, %" PRId64 " queued, %" PRId64 " waiting, %" PRId64
		       " failed, %" PRId64 " refused, %" PRId64 " other; %" PRId64
		       " messages, %" PRId64 " bytes copied, %" PRId64 " message errors; live"
		       " (events, this pass): %" PRId64 " messages, %" PRId64 " bytes\n",
		       migration_id, t.accounts, t.synced, t.running, t.queued, t.waiting, t.failed,
		       t.refused, t.other, t.messages, t.bytes, t.failed_messages, t.live_messages,
		       t.live_bytes);
	/* After the accounts; one account's status stays one line on stdout. */
	fputs(warnings, account_id == 0 ? stdout : stderr);
	return 0;
}

static void print_pass(const struct store_pass_row *r, void *context)
{
	(void)context;
	printf("pass %-3d %-6s started %s  accounts %" PRId64 " (%" PRId64
	       " synced)  messages %" PRId64 "  bytes %" PRId64 "  message errors %" PRId64,
	       r->number, r->kind, r->started_at, r->accounts, r->synced, r->messages, r->bytes,
	       r->failed);
	if (r->matched > 0)
		printf("  already in destination %" PRId64, r->matched);
	if (r->failed_folders > 0)
		printf("  folders failed %" PRId64, r->failed_folders);
	if (r->seconds >= 0)
		printf("  finished in %.1f s", r->seconds);
	putchar('\n');
}

static void print_pass_account(const struct store_pass_account_row *r, void *context)
{
	(void)context;
	printf("account %-4" PRId64 " %-24s %-11s runs %d  started %-20s", r->account_id,
	       r->src_login, r->state, r->runs, r->started_at[0] != '\0' ? r->started_at : "-");
	if (r->seconds >= 0)
		printf("  took %.2f s", r->seconds);
	printf("  folders %" PRId64 " messages %" PRId64 " bytes %" PRId64
	       " message errors %" PRId64,
	       r->folders, r->messages, r->bytes, r->failed);
	if (r->matched > 0)
		printf("  already in destination %" PRId64, r->matched);
	if (r->failed_folders > 0)
		printf("  folders failed %" PRId64, r->failed_folders);
	putchar('\n');
}

int report_passes(struct store *st, int64_t migration_id, int pass)
{
	char error[STORE_ERRLEN] = "";
	int ret = pass > 0 ? store_pass_accounts(st, migration_id, pass, print_pass_account, NULL,
	                                         error, sizeof(error))
	                   : store_passes(st, migration_id, print_pass, NULL, error, sizeof(error));

	if (ret < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	return 0;
}

int report_wait(struct store *st, int64_t migration_id, int pass, int seconds)
{
	time_t deadline = time(NULL) + seconds;
	const struct ops o = {.st = st};
	struct ops_pass_tally t;
	char error[STORE_ERRLEN] = "";
	/* Woken by the NOTIFY of every account's lease release (an account's
	 * pass ends there), not by polling; the status is read again at least
	 * once a second anyway. */
	bool listening = store_listen(st, error, sizeof(error)) == 0;

	for (;;) {
		if (ops_pass_tally(&o, migration_id, pass, &t, error, sizeof(error)) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		if (t.ended == t.total || time(NULL) >= deadline)
			break;
		if (!listening || store_wait_notify(st, 1000, error, sizeof(error)) < 0)
			usleep(50 * 1000);
	}
	report_status(st, migration_id, 0);
	if (t.ended < t.total)
		fprintf(stderr, "timed out: %d of %d accounts still running pass %d\n",
		        t.total - t.ended, t.total, pass);
	return t.synced == t.total ? 0 : 1;
}
