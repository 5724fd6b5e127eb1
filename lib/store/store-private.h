/* Internals shared by the store's modules (conn.c, schema.c, plan.c,
 * account.c, lease.c, checkpoint.c, schedule.c, pass.c): the connection's
 * layout, statements and their errors, the lease fence, and row readers.
 * Never included outside lib/store. */
#ifndef MAILSHIFT_STORE_PRIVATE_H
#define MAILSHIFT_STORE_PRIVATE_H

#include "store-account.h"
#include "store-conn.h"
#include "store-params.h"
#include "store-schedule.h"

#include <libpq-fe.h>

#include <stdbool.h>

struct store {
	PGconn *conn;
	char error[512];
	int query_timeout_s; /* client-side bound on one query's results */
	bool dead;           /* shut down after a timeout or lost: every call fails */
};

/* PQexecParams (PQexec when nparams is 0 and values NULL) bounded in time:
 * NULL, with the reason in st->error, when the server did not answer within
 * st->query_timeout_s or the connection broke. */
PGresult *store_pq_exec(struct store *st, const char *sql, int nparams, const char *const *values,
                        const int *lengths, const int *formats);

/* Records "what: server message" into the caller's err; returns -1. */
int store_fail(struct store *st, char *err, size_t errlen, const char *what, const PGresult *res);
/* A statement with text parameters; *res_r (if not NULL) is set only on
 * success, for the caller to PQclear. */
int store_exec(struct store *st, const char *sql, int nparams, const char *const *values,
               PGresult **res_r, char *err, size_t errlen);
/* Simple query protocol: several statements at once. */
int store_exec_simple(struct store *st, const char *sql, char *err, size_t errlen);
void store_rollback(struct store *st);
/* 0, or -1 with "out of memory" when a parameter could not be built. */
int store_params_check(const struct store_params *p, char *err, size_t errlen);
/* Starts a transaction fenced by the account's lease epoch (STORE_LEASE_LOST
 * when it moved) and commits it. */
int store_fence_begin(struct store *st, int64_t account_id, int64_t epoch, char *err,
                      size_t errlen);
int store_fence_commit(struct store *st, char *err, size_t errlen);
/* One fenced statement: fence, statement, commit. */
int store_fenced_exec(struct store *st, int64_t account_id, int64_t epoch, const char *sql,
                      int nparams, const char *const *params, PGresult **res_r, char *err,
                      size_t errlen);
/* The first column of res as ids, or rows of (account, migration, pass) as
 * jobs (caller frees the array); both take res. */
int store_ids_from_result(PGresult *res, int64_t **ids_r, size_t *count_r, char *err,
                          size_t errlen);
int store_jobs_from_result(PGresult *res, struct store_job **jobs_r, size_t *count_r, char *err,
                           size_t errlen);

/* Row readers.  store_dup_value: the text value, NULL for SQL NULL (caller
 * frees).  store_hex_decode: encode(x, 'hex') output into a malloc'ed buffer
 * (-1 on bad input or no memory). */
char *store_dup_value(const PGresult *res, int row, int col);
int store_hex_decode(const char *hex, unsigned char **out_r, size_t *len_r);

/* A server's columns as store_server_from_row reads them (alias s). */
#define STORE_SERVER_COLUMNS                                                                       \
	"s.id, s.host, s.port, s.tls, s.ca_file, s.auth, s.master_user, s.max_connections,"        \
	" s.prefix, s.exclude, s.name, s.rate_messages, s.rate_bytes, s.account_daily_bytes,"      \
	" s.folder_rules, s.since, s.max_message_bytes"
/* Fills srv from the STORE_SERVER_COLUMNS starting at column c (plan.c). */
void store_server_from_row(struct store_server *srv, const PGresult *res, int row, int c);
/* Reads an account with its servers and secrets (account.c); the lease
 * take and store_account_get share it. */
int store_account_load(struct store *st, int64_t account_id, struct store_account *acct, char *err,
                       size_t errlen);

#endif
