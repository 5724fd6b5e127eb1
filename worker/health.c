/* The worker's health listener (--listen, off by default): /healthz while
 * the process runs, /readyz while PostgreSQL answers the beat and the Kafka
 * consumer is in its group, /metrics with the worker's own counters in
 * Prometheus text format.  libmicrohttpd runs it in its own thread; it reads
 * atomics and mutex-guarded fields only, never a connection of the worker. */
#include "worker-private.h"

#include "log.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* A beat older than this many beats means PostgreSQL stopped answering. */
#define HEALTH_BEATS_MISSED 3

struct worker_health {
	struct MHD_Daemon *daemon;
	struct worker *w;
	struct queue_consumer *consumer;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status, const char *type,
                               const char *body)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* NULL when ready, else why not. */
static const char *unready_reason(struct worker_health *h)
{
	time_t beat = atomic_load(&h->w->beat_ok_at);

	if (*h->w->sync.stop)
		return "stopping";
	if (beat == 0 || time(NULL) - beat > HEALTH_BEATS_MISSED * BEAT_S)
		return "PostgreSQL does not answer the beat";
	if (!queue_consumer_joined(h->consumer))
		return "the Kafka consumer is not in its group";
	return NULL;
}

static void metrics(struct worker_health *h, char *buf, size_t size)
{
	struct worker *w = h->w;
	int running;

	pthread_mutex_lock(&w->lock);
	running = w->running;
	pthread_mutex_unlock(&w->lock);
	snprintf(buf, size,
	         "# HELP mailshift_worker_up 1 while the worker runs.\n"
	         "# TYPE mailshift_worker_up gauge\n"
	         "mailshift_worker_up 1\n"
	         "# HELP mailshift_worker_ready 1 while PostgreSQL and Kafka answer.\n"
	         "# TYPE mailshift_worker_ready gauge\n"
	         "mailshift_worker_ready %d\n"
	         "# HELP mailshift_worker_accounts_running Accounts being copied now.\n"
	         "# TYPE mailshift_worker_accounts_running gauge\n"
	         "mailshift_worker_accounts_running %d\n"
	         "# HELP mailshift_worker_accounts_capacity Accounts copied at once at most.\n"
	         "# TYPE mailshift_worker_accounts_capacity gauge\n"
	         "mailshift_worker_accounts_capacity %d\n"
	         "# HELP mailshift_worker_account_runs_total Account runs ended.\n"
	         "# TYPE mailshift_worker_account_runs_total counter\n"
	         "mailshift_worker_account_runs_total %llu\n"
	         "# HELP mailshift_worker_account_runs_failed_total Account runs ended failed.\n"
	         "# TYPE mailshift_worker_account_runs_failed_total counter\n"
	         "mailshift_worker_account_runs_failed_total %llu\n"
	         "# HELP mailshift_worker_messages_copied_total Messages appended to "
	         "destinations.\n"
	         "# TYPE mailshift_worker_messages_copied_total counter\n"
	         "mailshift_worker_messages_copied_total %llu\n"
	         "# HELP mailshift_worker_bytes_copied_total Bytes appended to destinations.\n"
	         "# TYPE mailshift_worker_bytes_copied_total counter\n"
	         "mailshift_worker_bytes_copied_total %llu\n"
	         "# HELP mailshift_worker_errors_total Message and folder errors recorded.\n"
	         "# TYPE mailshift_worker_errors_total counter\n"
	         "mailshift_worker_errors_total %llu\n",
	         unready_reason(h) == NULL ? 1 : 0, running, w->capacity,
	         (unsigned long long)atomic_load(&w->counters.runs),
	         (unsigned long long)atomic_load(&w->counters.runs_failed),
	         (unsigned long long)atomic_load(&w->counters.messages),
	         (unsigned long long)atomic_load(&w->counters.bytes),
	         (unsigned long long)atomic_load(&w->counters.errors));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
	struct worker_health *h = cls;
	const char *why;
	char body[4096];

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
	if (strcmp(url, "/healthz") == 0)
		return respond(conn, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}\n");
	if (strcmp(url, "/readyz") == 0) {
		why = unready_reason(h);
		if (why == NULL)
			return respond(conn, MHD_HTTP_OK, "application/json",
			               "{\"status\":\"ready\"}\n");
		snprintf(body, sizeof(body), "{\"status\":\"unready\",\"reason\":\"%s\"}\n", why);
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body);
	}
	if (strcmp(url, "/metrics") == 0) {
		metrics(h, body, sizeof(body));
		return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", body);
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n");
}

/* "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" (every address). */
static int listen_address(const char *spec, struct addrinfo **ai_r, char *err, size_t errlen)
{
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	char host[256];
	size_t hlen;
	int rc;

	if (colon == NULL || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) < 1 ||
	    atoi(colon + 1) > 65535) {
		snprintf(
		    err, errlen,
		    "--listen (MAILSHIFT_WORKER_LISTEN) %s: expected ADDR:PORT (port 1..65535)",
		    spec);
		return -1;
	}
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "--listen (MAILSHIFT_WORKER_LISTEN): address too long");
		return -1;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(hlen > 0 ? host : NULL, colon + 1, &hints, ai_r);
	if (rc != 0) {
		snprintf(err, errlen, "--listen (MAILSHIFT_WORKER_LISTEN) %s: %s", host,
		         gai_strerror(rc));
		return -1;
	}
	return 0;
}

int worker_health_start(struct worker *w, struct queue_consumer *consumer, const char *spec,
                        struct worker_health **h_r, char *err, size_t errlen)
{
	struct worker_health *h;
	struct addrinfo *ai = NULL;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	*h_r = NULL;
	if (listen_address(spec, &ai, err, errlen) < 0)
		return -1;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->w = w;
	h->consumer = consumer;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* Probes and a scraper: a few connections, each short. */
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
	                             ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, 16,
	                             MHD_OPTION_CONNECTION_TIMEOUT, 10, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (h->daemon == NULL) {
		snprintf(err, errlen,
		         "--listen (MAILSHIFT_WORKER_LISTEN) %s: cannot listen there (in use, or "
		         "not an address"
		         " of this host)",
		         spec);
		free(h);
		return -1;
	}
	log_info("health: listening on %s (/healthz, /readyz, /metrics)", spec);
	*h_r = h;
	return 0;
}

void worker_health_stop(struct worker_health **hp)
{
	struct worker_health *h = *hp;

	if (h == NULL)
		return;
	MHD_stop_daemon(h->daemon);
	free(h);
	*hp = NULL;
}
