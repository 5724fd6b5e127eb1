/* What the producer and the consumer share: topic names, the bootstrap list
 * from a file, the librdkafka configuration with its log and error callbacks,
 * and the check that queue.h's event kinds equal the proto's.  The producer
 * is in producer.c, the consumer in consumer.c (queue-private.h). */
#include "queue-private.h"

#include "log.h"
#include "mailshift.pb-c.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_BROKERS_FILE_MAX 4096

_Static_assert(QUEUE_EVENT_UNSPECIFIED == MAILSHIFT__EVENT__KIND__KIND_UNSPECIFIED, "enum");
_Static_assert(QUEUE_EVENT_ACCOUNT_STARTED == MAILSHIFT__EVENT__KIND__ACCOUNT_STARTED, "enum");
_Static_assert(QUEUE_EVENT_FOLDER_DONE == MAILSHIFT__EVENT__KIND__FOLDER_DONE, "enum");
_Static_assert(QUEUE_EVENT_ACCOUNT_DONE == MAILSHIFT__EVENT__KIND__ACCOUNT_DONE, "enum");
_Static_assert(QUEUE_EVENT_ACCOUNT_FAILED == MAILSHIFT__EVENT__KIND__ACCOUNT_FAILED, "enum");
_Static_assert(QUEUE_EVENT_PROGRESS == MAILSHIFT__EVENT__KIND__PROGRESS, "enum");

int queue_topic_name(enum queue_topic topic, char *buf, size_t bufsize, char *err, size_t errlen)
{
	/* A whole name (a cluster's naming rules) wins over the prefix. */
	const char *var =
	    topic == QUEUE_TOPIC_JOBS ? "MAILSHIFT_TOPIC_JOBS" : "MAILSHIFT_TOPIC_EVENTS";
	const char *name = getenv(var);
	const char *prefix = getenv("MAILSHIFT_TOPIC_PREFIX");
	const char *suffix = topic == QUEUE_TOPIC_JOBS ? "jobs" : "events";
	int n;

	if (name == NULL) {
		var = "MAILSHIFT_TOPIC_PREFIX";
		name = prefix != NULL ? prefix : "mailshift.";
	} else
		suffix = "";
	/* Kafka topic names are limited to [A-Za-z0-9._-]. */
	if (name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                      "0123456789._-")] != '\0') {
		snprintf(err, errlen,
		         "%s holds a character not allowed in "
		         "a Kafka topic name (allowed: A-Z a-z 0-9 . _ -)",
		         var);
		return -1;
	}
	n = snprintf(buf, bufsize, "%s%s", name, suffix);
	if (n <= 0 || (size_t)n >= bufsize || n >= QUEUE_TOPIC_MAX) {
		snprintf(err, errlen, "%s is empty or too long", var);
		return -1;
	}
	return 0;
}

int queue_brokers_from_file(const char *path, char **brokers_r, char *err, size_t errlen)
{
	char buf[QUEUE_BROKERS_FILE_MAX + 1];
	const char *start;
	FILE *f = NULL;
	size_t n, len;
	int ret = -1;

	*brokers_r = NULL;
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		goto out;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f)) {
		snprintf(err, errlen, "read %s: %s", path, strerror(errno));
		goto out;
	}
	if (n > QUEUE_BROKERS_FILE_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", path, QUEUE_BROKERS_FILE_MAX);
		goto out;
	}
	buf[n] = '\0';
	if (strlen(buf) != n) {
		snprintf(err, errlen, "%s: holds a NUL byte", path);
		goto out;
	}
	start = buf + strspn(buf, " \t\r\n");
	len = strlen(start);
	while (len > 0 && strchr(" \t\r\n", start[len - 1]) != NULL)
		len--;
	if (len == 0) {
		snprintf(err, errlen, "%s: empty bootstrap list", path);
		goto out;
	}
	if (strcspn(start, " \t\r\n") < len) {
		snprintf(err, errlen, "%s: whitespace inside the bootstrap list", path);
		goto out;
	}
	*brokers_r = strndup(start, len);
	if (*brokers_r == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (f != NULL)
		fclose(f);
	return ret;
}

/* librdkafka's syslog levels mapped onto log.h.  Called from librdkafka's
 * own threads. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (level <= 3)
		log_error("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
	else if (level == 4)
		log_warn("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
	else if (level <= 6)
		log_info("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
	else
		log_debug("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

/* Most errors (broker down, all brokers down) are transient: librdkafka
 * retries on its own, so they are logged and nothing else. */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL)
		log_error("kafka %s: fatal: %s", rd_kafka_name(rk), reason);
	else
		log_warn("kafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

/* Returns a new configuration with bootstrap.servers and the NULL-terminated
 * key/value pairs set, or NULL with err set. */
rd_kafka_conf_t *queue_kafka_conf_new(const char *brokers, const char *const *kv, char *err,
                                      size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];

	if (brokers == NULL || *brokers == '\0') {
		snprintf(err, errlen, "empty bootstrap list");
		goto fail;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "bootstrap.servers: %s", errstr);
		goto fail;
	}
	for (; kv[0] != NULL; kv += 2) {
		if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s: %s", kv[0], errstr);
			goto fail;
		}
	}
	/* A real cluster's settings (security.protocol, sasl.*, ssl.*, and
	 * MAILSHIFT_KAFKA_DEBUG as "debug") come from the operator, after ours:
	 * a properties file, then MAILSHIFT_KAFKA_* variables (queue-conf.c). */
	if (queue_conf_passthrough(conf, err, errlen) < 0)
		goto fail;
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}
