/* Plans: a migration, its servers (source profiles, destination, blackout
 * windows) and its accounts, created or extended in one transaction each
 * (lib/store/plan.c).  Conventions of every store call: store-conn.h. */
#ifndef MAILSHIFT_STORE_PLAN_H
#define MAILSHIFT_STORE_PLAN_H

#include "store-conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A blackout window of a server: no account using the server starts inside
 * it, and running ones stop at their next checkpoint. */
struct store_blackout {
	int weekdays;     /* bit 0 = Monday ... bit 6 = Sunday */
	int from_s, to_s; /* seconds after local midnight; from >= to runs over midnight */
	char *time_zone;  /* IANA name, "UTC" */
};

/* Server settings of one side of a migration. Strings are owned by the caller
 * when passed in, by the struct (free with store_server_clear) when filled by
 * the store. */
struct store_server {
	int64_t id; /* filled by the store */
	char *name; /* profile name: several source profiles per migration */
	char *host;
	int port;
	char *tls;         /* "implicit", "starttls" or "none" */
	char *ca_file;     /* NULL: system CAs */
	char *auth;        /* "login", "plain", "xoauth2" */
	char *master_user; /* authorization identity for PLAIN admin login, or NULL */
	int max_connections;
	char *prefix;       /* IMAP path prefix, "" if none */
	char *exclude;      /* comma separated folder names excluded from copy, "" if none */
	char *folder_rules; /* a source's folder renames (lib/imap/rules.h text), "" if none */
	char *since;        /* a source's date filter "YYYY-MM-DD", NULL if none */
	int64_t max_message_bytes;   /* a source's size filter, 0 = none */
	int rate_messages;           /* messages/s across the whole fleet, 0 = no limit */
	int64_t rate_bytes;          /* bytes/s across the whole fleet, 0 = no limit */
	int64_t account_daily_bytes; /* bytes per account per UTC day, 0 = no cap */
	struct store_blackout *blackouts;
	size_t nblackouts;
};
void store_server_clear(struct store_server *srv);

/* An account to import, secrets already encrypted by lib/secret. */
struct store_new_account {
	const char *src_login, *dst_login;
	const unsigned char *src_secret, *dst_secret;
	size_t src_secret_len, dst_secret_len;
	int priority;
	const char *folder_rules; /* renames of its own, before its profile's; NULL: none */
	size_t source;            /* index of its source profile */
	int line;                 /* where it came from, for error texts */
};

/* Creates a migration with its source profiles, its destination and all its
 * accounts in one transaction: on any failure nothing is stored, and the error
 * names the account (and its line) or the server setting that failed. */
int store_migration_import(struct store *st, const char *name, const struct store_server *srcs,
                           size_t nsrcs, const struct store_server *dst,
                           const struct store_new_account *accounts, size_t count, int64_t *id_r,
                           char *err, size_t errlen);
/* Adds accounts to an existing migration in one transaction (a duplicate of
 * an account already there fails it all, naming the line).  Sources are
 * indexes into the migration's source profiles as store_migration_sources
 * lists them. */
int store_accounts_add(struct store *st, int64_t migration_id,
                       const struct store_new_account *accounts, size_t count, char *err,
                       size_t errlen);
/* The migration's source profiles (id, name and settings), in creation order;
 * free each with store_server_clear and the array with free. */
int store_migration_sources(struct store *st, int64_t migration_id, struct store_server **srcs_r,
                            size_t *count_r, char *err, size_t errlen);

#endif
