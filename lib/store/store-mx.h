/* The MX-aware final pass (lib/store/mx.c): a migration's mail domains and
 * the destination's MX hosts, what the coordinator's watcher saw when it
 * looked their MX records up, the settle and the final pass it starts.
 * Conventions of every store call: store-conn.h.
 *
 * A domain's accounts: those whose source or destination login ends in
 * "@domain" (the part after the last '@', compared without case).
 *
 * Every time is PostgreSQL's now(), so that a coordinator restart (or
 * another one taking over) continues the same settle.  The switch seen, the
 * settle started or reset, the final pass started and ended are written to
 * each of the domain's accounts' history (account_log). */
#ifndef MAILSHIFT_STORE_MX_H
#define MAILSHIFT_STORE_MX_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an operator sets: domains and hosts lower case without a trailing
 * dot (the callers normalise them). */
struct store_mx_config {
	const char *const *domains;
	size_t ndomains;
	const char *const *hosts; /* the destination's MX host names */
	size_t nhosts;
	int settle_s;         /* all MX switched this long before the final pass */
	int interval_s;       /* between two lookups of a domain */
	const char *resolver; /* "IP" or "IP:PORT"; NULL: the coordinator's */
};

/* Sets a migration's MX settings (replacing any), or with cfg NULL turns
 * watching off.  Domains kept keep their state (a settle under way goes
 * on); domains no longer named are forgotten. */
int store_mx_set(struct store *st, int64_t migration_id, const struct store_mx_config *cfg,
                 char *err, size_t errlen);

/* A domain owed a lookup (its interval passed, no final pass yet). */
struct store_mx_due {
	int64_t id, migration_id;
	char *domain;
	char **hosts; /* the destination's, NULL-terminated */
	char *resolver;
};
/* The domains owed a lookup now, of every migration; free with
 * store_mx_due_free. */
int store_mx_due_list(struct store *st, struct store_mx_due **rows_r, size_t *count_r, char *err,
                      size_t errlen);
void store_mx_due_free(struct store_mx_due *rows, size_t count);

/* What a lookup changed. */
enum store_mx_change {
	STORE_MX_SAME,
	STORE_MX_SETTLE_STARTED, /* every MX at the destination: the settle starts */
	STORE_MX_SETTLE_RESET,   /* switched no more (partly or back): settle reset */
};

/* Records a lookup of domain id: either error (the lookup failed: the
 * switch state is kept, the error shown) or seen (the MX hosts, sorted,
 * space separated), of which matched of total name a destination host.
 * All switched starts the settle (if not started); anything else resets
 * it; both are written to the accounts' history and told in *change_r.
 * *due_r: the settle is
 * over and no final pass was started for the domain. */
int store_mx_record(struct store *st, int64_t domain_id, const char *error, const char *seen,
                    int matched, int total, bool *due_r, enum store_mx_change *change_r, char *err,
                    size_t errlen);

/* Starts the domain's final pass (kind 'final', the next pass number, for
 * the domain's accounts, as `delta --final` does) if it is still due, in
 * one transaction with its record: *pass_r is its number, 0 when it was not
 * due any more or no account could run it (then *why_r, static, says
 * why or is NULL). */
int store_mx_final_start(struct store *st, int64_t domain_id, int *pass_r, size_t *queued_r,
                         const char **why_r, char *err, size_t errlen);

/* What store_mx_track saw change, for the coordinator's log. */
struct store_mx_event {
	int64_t migration_id;
	const char *domain;
	int pass;
	bool by_hand; /* a final pass started by hand was adopted */
	bool ended;   /* the final pass ended ... */
	int64_t synced, accounts;
	bool complete; /* ... and with it every domain of the migration */
};
typedef void store_mx_event_cb(const struct store_mx_event *ev, void *context);
/* Adopts final passes started by hand for a domain's accounts (the watcher
 * then starts none) and marks the domains whose final pass ended: every
 * account in it synced, refused, cancelled, or failed past its budget. */
int store_mx_track(struct store *st, store_mx_event_cb *cb, void *context, char *err,
                   size_t errlen);

/* One domain's state, for status (strings valid during the callback; times
 * "YYYY-MM-DDTHH:MM:SSZ" or ""). */
struct store_mx_status {
	const char *domain, *hosts, *resolver; /* hosts: the destination's, comma separated */
	int settle_s, interval_s;
	const char *checked_at, *seen, *error;
	int matched, total;
	const char *switched_at, *due_at; /* settle start and end */
	int final_pass;                   /* 0: none */
	const char *final_by, *final_at, *done_at;
	int64_t accounts, ended, synced; /* of the final pass, so far */
	int64_t domain_accounts;         /* accounts of the domain */
};
typedef void store_mx_status_cb(const struct store_mx_status *row, void *context);
int store_mx_status(struct store *st, int64_t migration_id, store_mx_status_cb *cb, void *context,
                    char *err, size_t errlen);

#endif
