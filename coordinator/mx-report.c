/* The MX lines of status: per domain, where it stands ("old", "partial (1
 * of 2)", "switched at T, final pass at T+settle", "final pass N
 * running/done"), what its last lookup saw or why it failed, and the
 * migration complete once every domain's final pass ended. */
#include "mx.h"

#include "store-mx.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

struct mx_tally {
	int domains, done;
};

static void print_domain(const struct store_mx_status *r, void *context)
{
	struct mx_tally *t = context;

	t->domains++;
	printf("mx %s: ", r->domain);
	if (r->final_pass > 0 && r->done_at[0] != '\0') {
		t->done++;
		printf("final pass %d done at %s (%" PRId64 " of %" PRId64 " accounts synced;"
		       " started %s %s)",
		       r->final_pass, r->done_at, r->synced, r->accounts,
		       r->final_by[0] == 'h' ? "by hand" : "by the MX watcher", r->final_at);
	} else if (r->final_pass > 0) {
		printf("final pass %d running (started %s %s; %" PRId64 " of %" PRId64
		       " accounts ended)",
		       r->final_pass, r->final_by[0] == 'h' ? "by hand" : "by the MX watcher",
		       r->final_at, r->ended, r->accounts);
	} else if (r->checked_at[0] == '\0') {
		printf("not looked up yet");
	} else if (r->switched_at[0] != '\0') {
		printf("switched at %s, final pass at %s", r->switched_at, r->due_at);
	} else if (r->total == 0) {
		printf("unknown");
	} else if (r->matched == 0) {
		printf("old");
	} else {
		printf("partial (%d of %d)", r->matched, r->total);
	}
	if (r->final_pass == 0 && r->total > 0)
		printf("; MX %s", r->seen);
	if (r->final_pass == 0 && r->error[0] != '\0')
		printf("; error at %s: %s", r->checked_at, r->error);
	else if (r->final_pass == 0 && r->checked_at[0] != '\0')
		printf("; checked %s", r->checked_at);
	printf("; destination MX %s; settle %d s; %" PRId64 " accounts\n", r->hosts, r->settle_s,
	       r->domain_accounts);
}

int mx_status_print(struct store *st, int64_t migration_id, char *err, size_t errlen)
{
	struct mx_tally t = {0};

	if (store_mx_status(st, migration_id, print_domain, &t, err, errlen) < 0)
		return -1;
	if (t.domains > 0 && t.done == t.domains)
		printf("migration %" PRId64
		       ": complete: the final pass ended for every MX domain\n",
		       migration_id);
	return 0;
}
