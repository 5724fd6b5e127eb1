/* The HTTP server (http.h): listening, the request's life (body collected
 * within a bound, auth, route, reply), the routes, the tokens, the static
 * dashboard files and the request counters of /metrics. */
#include "http.h"

#include "api.h"
#include "log.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A body larger than this is refused (413): an accounts CSV of 100,000
 * rows fits. */
#define HTTP_MAX_BODY (32u << 20)
/* Connections served at once (a thread each); long polls hold one. */
#define HTTP_MAX_CONNECTIONS 64
/* Store connections the requests share (PostgreSQL handles are not
 * thread-safe: a request holds one at a time). */
#define HTTP_POOL_SIZE 6
#define HTTP_MAX_TOKENS 64

struct token {
	char name[64];
	char *secret;
};

/* Route classes, the label of the request metrics. */
enum route_class {
	RC_HEALTH,
	RC_METRICS,
	RC_MIGRATIONS,
	RC_PASSES,
	RC_ACCOUNTS,
	RC_SERVERS,
	RC_REPORTS,
	RC_UI,
	RC_OTHER,
	RC_COUNT
};
static const char *const rc_names[RC_COUNT] = {
    "health", "metrics", "migrations", "passes", "accounts", "servers", "reports", "ui", "other"};

/* Duration buckets (seconds) of the request histogram. */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
#define MAX_STATUSES 16

struct route_stats {
	int status[MAX_STATUSES];
	unsigned long long count[MAX_STATUSES];
	unsigned long long bucket[NBUCKETS];
	unsigned long long observed;
	double sum;
};

struct http_server {
	struct http_config cfg;
	struct MHD_Daemon *daemon;
	struct api_pool *pool;
	struct token tokens[HTTP_MAX_TOKENS];
	size_t ntokens;
	pthread_mutex_t stats_lock;
	struct route_stats stats[RC_COUNT];
};

/* One request's state between libmicrohttpd's calls. */
struct http_request {
	char *body;
	size_t len, cap;
	bool too_big;
	struct timespec started;
};

typedef void api_handler(struct api_req *r);

struct route {
	const char *method;
	const char *pattern; /* segments; "*" matches one */
	api_handler *handler;
	enum route_class rc;
};

static const struct route routes[] = {
    {"GET", "v1/migrations", api_migrations_list, RC_MIGRATIONS},
    {"POST", "v1/migrations", api_migrations_import, RC_MIGRATIONS},
    {"GET", "v1/migrations/*", api_migration_get, RC_MIGRATIONS},
    {"POST", "v1/migrations/*/verify", api_migration_verify, RC_MIGRATIONS},
    {"POST", "v1/migrations/*/pause", api_migration_control, RC_MIGRATIONS},
    {"POST", "v1/migrations/*/resume", api_migration_control, RC_MIGRATIONS},
    {"POST", "v1/migrations/*/cancel", api_migration_control, RC_MIGRATIONS},
    {"GET", "v1/migrations/*/passes", api_passes_list, RC_PASSES},
    {"POST", "v1/migrations/*/passes", api_passes_start, RC_PASSES},
    {"GET", "v1/migrations/*/passes/*", api_pass_get, RC_PASSES},
    {"GET", "v1/migrations/*/passes/*/wait", api_pass_wait, RC_PASSES},
    {"POST", "v1/migrations/*/passes/*/retry", api_pass_retry, RC_PASSES},
    {"GET", "v1/migrations/*/accounts", api_accounts_list, RC_ACCOUNTS},
    {"POST", "v1/migrations/*/accounts", api_accounts_add, RC_ACCOUNTS},
    {"GET", "v1/migrations/*/accounts/*", api_account_get, RC_ACCOUNTS},
    {"DELETE", "v1/migrations/*/accounts/*", api_account_delete, RC_ACCOUNTS},
    {"PUT", "v1/migrations/*/accounts/*/password", api_account_password, RC_ACCOUNTS},
    {"POST", "v1/migrations/*/accounts/*/pause", api_account_control, RC_ACCOUNTS},
    {"POST", "v1/migrations/*/accounts/*/resume", api_account_control, RC_ACCOUNTS},
    {"POST", "v1/migrations/*/accounts/*/cancel", api_account_control, RC_ACCOUNTS},
    {"GET", "v1/migrations/*/servers", api_servers_list, RC_SERVERS},
    {"PATCH", "v1/migrations/*/servers/*", api_server_patch, RC_SERVERS},
    {"POST", "v1/migrations/*/accounts/*/empty-destination", api_account_empty, RC_ACCOUNTS},
    {"GET", "v1/migrations/*/accounts/*/proof", api_account_proof, RC_REPORTS},
    {"POST", "v1/migrations/*/estimate", api_estimate, RC_REPORTS},
    {"POST", "v1/migrations/*/proof", api_proof_run, RC_REPORTS},
    {"GET", "v1/migrations/*/proof", api_proofs_summary, RC_REPORTS},
    {"GET", "v1/migrations/*/errors", api_errors_list, RC_REPORTS},
    {"GET", "v1/migrations/*/report", api_report, RC_REPORTS},
    {"GET", "v1/migrations/*/throughput", api_throughput, RC_REPORTS},
    {"GET", "healthz", api_healthz, RC_HEALTH},
    {"GET", "readyz", api_readyz, RC_HEALTH},
    {"GET", "metrics", api_metrics, RC_METRICS},
};

/* ---- tokens ---- */

/* name:token or token per line; blank lines and # comments skipped.  A
 * token is never logged: errors name the line. */
static int tokens_load(struct http_server *srv, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	int lineno = 0, ret = -1;

	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = line, *colon, *secret;
		size_t n;

		lineno++;
		n = strcspn(s, "\r\n");
		s[n] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		if (srv->ntokens == HTTP_MAX_TOKENS) {
			snprintf(err, errlen, "%s: more than %d tokens", path, HTTP_MAX_TOKENS);
			goto out;
		}
		colon = strchr(s, ':');
		secret = colon != NULL ? colon + 1 : s;
		if (strlen(secret) < 16) {
			snprintf(err, errlen, "%s:%d: a token must be at least 16 characters", path,
			         lineno);
			goto out;
		}
		if (colon != NULL)
			snprintf(srv->tokens[srv->ntokens].name, sizeof(srv->tokens[0].name),
			         "%.*s", (int)(colon - s), s);
		else
			snprintf(srv->tokens[srv->ntokens].name, sizeof(srv->tokens[0].name),
			         "token%d", lineno);
		srv->tokens[srv->ntokens].secret = strdup(secret);
		if (srv->tokens[srv->ntokens].secret == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		srv->ntokens++;
	}
	if (srv->ntokens == 0) {
		snprintf(err, errlen, "%s: no token in the file", path);
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return ret;
}

/* Compares in time independent of where the texts differ. */
static bool secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb > 0 ? lb : 1)];
	return d == 0;
}

/* The token's name for a valid "Bearer TOKEN", else NULL. */
static const char *token_check(const struct http_server *srv, const char *header)
{
	const char *found = NULL;

	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	/* Every token is compared: the time says nothing of which matched. */
	for (size_t i = 0; i < srv->ntokens; i++)
		if (secret_equal(header, srv->tokens[i].secret) && found == NULL)
			found = srv->tokens[i].name;
	return found;
}

/* ---- request metrics ---- */

static void stats_record(struct http_server *srv, enum route_class rc, int status, double secs)
{
	struct route_stats *s = &srv->stats[rc];

	pthread_mutex_lock(&srv->stats_lock);
	for (int i = 0; i < MAX_STATUSES; i++) {
		if (s->status[i] == status || s->status[i] == 0) {
			s->status[i] = status;
			s->count[i]++;
			break;
		}
	}
	for (size_t i = 0; i < NBUCKETS; i++)
		if (secs <= buckets[i])
			s->bucket[i]++;
	s->observed++;
	s->sum += secs;
	pthread_mutex_unlock(&srv->stats_lock);
}

void http_metrics_write(struct api_req *r, char **buf, size_t *len, size_t *cap)
{
	struct http_server *srv = (struct http_server *)r->cfg;

	/* cfg is the server's first member: the server itself. */
	pthread_mutex_lock(&srv->stats_lock);
	api_buf_printf(buf, len, cap,
	               "# HELP mailshift_api_requests_total API requests answered, by route"
	               " class and status code.\n# TYPE mailshift_api_requests_total counter\n");
	for (int rc = 0; rc < RC_COUNT; rc++)
		for (int i = 0; i < MAX_STATUSES && srv->stats[rc].status[i] != 0; i++)
			api_buf_printf(
			    buf, len, cap,
			    "mailshift_api_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
			    rc_names[rc], srv->stats[rc].status[i], srv->stats[rc].count[i]);
	api_buf_printf(buf, len, cap,
	               "# HELP mailshift_api_request_duration_seconds Time to answer an API"
	               " request, by route class.\n"
	               "# TYPE mailshift_api_request_duration_seconds histogram\n");
	for (int rc = 0; rc < RC_COUNT; rc++) {
		const struct route_stats *s = &srv->stats[rc];

		if (s->observed == 0)
			continue;
		for (size_t i = 0; i < NBUCKETS; i++)
			api_buf_printf(buf, len, cap,
			               "mailshift_api_request_duration_seconds_bucket{route=\"%s\","
			               "le=\"%g\"} %llu\n",
			               rc_names[rc], buckets[i], s->bucket[i]);
		api_buf_printf(buf, len, cap,
		               "mailshift_api_request_duration_seconds_bucket{route=\"%s\","
		               "le=\"+Inf\"} %llu\n"
		               "mailshift_api_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		               "mailshift_api_request_duration_seconds_count{route=\"%s\"} %llu\n",
		               rc_names[rc], s->observed, rc_names[rc], s->sum, rc_names[rc],
		               s->observed);
	}
	pthread_mutex_unlock(&srv->stats_lock);
}

/* ---- the dashboard's files ---- */

static const char *content_type_of(const char *path)
{
	static const char *const types[][2] = {{".html", "text/html; charset=utf-8"},
	                                       {".js", "text/javascript; charset=utf-8"},
	                                       {".css", "text/css; charset=utf-8"},
	                                       {".json", "application/json"},
	                                       {".svg", "image/svg+xml"},
	                                       {".png", "image/png"},
	                                       {".ico", "image/x-icon"},
	                                       {".txt", "text/plain; charset=utf-8"}};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return "application/octet-stream";
}

/* GET /ui/...: a file under ui_dir (index.html for a directory); no segment
 * may climb out of it. */
static void ui_file(struct api_req *r)
{
	char path[4096];
	size_t used;
	struct stat sb;
	char *data = NULL;
	int fd = -1;
	ssize_t got;

	used = (size_t)snprintf(path, sizeof(path), "%s", r->cfg->ui_dir);
	for (int i = 1; i < r->nseg && used < sizeof(path); i++) {
		if (r->seg[i][0] == '.' || strchr(r->seg[i], '/') != NULL) {
			api_error(r, 404, "not_found", NULL, "no such file");
			return;
		}
		used += (size_t)snprintf(path + used, sizeof(path) - used, "/%s", r->seg[i]);
	}
	if (used < sizeof(path) && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		used += (size_t)snprintf(path + used, sizeof(path) - used, "/index.html");
	if (used >= sizeof(path) || stat(path, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > (off_t)HTTP_MAX_BODY || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		api_error(r, 404, "not_found", NULL, "no such file");
		return;
	}
	data = malloc((size_t)sb.st_size + 1);
	if (data == NULL || (got = read(fd, data, (size_t)sb.st_size)) != sb.st_size) {
		free(data);
		close(fd);
		api_error(r, 500, "internal", NULL, "cannot read the file");
		return;
	}
	close(fd);
	api_reply_text(r, 200, content_type_of(path), data, (size_t)got);
}

/* ---- routing ---- */

static bool route_matches(const struct route *rt, const struct api_req *r)
{
	const char *p = rt->pattern;
	int i = 0;

	while (*p != '\0') {
		size_t n = strcspn(p, "/");

		if (i >= r->nseg)
			return false;
		if (!(n == 1 && *p == '*') &&
		    (strlen(r->seg[i]) != n || strncmp(p, r->seg[i], n) != 0))
			return false;
		i++;
		p += n;
		if (*p == '/')
			p++;
	}
	return i == r->nseg;
}

/* Splits the path into r->seg; false if it has too many segments. */
static bool path_split(struct api_req *r, const char *url, char **copy_r)
{
	char *copy = strdup(url), *save = NULL, *s;

	*copy_r = copy;
	if (copy == NULL)
		return false;
	for (s = strtok_r(copy, "/", &save); s != NULL; s = strtok_r(NULL, "/", &save)) {
		if (r->nseg == API_MAX_SEGMENTS)
			return false;
		r->seg[r->nseg++] = s;
	}
	return true;
}

static enum route_class dispatch(struct http_server *srv, struct api_req *r, const char *url)
{
	bool path_known = false;
	const char *name;

	if (r->nseg == 0) {
		r->status = 302;
		r->location = "/ui/";
		return RC_UI;
	}
	if (strcmp(r->seg[0], "ui") == 0) {
		if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
			api_error(r, 405, "bad_request", NULL, "%s is not allowed here", r->method);
		else if (r->nseg == 1 && url[strlen(url) - 1] != '/') {
			r->status = 302;
			r->location = "/ui/";
		} else
			ui_file(r);
		return RC_UI;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_matches(&routes[i], r))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, r->method) != 0)
			continue;
		/* Health and metrics are for probes and scrapers: no token. */
		if (strcmp(r->seg[0], "v1") == 0) {
			if (srv->ntokens > 0) {
				name = token_check(
				    srv, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
				                                     "Authorization"));
				if (name == NULL) {
					api_error(r, 401, "unauthorized", NULL,
					          "a valid bearer token is required"
					          " (Authorization: Bearer TOKEN)");
					return routes[i].rc;
				}
				snprintf(r->actor, sizeof(r->actor), "api:%s", name);
			} else {
				snprintf(r->actor, sizeof(r->actor), "api:local");
			}
		}
		routes[i].handler(r);
		return routes[i].rc;
	}
	if (path_known)
		api_error(r, 405, "bad_request", NULL, "%s is not allowed on this path", r->method);
	else
		api_error(r, 404, "not_found", NULL, "no such path");
	return RC_OTHER;
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, struct api_req *r)
{
	struct MHD_Response *resp;
	char *body = NULL;
	size_t len = 0;
	const char *type = "application/json";
	enum MHD_Result ret;

	if (r->json != NULL) {
		body = json_dumps(r->json, JSON_COMPACT);
		len = body != NULL ? strlen(body) : 0;
	} else if (r->text != NULL) {
		body = r->text;
		r->text = NULL;
		len = r->text_len;
		type = r->text_type;
	}
	resp = MHD_create_response_from_buffer(len, body != NULL ? body : (char *)"",
	                                       MHD_RESPMEM_MUST_COPY);
	free(body);
	if (resp == NULL)
		return MHD_NO;
	if (len > 0 || r->json != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (r->location != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_request *hr = *con_cls;
	struct api_req r = {.cfg = &srv->cfg, .pool = srv->pool, .conn = conn, .method = method};
	struct timespec now;
	enum route_class rc;
	enum MHD_Result ret;
	char *copy = NULL;

	(void)version;
	if (hr == NULL) {
		hr = calloc(1, sizeof(*hr));
		if (hr == NULL)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &hr->started);
		*con_cls = hr;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (hr->too_big || hr->len + n > HTTP_MAX_BODY) {
			hr->too_big = true;
			return MHD_YES;
		}
		if (hr->len + n + 1 > hr->cap) {
			size_t cap = hr->cap == 0 ? 4096 : hr->cap;
			char *tmp;

			while (cap < hr->len + n + 1)
				cap *= 2;
			tmp = realloc(hr->body, cap);
			if (tmp == NULL) {
				hr->too_big = true;
				return MHD_YES;
			}
			hr->body = tmp;
			hr->cap = cap;
		}
		memcpy(hr->body + hr->len, upload_data, n);
		hr->len += n;
		hr->body[hr->len] = '\0';
		return MHD_YES;
	}
	r.body = hr->body != NULL ? hr->body : "";
	r.body_len = hr->len;
	r.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	if (hr->too_big) {
		api_error(&r, 413, "bad_request", NULL, "the body is larger than %u bytes",
		          HTTP_MAX_BODY);
		rc = RC_OTHER;
	} else if (!path_split(&r, url, &copy)) {
		api_error(&r, 404, "not_found", NULL, "no such path");
		rc = RC_OTHER;
	} else {
		rc = dispatch(srv, &r, url);
	}
	if (r.status == 0)
		api_error(&r, 500, "internal", NULL, "the handler gave no answer");
	if (r.st != NULL)
		api_pool_give(srv->pool, &r.st);
	ret = queue_reply(conn, &r);
	clock_gettime(CLOCK_MONOTONIC, &now);
	stats_record(srv, rc, r.status,
	             (double)(now.tv_sec - hr->started.tv_sec) +
	                 (double)(now.tv_nsec - hr->started.tv_nsec) / 1e9);
	json_decref(r.json);
	free(r.text);
	free(copy);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_request *hr = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (hr == NULL)
		return;
	if (hr->body != NULL) {
		/* A body may hold passwords (an accounts CSV, a new password). */
		explicit_bzero(hr->body, hr->cap);
		free(hr->body);
	}
	free(hr);
	*con_cls = NULL;
}

/* "ADDR:PORT" into sa; loopback_r says whether it is 127.0.0.0/8. */
static int listen_parse(const char *listen, struct sockaddr_in *sa, bool *loopback_r, char *err,
                        size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	char host[64];
	char *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (colon == NULL || (size_t)(colon - listen) >= sizeof(host)) {
		snprintf(err, errlen, "--listen %s: give ADDR:PORT (an IPv4 address)", listen);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port < 0 || port > 65535 || end == colon + 1) {
		snprintf(err, errlen, "--listen %s: the port must be 0..65535", listen);
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		snprintf(err, errlen, "--listen %s: %s is not an IPv4 address", listen, host);
		return -1;
	}
	sa->sin_port = htons((uint16_t)port);
	*loopback_r = (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
	return 0;
}

int http_server_start(const struct http_config *cfg, struct http_server **srv_r, char *err,
                      size_t errlen)
{
	struct http_server *srv;
	struct sockaddr_in sa;
	bool loopback = false;

	*srv_r = NULL;
	if (listen_parse(cfg->listen, &sa, &loopback, err, errlen) < 0)
		return -1;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->cfg = *cfg;
	pthread_mutex_init(&srv->stats_lock, NULL);
	if (cfg->tokens_file != NULL && tokens_load(srv, cfg->tokens_file, err, errlen) < 0)
		goto fail;
	if (srv->ntokens == 0 && !loopback) {
		snprintf(err, errlen,
		         "refusing to serve the API on %s without tokens: anyone who reaches it"
		         " could drive the migrations; give --api-tokens-file, or listen on"
		         " 127.0.0.1 (local mode)",
		         cfg->listen);
		goto fail;
	}
	if (api_pool_create(cfg->db, HTTP_POOL_SIZE, &srv->pool) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	srv->daemon = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	    srv, MHD_OPTION_END);
	if (srv->daemon == NULL) {
		snprintf(err, errlen,
		         "cannot listen on %s (in use, or not an address of this host)",
		         cfg->listen);
		goto fail;
	}
	log_info("API listening on %s (%s)", cfg->listen,
	         srv->ntokens > 0 ? "bearer tokens required" : "local mode, no tokens");
	*srv_r = srv;
	return 0;
fail:
	http_server_stop(&srv);
	return -1;
}

void http_server_stop(struct http_server **srv)
{
	if (*srv == NULL)
		return;
	if ((*srv)->daemon != NULL)
		MHD_stop_daemon((*srv)->daemon);
	api_pool_destroy(&(*srv)->pool);
	for (size_t i = 0; i < (*srv)->ntokens; i++) {
		explicit_bzero((*srv)->tokens[i].secret, strlen((*srv)->tokens[i].secret));
		free((*srv)->tokens[i].secret);
	}
	pthread_mutex_destroy(&(*srv)->stats_lock);
	free(*srv);
	*srv = NULL;
}
