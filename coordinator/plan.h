/* Migration plan files: a JSON plan (name, source and destination server,
 * accounts file) and its accounts CSV (RFC 4180).
 *
 * Loading is all or nothing: any error in the plan or in any CSV line fails the
 * load and nothing is returned, so an operator never imports half a tenant.
 * Errors name the file and the JSON path or the CSV line and column; up to
 * PLAN_MAX_ERRORS are collected, one per line of the err buffer, ordered by CSV
 * line.  Passwords are never copied into an error text.
 *
 * Plan JSON keys (unknown keys are rejected, to catch typos):
 *   name         string, required
 *   source       object: the one source profile (named "default"), or
 *   sources      object of named source profiles {"NAME": {...}, ...}: one of
 *                the two is required; accounts pick theirs by the CSV column
 *                "source" (required when there are several)
 *   destination  object, required; source and destination objects' keys:
 *     host           string, required
 *     port           integer 1..65535; default 993 with tls "implicit", else 143
 *     tls            "implicit" (default), "starttls" or "none"
 *     ca_file        string or null (null: system CAs)
 *     auth           "login", "plain" (default) or "xoauth2"
 *     master_user    string or null: authorization identity for PLAIN admin login
 *     master_password  string or null; only with master_user
 *     max_connections  integer 1..1000, default 10
 *     prefix         string, default ""
 *     exclude        array of folder names (non-empty, no comma), default []
 *     max_messages_per_second, max_bytes_per_second   fleet-wide rate limits
 *                    of this server, default none; sizes are integers (bytes)
 *                    or strings with a unit: "500MB", "2 GiB", "750kB"; whole,
 *                    not negative, at most PLAN_MAX_MESSAGES_RATE messages/s
 *                    and PLAN_MAX_BYTES bytes/s
 *     account_daily_bytes   bytes each account may move per UTC day (an upload
 *                    cap like Gmail's 500 MB/day), at most PLAN_MAX_BYTES;
 *                    the rest carries over
 *     blackout       array of windows {"days": ["mon-fri", "sun"] or "daily"
 *                    (default), "from": "HH:MM[:SS]", "to": "HH:MM[:SS]"
 *                    (from >= to runs over midnight, "24:00" allowed),
 *                    "time_zone": IANA name, default "UTC"}
 *   accounts     string or null: CSV path, relative to the plan file's directory
 *
 * Accounts CSV: a header row is required; names are case-insensitive and
 * trimmed; a UTF-8 BOM, CRLF or LF line ends, quoted fields with "" escapes and
 * embedded commas or line breaks are accepted; blank lines are skipped.
 *   source_login       (src_login, source_user, user)   required
 *   source_password    (src_password, password)         required
 *   destination_login  (dst_login, destination_user)    optional, default source_login
 *   destination_password (dst_password)                 optional
 *   priority           integer 1..9, default 5, lower runs first
 *   source             (source_profile, source_server) name of the account's
 *                      source profile; optional when the plan has one
 * Logins are trimmed of surrounding blanks and must hold no control character;
 * passwords are kept byte for byte.  Two rows whose source logins differ only in
 * case are duplicates (IMAP servers treat them as the same mailbox). */
#ifndef MAILSHIFT_PLAN_H
#define MAILSHIFT_PLAN_H

#include <stddef.h>

#include "store-plan.h"

#define PLAN_MAX_ERRORS 50
/* Upper bounds of sizes and rates in a plan: beyond them a value is a typo
 * (and beyond int64 it would wrap to a negative "no limit"). */
#define PLAN_MAX_BYTES (1LL << 50) /* 1 PiB: bytes per second, bytes per day */
#define PLAN_MAX_MESSAGES_RATE 1000000
#define PLAN_PRIORITY_DEFAULT 5

struct plan_account {
	char *src_login;
	char *src_password;
	char *dst_login;    /* source login when the CSV gives none */
	char *dst_password; /* NULL when the CSV gives none */
	int priority;       /* 1..9, lower runs first */
	size_t source;      /* index of its source profile in plan->srcs */
	int line;           /* CSV line where the record starts, for messages */
	char *folder_rules; /* its folder_map as rules text, NULL when none */
};

/* Every string is owned by the plan (strdup) and freed by plan_destroy. */
struct plan {
	char *name;
	struct store_server *srcs;   /* source profiles, in the plan's order */
	char **src_master_passwords; /* per profile; NULL unless it has a master user */
	size_t nsrcs;
	struct store_server dst;
	char *dst_master_password; /* NULL unless dst.master_user has one */
	char *accounts_path;       /* resolved CSV path, NULL if the plan names none */
	struct plan_account *accounts;
	size_t naccounts;
};

/* Parses the plan file at path and, if it names one, its accounts CSV.  On
 * success *plan_r is a new plan (free with plan_destroy); on failure *plan_r is
 * NULL and err holds one line per error. */
int plan_load(const char *path, struct plan **plan_r, char *err, size_t errlen);

/* Parses csv_path and replaces plan's accounts with its rows (any previous
 * accounts are wiped); source profile names are resolved against plan->srcs
 * (only their names are needed).  On failure plan has no accounts and err
 * holds one line per error.  Used by plan_load, and to add accounts to a
 * migration. */
int plan_accounts_parse(const char *csv_path, struct plan *plan, char *err, size_t errlen);
/* The same for a CSV given as text (an API body); label names it in errors. */
int plan_accounts_parse_text(const char *label, const char *text, size_t len, struct plan *plan,
                             char *err, size_t errlen);

/* A plan given as JSON text (an API body): the keys of a plan file, except
 * that the accounts come inline as "accounts_csv" (the CSV text, required)
 * instead of a path.  Errors are labelled "plan: KEY: ..." and
 * "accounts_csv:LINE: ...".  As plan_load otherwise. */
int plan_parse(const char *text, size_t len, struct plan **plan_r, char *err, size_t errlen);

/* A change to a server profile given as JSON (an API body): any of host,
 * port, tls, ca_file, max_connections, rate_messages, rate_bytes,
 * account_daily_bytes, blackouts (windows as in a plan's "blackout"), checked
 * as a plan's are.  Errors are labelled "server: KEY: ...".  The patch's
 * strings and windows belong to it: free with plan_server_patch_clear. */
struct store_server_patch;
int plan_server_patch_parse(const char *text, size_t len, struct store_server_patch *patch,
                            char *err, size_t errlen);
void plan_server_patch_clear(struct store_server_patch *patch);

/* Wipes the passwords and frees everything; accepts NULL, sets *plan to NULL. */
void plan_destroy(struct plan **plan);

#endif
