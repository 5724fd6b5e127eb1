/* Liveness, readiness and the Prometheus metrics (text format 0.0.4). */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Readiness waits this long for PostgreSQL to accept a connection. */
#define READY_CONNECT_TIMEOUT_S 2

void api_healthz(struct api_req *r)
{
	api_reply(r, 200, json_pack("{ss}", "status", "ok"));
}

/* Ready when PostgreSQL answers on a connection of its own (not the pool's:
 * a busy pool is not a sick database) and holds the schema this build needs. */
void api_readyz(struct api_req *r)
{
	char err[STORE_ERRLEN] = "";
	struct store *st = NULL;
	bool current = false;

	if (store_open_bounded(r->cfg->db, READY_CONNECT_TIMEOUT_S, &st, err, sizeof(err)) < 0 ||
	    store_schema_current(st, &current, err, sizeof(err)) < 0)
		api_reply(r, 503, json_pack("{ssss}", "status", "unready", "reason", err));
	else if (!current)
		api_reply(r, 503,
		          json_pack("{ssss}", "status", "unready", "reason",
		                    "the database schema is older than this build: run a"
		                    " coordinator command once to apply it"));
	else
		api_reply(r, 200, json_pack("{ss}", "status", "ready"));
	store_close(&st);
}

/* Label values are escaped as the text format asks: \\ \" \n. */
static void label_escape(const char *s, char *out, size_t len)
{
	size_t j = 0;

	for (; *s != '\0' && j + 2 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[j++] = '\\';
			out[j++] = *s == '\n' ? 'n' : *s;
		} else {
			out[j++] = *s;
		}
	}
	out[j] = '\0';
}

struct text {
	char *buf;
	size_t len, cap;
};

static void metric_head(struct text *t, const char *name, const char *type, const char *help)
{
	api_buf_printf(&t->buf, &t->len, &t->cap, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	               type);
}

/* One sample per migration of the number at key. */
static void per_migration(struct text *t, json_t *migs, const char *name, const char *type,
                          const char *help, const char *key)
{
	json_t *mig;
	size_t i;

	metric_head(t, name, type, help);
	json_array_foreach(migs, i, mig)
	{
		api_buf_printf(&t->buf, &t->len, &t->cap,
		               "%s{migration=\"%" JSON_INTEGER_FORMAT "\"} %.0f\n", name,
		               json_integer_value(json_object_get(mig, "id")),
		               json_number_value(json_object_get(mig, key)));
	}
}

void api_metrics(struct api_req *r)
{
	struct store_view_args args = {0};
	struct text t = {0};
	json_t *m, *migs, *workers, *mig, *w, *v;
	const char *state;
	int64_t running = 0;
	size_t i;

	m = api_view(r, STORE_VIEW_METRICS, &args);
	if (m == NULL)
		return;
	migs = json_object_get(m, "migrations");
	workers = json_object_get(m, "workers");
	metric_head(&t, "mailshift_accounts", "gauge", "Accounts of a migration by state.");
	json_array_foreach(migs, i, mig)
	{
		char name[256];

		label_escape(json_string_value(json_object_get(mig, "name")), name, sizeof(name));
		json_object_foreach(json_object_get(mig, "states"), state, v)
		{
			api_buf_printf(&t.buf, &t.len, &t.cap,
			               "mailshift_accounts{migration=\"%" JSON_INTEGER_FORMAT
			               "\",name=\"%s\",state=\"%s\"} %" JSON_INTEGER_FORMAT "\n",
			               json_integer_value(json_object_get(mig, "id")), name, state,
			               json_integer_value(v));
		}
	}
	per_migration(&t, migs, "mailshift_messages_copied_total", "counter",
	              "Messages copied to the destination.", "messages");
	per_migration(&t, migs, "mailshift_bytes_copied_total", "counter",
	              "Bytes of messages copied to the destination.", "bytes");
	per_migration(&t, migs, "mailshift_message_errors_total", "counter",
	              "Messages that failed, each with the server's words in the errors list.",
	              "message_errors");
	per_migration(&t, migs, "mailshift_folders_failed", "gauge",
	              "Folders whose last try failed.", "folders_failed");
	json_array_foreach(workers, i, w)
	{
		running += json_integer_value(json_object_get(w, "running"));
	}
	metric_head(&t, "mailshift_workers_live", "gauge",
	            "Workers whose heartbeat was seen in the last 15 s.");
	api_buf_printf(&t.buf, &t.len, &t.cap, "mailshift_workers_live %zu\n",
	               json_array_size(workers));
	metric_head(&t, "mailshift_worker_accounts_running", "gauge",
	            "Accounts the live workers are copying.");
	api_buf_printf(&t.buf, &t.len, &t.cap, "mailshift_worker_accounts_running %" PRId64 "\n",
	               running);
	metric_head(&t, "mailshift_scheduler_active", "gauge",
	            "1 on the coordinator whose scheduler is the active one.");
	api_buf_printf(&t.buf, &t.len, &t.cap, "mailshift_scheduler_active %d\n",
	               r->cfg->scheduler_active != NULL && *r->cfg->scheduler_active ? 1 : 0);
	json_decref(m);
	http_metrics_write(r, &t.buf, &t.len, &t.cap);
	if (t.buf == NULL) {
		api_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	api_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", t.buf, t.len);
}
