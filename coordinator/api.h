/* What the API's handlers (api-*.c) share with the server (http.c): the
 * request as parsed, the store connection it may take, and the replies.
 * A handler runs on the connection's thread and sets exactly one reply. */
#ifndef MAILSHIFT_API_H
#define MAILSHIFT_API_H

#include "http.h"
#include "ops.h"
#include "store-conn.h"
#include "store-view.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
struct api_pool;

#define API_MAX_SEGMENTS 8

struct api_req {
	const struct http_config *cfg;
	struct api_pool *pool;
	struct MHD_Connection *conn;
	const char *method;
	char *seg[API_MAX_SEGMENTS]; /* the path's segments: "v1", "migrations", ... */
	int nseg;
	const char *body;
	size_t body_len;
	const char *content_type;
	char actor[96];   /* "api:NAME" (the token's name) or "api:local" */
	struct store *st; /* taken by api_store, given back after the reply */
	/* The reply. */
	int status;
	json_t *json; /* rendered as the body, or */
	char *text;   /* a body as is, of type text_type */
	size_t text_len;
	const char *text_type;
	const char *location; /* a redirect */
};

/* ---- replies ---- */
/* Takes json (a reference). */
void api_reply(struct api_req *r, int status, json_t *json);
/* Takes text (malloc'ed). */
void api_reply_text(struct api_req *r, int status, const char *type, char *text, size_t len);
/* {"error": {"code", "message", "field"}}; field may be NULL. */
void api_error(struct api_req *r, int status, const char *code, const char *field, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
/* The reply for an OPS_* failure of a shared action, err its message. */
void api_ops_error(struct api_req *r, int ret, const char *err);

/* ---- the request ---- */
/* The store connection of this request (taken from the pool once, with a
 * bounded wait): NULL with a 503 reply set when PostgreSQL cannot be had. */
struct store *api_store(struct api_req *r);
/* The shared actions' context for this request (store, actor). */
struct ops api_ops(struct api_req *r);
/* The body as a JSON object: NULL with a 400 reply set otherwise (an empty
 * body is {} when empty_ok). */
json_t *api_body_object(struct api_req *r, bool empty_ok);
/* A query argument, or NULL. */
const char *api_query(struct api_req *r, const char *name);
/* ?limit (1..1000, default 100) and ?after: -1 with a 400 reply on bad ones. */
int api_page_args(struct api_req *r, int *limit_r, int64_t *after_r);
/* An integer query argument in min..max, def when absent; -1 with a 400. */
int api_query_int(struct api_req *r, const char *name, long min, long max, long def, long *v_r);
/* The migration of seg[2]: -1 with a 404 (or 400, 503) reply set. */
int api_migration(struct api_req *r, int64_t *mid_r);
/* An account of the migration by id or source login (seg[4]). */
int api_account(struct api_req *r, int64_t mid, const char *which, int64_t *aid_r);
/* "accounts": [ids or logins] of a body, resolved; absent: *ids_r NULL. */
int api_body_accounts(struct api_req *r, json_t *body, int64_t mid, int64_t **ids_r, size_t *n_r);

/* A view's JSON (store-view.h) parsed: NULL with a 503/500 reply set. */
json_t *api_view(struct api_req *r, enum store_view view, const struct store_view_args *args);
/* A list page: items = the view's rows (asked for limit + 1), next = the
 * cursor of the last row kept when there are more ("id" member). */
json_t *api_view_page(struct api_req *r, enum store_view view, struct store_view_args *args,
                      const char *id_key);

/* ---- the store pool (api-pool.c) ---- */
int api_pool_create(const char *conninfo, int size, struct api_pool **pool_r);
void api_pool_destroy(struct api_pool **pool);
/* A connection within wait_ms, opened or reopened as needed; NULL with err
 * set when none (the pool is busy or PostgreSQL unreachable). */
struct store *api_pool_take(struct api_pool *pool, int wait_ms, char *err, size_t errlen);
void api_pool_give(struct api_pool *pool, struct store **st);

/* ---- handlers, by resource ---- */
/* api-health.c: /healthz, /readyz, /metrics (the server's own counters are
 * appended by http.c through http_metrics_write). */
void api_healthz(struct api_req *r);
void api_readyz(struct api_req *r);
void api_metrics(struct api_req *r);
/* Appends the API's request counters to the metrics text (http.c). */
void http_metrics_write(struct api_req *r, char **buf, size_t *len, size_t *cap);
/* Appends printf output to a growing buffer; -1 on no memory. */
int api_buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* api-migrations.c */
void api_migrations_list(struct api_req *r);
void api_migrations_import(struct api_req *r);
void api_migration_get(struct api_req *r);
void api_migration_verify(struct api_req *r);
void api_migration_control(struct api_req *r);
void api_servers_list(struct api_req *r);
void api_server_patch(struct api_req *r);
void api_errors_list(struct api_req *r);
void api_report(struct api_req *r);
void api_throughput(struct api_req *r);

/* api-passes.c */
void api_passes_list(struct api_req *r);
void api_passes_start(struct api_req *r);
void api_pass_get(struct api_req *r);
void api_pass_wait(struct api_req *r);
void api_pass_retry(struct api_req *r);

/* api-accounts.c */
void api_accounts_list(struct api_req *r);
void api_accounts_add(struct api_req *r);
void api_account_get(struct api_req *r);
void api_account_delete(struct api_req *r);
void api_account_password(struct api_req *r);
void api_account_control(struct api_req *r);

/* api-inspect.c */
void api_estimate(struct api_req *r);
void api_proof_run(struct api_req *r);
void api_proofs_summary(struct api_req *r);
void api_account_proof(struct api_req *r);
void api_account_empty(struct api_req *r);

#endif
