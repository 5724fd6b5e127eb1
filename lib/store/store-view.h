/* Read models of the HTTP API (lib/store/view.c): each view is one SQL
 * statement that builds its JSON in PostgreSQL, so a list of accounts or a
 * pass with its rows is one round trip, whatever its size.  Times are
 * RFC 3339 in the session's time zone (the API's connections set UTC); ids
 * are numbers; absent values are null.  Passes and accounts are not
 * views: the API renders the rows `passes` and `status` print
 * (store_passes, store_pass_accounts, store_migration_status_page).
 * Conventions: store-conn.h. */
#ifndef MAILSHIFT_STORE_VIEW_H
#define MAILSHIFT_STORE_VIEW_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a view is asked for; 0 or NULL: not given (no filter). */
struct store_view_args {
	int64_t migration_id;
	int64_t account_id;
	int pass;
	int64_t server_id;
	int64_t after; /* lists: only rows whose id is above this cursor */
	int limit;     /* lists: at most this many rows (0: 1000) */
	const char *state;
	const char *q; /* source login substring, any case */
	int minutes;   /* throughput: the last N minutes */
};

enum store_view {
	STORE_VIEW_MIGRATIONS,      /* [{id, name, created_at, accounts, states, ...}] */
	STORE_VIEW_SERVERS,         /* [{id, role, name, host, port, ..., blackouts}] */
	STORE_VIEW_PASSES,          /* [{number, kind, accounts, started_at, ...}] */
	STORE_VIEW_PASS_ACCOUNTS,   /* one pass: [{account_id, account, state, ...}] */
	STORE_VIEW_ACCOUNTS,        /* [{id, source_login, ..., progress}] */
	STORE_VIEW_ACCOUNT_FOLDERS, /* one account: [{source_name, ...}] */
	STORE_VIEW_ACCOUNT_PASSES,  /* one account: [{number, kind, state, ...}] */
	STORE_VIEW_ACCOUNT_HISTORY, /* one account: [{at, from_state, to_state, ...}] */
	STORE_VIEW_ERRORS,          /* [{id, account_id, account, folder, uid, error, at}] */
	STORE_VIEW_REPORT,          /* [{id, source_login, ..., folders: [...]}] */
	STORE_VIEW_THROUGHPUT,      /* [{at, messages, bytes}] one per minute */
	STORE_VIEW_METRICS,         /* {migrations: [...], workers: [...]} */
};

/* The view's JSON text into *json_r (caller frees). */
int store_view(struct store *st, enum store_view view, const struct store_view_args *args,
               char **json_r, char *err, size_t errlen);

/* A change to a server profile of a migration: NULL strings and negative
 * numbers are left as they are; ca_file is changed when set_ca_file (NULL:
 * the system CAs); blackouts replace the server's when set_blackouts. */
struct store_blackout;
struct store_server_patch {
	const char *host;
	int port;
	const char *tls;
	bool set_ca_file;
	const char *ca_file;
	int max_connections;
	int rate_messages;
	int64_t rate_bytes;
	int64_t account_daily_bytes;
	bool set_blackouts;
	const struct store_blackout *blackouts;
	size_t nblackouts;
};
/* Applies the patch in one transaction (lib/store/server.c): the server's
 * connection slots follow max_connections (slots above a lowered budget are
 * removed; a run holding one finishes with it), and the scheduler is woken.
 * 1 when the migration has no such server. */
int store_server_update(struct store *st, int64_t migration_id, int64_t server_id,
                        const struct store_server_patch *patch, char *err, size_t errlen);

#endif
