/* Waiting for a server: for a slot of its connection budget, and as it asked
 * when it answered "slow down".  One way for every process: the worker's
 * folder threads and the coordinator's verifier.
 *
 * Contract:
 *   - Every wait sleeps in steps of at most PACE_STEP_MS and asks the
 *     caller's go callback before each step (and once more at the end of a
 *     sleep): a false answer ends the wait at once.  The callback is where a
 *     caller sees its stop flag, or tells its watchdog that the thread is
 *     alive; it runs in the waiting thread.  A NULL callback never ends a
 *     wait early.
 *   - The helpers hold nothing: a slot taken is the taker's to release.
 *   - No logging: the caller says why it waits. */
#ifndef MAILSHIFT_PACE_H
#define MAILSHIFT_PACE_H

#include <stdbool.h>

/* Longest single sleep step, so that a stop is seen within it. */
#define PACE_STEP_MS 100
/* Between two tries for a connection slot. */
#define PACE_SLOT_RETRY_MS 200
/* Our own backoff after the count-th "slow down" without a suggested wait:
 * 1, 2, 4 ... 32 s, then PACE_BACKOFF_MAX_S. */
#define PACE_BACKOFF_MAX_S 60
/* No throttling wait is longer, whatever a server suggests. */
#define PACE_THROTTLE_MAX_S 600

/* Results.  PACE_TAKEN and PACE_BUSY are the values of STORE_TAKEN and
 * STORE_BUSY (lib/store), so that store_slot_take's result passes through. */
#define PACE_TAKEN 0   /* the slot is the caller's */
#define PACE_BUSY 1    /* the budget stayed used up: the wait ended, nothing held */
#define PACE_SLEPT 0   /* pace_sleep slept in full */
#define PACE_STOPPED 1 /* pace_sleep ended early: go said false */

/* Asked before each step of a wait; false ends it.  context is the caller's. */
typedef bool pace_go_fn(void *context);

/* One try for a slot: PACE_TAKEN, PACE_BUSY (every slot is held; nothing is
 * taken), or <0 an error (the taker keeps its own error text). */
typedef int pace_take_fn(void *context);

/* Seconds to wait after the count-th throttling answer in a row (count >= 1;
 * less counts as 1): the server's suggestion when > 0, else our backoff
 * (1 << (count - 1), PACE_BACKOFF_MAX_S from the 7th on); at most
 * PACE_THROTTLE_MAX_S.  Pure. */
int pace_throttle_delay_s(int suggested_s, int count);

/* Sleeps secs (<= 0: not at all) in steps of at most PACE_STEP_MS, asking
 * go(context) before each step and after the last.  PACE_SLEPT, or
 * PACE_STOPPED as soon as go answered false. */
int pace_sleep(double secs, pace_go_fn *go, void *context);

/* Takes a slot of a server's connection budget: take(take_context) now, and
 * while it answers PACE_BUSY again every PACE_SLOT_RETRY_MS, for at most
 * max_wait_s seconds of sleep (< 0: no limit).  Before each sleep
 * go(go_context) is asked (the first time after the first PACE_BUSY: a
 * caller may log there that it waits).  Returns take's last answer:
 * PACE_TAKEN, <0, or PACE_BUSY when the limit passed or go said false. */
int pace_slot_wait(pace_take_fn *take, void *take_context, double max_wait_s, pace_go_fn *go,
                   void *go_context);

#endif
