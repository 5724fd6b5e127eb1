/* Sessions of the inspections: a slot of the server's budget, a login that
 * waits for a throttling server, and the account lists they take. */
#include "inspect-private.h"

#include "log.h"
#include "names.h"
#include "pace.h"
#include "store-lease.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long an inspection waits for a slot of its server's budget. */
#define SLOT_WAIT_S 120
/* Tries for a login while the server asks to slow down. */
#define THROTTLE_TRIES 6

struct slot_take {
	struct inspect_side *side;
	char *error;
	size_t errlen;
};

static int slot_try(void *context)
{
	struct slot_take *t = context;

	return store_slot_take(t->side->st, t->side->server_id, t->side->owner, 600, &t->side->slot,
	                       t->error, t->errlen);
}

int inspect_side_open(struct inspect_side *side, struct store *st, int64_t server_id,
                      const struct imap_endpoint *ep, const char *what, char *err, size_t errlen)
{
	char error[STORE_ERRLEN] = "", ierr[512];
	struct slot_take take = {side, error, sizeof(error)};
	int taken, ret = -1;

	memset(side, 0, sizeof(*side));
	side->st = st;
	side->server_id = server_id;
	snprintf(side->owner, sizeof(side->owner), "inspect-%ld-%lu", (long)getpid(),
	         (unsigned long)pthread_self());
	taken = pace_slot_wait(slot_try, &take, SLOT_WAIT_S, NULL, NULL);
	if (taken == STORE_BUSY) {
		snprintf(err, errlen,
		         "%s: no connection free within the server's budget for 2 minutes"
		         " (copies are using it); try again later",
		         what);
		return -1;
	}
	if (taken < 0)
		log_warn("%s: connection budget: %s (going on anyway)", what, error);
	side->slot_held = taken == STORE_TAKEN;
	for (int tries = 1;; tries++) {
		int backoff = 0;
		ret = imap_session_open_backoff(ep, &side->session, &backoff, ierr, sizeof(ierr));
		if (ret != IMAP_ETHROTTLED || tries == THROTTLE_TRIES)
			break;
		pace_sleep(pace_throttle_delay_s(backoff, tries), NULL, NULL);
	}
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", what, ierr);
		inspect_side_close(side);
		return -1;
	}
	return 0;
}

void inspect_side_close(struct inspect_side *side)
{
	char error[STORE_ERRLEN] = "";

	imap_session_close(&side->session);
	if (side->slot_held && store_slot_release(side->st, side->server_id, side->slot,
	                                          side->owner, error, sizeof(error)) < 0)
		log_warn("connection budget: %s", error);
	side->slot_held = false;
}

int inspect_ids(struct store *st, int64_t migration_id, const int64_t *ids, size_t count,
                int64_t **out_r, size_t *n_r, char *err, size_t errlen)
{
	if (ids == NULL)
		return store_migration_accounts(st, migration_id, out_r, n_r, err, errlen);
	*out_r = calloc(count + 1, sizeof(**out_r));
	if (*out_r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(*out_r, ids, count * sizeof(*ids));
	*n_r = count;
	return 0;
}

void inspect_folder_shown(const char *mutf7, char *out, size_t outlen)
{
	if (imap_name_decode(mutf7, out, outlen) < 0)
		snprintf(out, outlen, "%s", mutf7);
}
