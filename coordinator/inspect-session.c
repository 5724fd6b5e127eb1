/* Sessions of the inspections: a slot of the server's budget, a login that
 * waits for a throttling server, and the account lists they take. */
#include "inspect-private.h"

#include "log.h"
#include "names.h"
#include "pace.h"
#include "proof-compare.h"
#include "store-lease.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long an inspection waits for a slot of its server's budget, how long
 * it takes it for, and how often the lease is renewed. */
#define SLOT_WAIT_S 120
#define SLOT_TTL_S 600
#define SLOT_RENEW_S 60
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

	return store_slot_take(t->side->st, t->side->server_id, t->side->owner, SLOT_TTL_S,
	                       &t->side->slot, t->error, t->errlen);
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
	side->renewed = time(NULL);
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

void inspect_side_keep(struct inspect_side *side)
{
	char error[STORE_ERRLEN] = "";
	time_t now = time(NULL);

	if (!side->slot_held || now - side->renewed < SLOT_RENEW_S)
		return;
	side->renewed = now;
	if (store_slots_renew(side->st, side->owner, SLOT_TTL_S, error, sizeof(error)) < 0)
		log_warn("connection budget: %s", error);
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

void inspect_filter_init(struct inspect_filter *f, const struct store_server *src)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int y, m, d;
	char date[48];

	f->since = 0;
	f->max_bytes = src->max_message_bytes;
	/* "YYYY-MM-DD" (checked at import) as an INTERNALDATE at UTC midnight. */
	if (src->since != NULL && sscanf(src->since, "%4d-%2d-%2d", &y, &m, &d) == 3 && m >= 1 &&
	    m <= 12) {
		snprintf(date, sizeof(date), "%02d-%s-%04d 00:00:00 +0000", d, months[m - 1], y);
		if (!proof_date_parse(date, &f->since))
			f->since = 0;
	}
}

bool inspect_filter_active(const struct inspect_filter *f)
{
	return f->since > 0 || f->max_bytes > 0;
}

bool inspect_filtered(const struct inspect_filter *f, uint32_t size, const char *internaldate)
{
	int64_t t;

	if (f->max_bytes > 0 && (int64_t)size > f->max_bytes)
		return true;
	/* A date it cannot read is no reason to leave a message out. */
	return f->since > 0 && internaldate != NULL && proof_date_parse(internaldate, &t) &&
	       t < f->since;
}
