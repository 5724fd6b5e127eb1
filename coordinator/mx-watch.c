/* The MX watcher's round, run by the active scheduler between its steps:
 * final passes started by hand are adopted and ended ones recorded first
 * (so the watcher never starts a second one), then each domain whose
 * interval passed is looked up; a lookup that finds every MX at the
 * destination and the settle over starts the final pass, in one
 * transaction with its record (lib/store/mx.c), so that neither a restart
 * nor a second coordinator starts it twice.  The scheduler's next step
 * publishes its jobs. */
#include "mx.h"

#include "log.h"
#include "store-mx.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Default bound of one lookup, in seconds (MAILSHIFT_MX_TIMEOUT). */
#define MX_TIMEOUT_S 5

static void on_event(const struct store_mx_event *ev, void *context)
{
	(void)context;
	if (ev->by_hand)
		log_info("migration %" PRId64 ": %s: final pass %d was started by hand; the MX"
		         " watcher starts none",
		         ev->migration_id, ev->domain, ev->pass);
	if (ev->ended)
		log_info("migration %" PRId64 ": %s: final pass %d ended: %" PRId64 " of %" PRId64
		         " accounts synced",
		         ev->migration_id, ev->domain, ev->pass, ev->synced, ev->accounts);
	if (ev->complete)
		log_info("migration %" PRId64 ": complete: the final pass ended for every MX"
		         " domain",
		         ev->migration_id);
}

static int timeout_ms(void)
{
	const char *s = getenv("MAILSHIFT_MX_TIMEOUT");
	int v = s != NULL ? atoi(s) : 0;

	return (v >= 1 && v <= 60 ? v : MX_TIMEOUT_S) * 1000;
}

/* Looks one domain up and records what it saw; starts its final pass when
 * due.  -1 only on a store failure. */
static int watch_domain(struct store *st, const struct store_mx_due *d)
{
	const char *resolver = d->resolver != NULL ? d->resolver : getenv("MAILSHIFT_MX_RESOLVER");
	char error[STORE_ERRLEN] = "", why[512] = "", seen[1024] = "";
	char **hosts = NULL;
	size_t n = 0, used = 0;
	int matched = 0, pass = 0;
	const char *not_started = NULL;
	size_t queued = 0;
	enum store_mx_change change = STORE_MX_SAME;
	bool due = false, failed;

	if (resolver != NULL && resolver[0] == '\0')
		resolver = NULL;
	failed = mx_lookup(d->domain, resolver, timeout_ms(), &hosts, &n, why, sizeof(why)) < 0;
	for (size_t i = 0; i < n; i++) {
		bool ours = false;
		int w;

		for (size_t k = 0; d->hosts[k] != NULL; k++)
			ours = ours || strcmp(hosts[i], d->hosts[k]) == 0;
		matched += ours;
		w = snprintf(seen + used, sizeof(seen) - used, "%s%s", i > 0 ? " " : "", hosts[i]);
		if (w > 0 && (size_t)w < sizeof(seen) - used)
			used += (size_t)w;
	}
	for (size_t i = 0; i < n; i++)
		free(hosts[i]);
	free(hosts);
	if (failed)
		log_warn("migration %" PRId64 ": %s", d->migration_id, why);
	if (store_mx_record(st, d->id, failed ? why : NULL, seen, matched, (int)n, &due, &change,
	                    error, sizeof(error)) < 0) {
		log_error("mx: %s", error);
		return -1;
	}
	if (change == STORE_MX_SETTLE_STARTED)
		log_info("migration %" PRId64 ": %s: every MX at the destination (%s): settle"
		         " started",
		         d->migration_id, d->domain, seen);
	else if (change == STORE_MX_SETTLE_RESET)
		log_info("migration %" PRId64 ": %s: %d of %zu MX at the destination (%s): settle"
		         " reset",
		         d->migration_id, d->domain, matched, n, seen);
	if (!due)
		return 0;
	if (store_mx_final_start(st, d->id, &pass, &queued, &not_started, error, sizeof(error)) <
	    0) {
		log_error("mx: %s", error);
		return -1;
	}
	if (pass > 0)
		log_info("migration %" PRId64
		         ": %s: every MX at the destination (%s) for the settle"
		         " time: final pass %d started for %zu accounts",
		         d->migration_id, d->domain, seen, pass, queued);
	else if (not_started != NULL)
		log_warn("migration %" PRId64 ": %s: final pass due but not started: %s",
		         d->migration_id, d->domain, not_started);
	return 0;
}

int mx_watch_step(struct store *st)
{
	static time_t last;
	struct store_mx_due *due = NULL;
	size_t n = 0;
	char error[STORE_ERRLEN] = "";
	int ret = 0;

	/* At most once a second, however often the scheduler steps: lookups
	 * have their own interval, and the ends of final passes can wait. */
	if (time(NULL) == last)
		return 0;
	last = time(NULL);
	if (store_mx_track(st, on_event, NULL, error, sizeof(error)) < 0 ||
	    store_mx_due_list(st, &due, &n, error, sizeof(error)) < 0) {
		log_error("mx: %s", error);
		return -1;
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = watch_domain(st, &due[i]);
	store_mx_due_free(due, n);
	return ret;
}
