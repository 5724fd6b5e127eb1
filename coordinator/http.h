/* The coordinator's HTTP API server (libmicrohttpd, a thread per
 * connection): `mailshift-coordinator serve`, and `run --listen`.  Routes,
 * bearer-token auth, JSON errors and the request metrics are in http.c; the
 * handlers by resource in api-*.c (api.h is their interface); the store
 * connections they share in api-pool.c.  docs/openapi.yaml describes it. */
#ifndef MAILSHIFT_HTTP_H
#define MAILSHIFT_HTTP_H

#include <signal.h>
#include <stddef.h>

struct http_config {
	const char *listen;      /* "ADDR:PORT"; an IPv4 address or "localhost" */
	const char *tokens_file; /* NULL: local mode, loopback only, no auth */
	const char *ui_dir;      /* the dashboard's files */
	const char *db;          /* PostgreSQL conninfo */
	const char *brokers;     /* NULL: jobs are left to the scheduler */
	const char *key_file;
	/* 1 while this process's scheduler is the active one (NULL: no
	 * scheduler here, `serve`). */
	const volatile sig_atomic_t *scheduler_active;
};

struct http_server;

/* Loads the tokens, checks the address (a non-loopback address without
 * tokens is refused) and starts listening.  0, or -1 with err set. */
int http_server_start(const struct http_config *cfg, struct http_server **srv_r, char *err,
                      size_t errlen);
/* Stops listening, waits for the requests under way; accepts NULL. */
void http_server_stop(struct http_server **srv);

#endif
