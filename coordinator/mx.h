/* The MX-aware final pass: the active scheduler looks up the MX records of
 * each migration's mail domains (c-ares, a resolver of the plan's, of
 * MAILSHIFT_MX_RESOLVER or the system's, each lookup bounded by
 * MAILSHIFT_MX_TIMEOUT seconds, default 5), and once every MX of a domain
 * names one of the destination's hosts and stayed so for the settle time,
 * starts the final pass for the domain's accounts; status shows where each
 * domain stands.  The records: lib/store/store-mx.h. */
#ifndef MAILSHIFT_MX_H
#define MAILSHIFT_MX_H

#include "store-conn.h"

#include <stddef.h>
#include <stdint.h>

/* The MX host names of domain, lower case without the trailing dot, in
 * preference order (caller frees each and the array), asking resolver
 * ("IP[:PORT]", NULL: the system's) within timeout_ms.  0, or -1 with err
 * naming the domain, the resolver and c-ares' reason (no MX record is an
 * error too: a domain without MX gets no final pass). */
int mx_lookup(const char *domain, const char *resolver, int timeout_ms, char ***hosts_r,
              size_t *count_r, char *err, size_t errlen);

/* One round of the watcher, for the active scheduler: the lookups due, the
 * settles, the final passes due, the ends of final passes.  -1 only when
 * the store failed (logged; the caller reconnects); lookup failures are
 * recorded and logged. */
int mx_watch_step(struct store *st);

/* The "mx DOMAIN: ..." lines of status (nothing for a migration without MX
 * watching), and "complete" once every domain's final pass ended.  0, or
 * -1 with err set. */
int mx_status_print(struct store *st, int64_t migration_id, char *err, size_t errlen);

#endif
