/* Progress reports read from PostgreSQL (the truth). */
#ifndef MAILSHIFT_REPORT_H
#define MAILSHIFT_REPORT_H

#include "store.h"

#include <stdint.h>

/* Prints one line per account; returns 0. */
int report_status(struct store *st, int64_t migration_id);
/* Waits until pass `pass` ended for every account scheduled for it (synced,
 * failed, auth_failed or cancelled), at most `seconds`; prints the status.
 * Returns 0 when every scheduled account is synced, 1 otherwise. */
int report_wait(struct store *st, int64_t migration_id, int pass, int seconds);

#endif
