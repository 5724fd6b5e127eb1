/* Live per-account totals folded from workers' progress events.  An event
 * carries its run's totals so far (the run is the lease epoch), so replays
 * and duplicates change nothing, and a new run after a crash adds to the
 * runs before it in the same pass.  Only changed accounts are written back.
 * PostgreSQL's checkpoints stay the truth; these are what "now" looks like. */
#ifndef MAILSHIFT_LIVE_H
#define MAILSHIFT_LIVE_H

#include "queue.h"
#include "store-conn.h"

struct live;

struct live *live_create(void);
void live_destroy(struct live **live);
void live_fold(struct live *live, const struct queue_event *ev);
/* Writes the accounts changed since the last flush. */
int live_flush(struct live *live, struct store *st, char *err, size_t errlen);

#endif
