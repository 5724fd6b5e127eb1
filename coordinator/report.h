/* Progress reports read from PostgreSQL (the truth). */
#ifndef MAILSHIFT_REPORT_H
#define MAILSHIFT_REPORT_H

#include "store-conn.h"

#include <stddef.h>
#include <stdint.h>

/* Prints one line per account (or only account_id if not 0) and the
 * migration's totals; returns 0. */
int report_status(struct store *st, int64_t migration_id, int64_t account_id);
/* Prints a line per account (or only account_id if not 0) with contacts
 * and calendars copied (coordinator/dav.c); 0, or -1 with the store's error
 * in err. */
int report_dav(struct store *st, int64_t migration_id, int64_t account_id, char *err,
               size_t errlen);
/* Prints the migration's passes, or with pass > 0 that pass per account. */
int report_passes(struct store *st, int64_t migration_id, int pass);
/* Waits until pass `pass` ended for every account scheduled for it (synced,
 * failed, auth_failed or cancelled), at most `seconds`; prints the status.
 * Returns 0 when every scheduled account is synced, 1 otherwise. */
int report_wait(struct store *st, int64_t migration_id, int pass, int seconds);

#endif
