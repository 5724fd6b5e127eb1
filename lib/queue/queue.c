#include "queue.h"

#include "log.h"
#include "mailshift.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_TOPIC_MAX 250 /* Kafka's limit is 249 characters */
#define QUEUE_BROKERS_FILE_MAX 4096
#define QUEUE_PRODUCE_RETRIES 100 /* x 100 ms of polling while the local queue is full */

_Static_assert(QUEUE_EVENT_UNSPECIFIED == MAILSHIFT__EVENT__KIND__KIND_UNSPECIFIED, "enum");
_Static_assert(QUEUE_EVENT_ACCOUNT_STARTED == MAILSHIFT__EVENT__KIND__ACCOUNT_STARTED, "enum");
_Static_assert(QUEUE_EVENT_FOLDER_DONE == MAILSHIFT__EVENT__KIND__FOLDER_DONE, "enum");
_Static_assert(QUEUE_EVENT_ACCOUNT_DONE == MAILSHIFT__EVENT__KIND__ACCOUNT_DONE, "enum");
_Static_assert(QUEUE_EVENT_ACCOUNT_FAILED == MAILSHIFT__EVENT__KIND__ACCOUNT_FAILED, "enum");
_Static_assert(QUEUE_EVENT_PROGRESS == MAILSHIFT__EVENT__KIND__PROGRESS, "enum");

struct queue_producer {
	rd_kafka_t *rk;
	char jobs_topic[QUEUE_TOPIC_MAX];
	char events_topic[QUEUE_TOPIC_MAX];

	/* Written by the delivery report callback, which runs in whichever
	 * thread polls or flushes. */
	pthread_mutex_t lock;
	unsigned int failed;     /* deliveries failed since the last flush */
	char failed_reason[256]; /* the first of them */
};

/* What differs between the jobs and the events consumer. */
struct consumer_ops {
	enum queue_topic topic;
	void *(*unpack)(size_t len, const uint8_t *data);
	void (*free_unpacked)(void *payload);
	/* Returns NULL if the decoded payload is usable, else why not. */
	const char *(*check)(const void *payload);
};

/* A polled message.  While linked it sits in its consumer's list of messages
 * whose offsets are not stored yet, in poll order. */
struct queue_msg {
	struct queue_msg *prev, *next;
	bool linked;
	bool done;
	int32_t partition;
	int64_t offset;
	void *payload; /* Mailshift__Job or Mailshift__Event, per ops */
};

struct queue_consumer {
	rd_kafka_t *rk;
	const struct consumer_ops *ops;
	char topic[QUEUE_TOPIC_MAX];

	/* Guards everything below: queue_msg_done may run in another thread
	 * than the poll (and the rebalance callback, which runs inside it). */
	pthread_mutex_t lock;
	bool paused;
	int assigned; /* partitions held since the last rebalance */
	struct queue_msg *head, *tail;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int queue_topic_name(enum queue_topic topic, char *buf, size_t bufsize, char *err, size_t errlen)
{
	const char *prefix = getenv("MAILSHIFT_TOPIC_PREFIX");
	const char *suffix = topic == QUEUE_TOPIC_JOBS ? "jobs" : "events";
	int n;

	if (prefix == NULL)
		prefix = "mailshift.";
	/* Kafka topic names are limited to [A-Za-z0-9._-]. */
	if (prefix[strspn(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "0123456789._-")] != '\0') {
		snprintf(err, errlen,
		         "MAILSHIFT_TOPIC_PREFIX holds a character not allowed in "
		         "a Kafka topic name (allowed: A-Z a-z 0-9 . _ -)");
		return -1;
	}
	n = snprintf(buf, bufsize, "%s%s", prefix, suffix);
	if (n < 0 || (size_t)n >= bufsize || n >= QUEUE_TOPIC_MAX) {
		snprintf(err, errlen, "MAILSHIFT_TOPIC_PREFIX is too long");
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
static rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *const *kv, char *err,
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
	/* MAILSHIFT_KAFKA_DEBUG: librdkafka debug contexts ("fetch,cgrp"), for
	 * operators chasing latency or rebalances. */
	if (getenv("MAILSHIFT_KAFKA_DEBUG") != NULL &&
	    rd_kafka_conf_set(conf, "debug", getenv("MAILSHIFT_KAFKA_DEBUG"), errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "MAILSHIFT_KAFKA_DEBUG: %s", errstr);
		goto fail;
	}
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* ---- producer ---- */

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	struct queue_producer *p = opaque;

	(void)rk;
	if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->failed++ == 0)
		snprintf(p->failed_reason, sizeof(p->failed_reason), "%s: %s",
		         rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
	pthread_mutex_unlock(&p->lock);
}

/* Asks for a topic's metadata now.  Without it the first message to a topic
 * the handle has not seen waits for librdkafka's one-second scan of unknown
 * topics.  A broker that does not answer in time is not an error here: the
 * produce path retries on its own. */
static void topic_metadata_warm(rd_kafka_t *rk, const char *name)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
	const struct rd_kafka_metadata *md = NULL;

	if (rkt == NULL)
		return;
	if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
}

int queue_producer_create(const char *brokers, struct queue_producer **producer_r, char *err,
                          size_t errlen)
{
	/* acks=all: a job counts as published once every in-sync replica has
	 * it.  Idempotence is off: a duplicated job is harmless. */
	/* clang-format off */
	static const char *const kv[] = {
		"client.id", "mailshift",
		"acks", "all",
		"enable.idempotence", "false",
		"linger.ms", "1",
		NULL,
	};
	/* clang-format on */
	struct queue_producer *p = NULL;
	rd_kafka_conf_t *conf = NULL;
	char errstr[512];
	int ret = -1;

	*producer_r = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	pthread_mutex_init(&p->lock, NULL);
	if (queue_topic_name(QUEUE_TOPIC_JOBS, p->jobs_topic, sizeof(p->jobs_topic), err, errlen) <
	        0 ||
	    queue_topic_name(QUEUE_TOPIC_EVENTS, p->events_topic, sizeof(p->events_topic), err,
	                     errlen) < 0)
		goto out;
	conf = kafka_conf_new(brokers, kv, err, errlen);
	if (conf == NULL)
		goto out;
	rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (p->rk == NULL) {
		snprintf(err, errlen, "kafka producer: %s", errstr);
		goto out;
	}
	conf = NULL; /* owned by p->rk */
	topic_metadata_warm(p->rk, p->jobs_topic);
	topic_metadata_warm(p->rk, p->events_topic);
	*producer_r = p;
	p = NULL;
	ret = 0;
out:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	queue_producer_destroy(&p);
	return ret;
}

/* Queues one packed message keyed by the account id, and by attempt for a
 * job (attempt >= 0): a job published again after a worker declined it goes
 * to another partition, so most likely to another worker. */
static int producer_send(struct queue_producer *p, const char *topic, int64_t account_id,
                         int32_t attempt, const ProtobufCMessage *msg, char *err, size_t errlen)
{
	size_t size = protobuf_c_message_get_packed_size(msg);
	rd_kafka_resp_err_t rerr;
	uint8_t *buf = NULL;
	char key[32];
	int n, tries, ret = -1;

	n = attempt > 0 ? snprintf(key, sizeof(key), "%" PRId64 "/%" PRId32, account_id, attempt)
	                : snprintf(key, sizeof(key), "%" PRId64, account_id);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		snprintf(err, errlen, "bad key");
		goto out;
	}
	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	protobuf_c_message_pack(msg, buf);
	for (tries = 0;; tries++) {
		/* F_COPY: librdkafka keeps its own copy; buf stays ours. */
		rerr =
		    rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic),
		                      RD_KAFKA_V_KEY(key, (size_t)n), RD_KAFKA_V_VALUE(buf, size),
		                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= QUEUE_PRODUCE_RETRIES) {
			snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(rerr));
			goto out;
		}
		/* Serving delivery reports is what frees room in the queue. */
		rd_kafka_poll(p->rk, 100);
	}
	rd_kafka_poll(p->rk, 0);
	ret = 0;
out:
	free(buf);
	return ret;
}

int queue_job_publish(struct queue_producer *p, const struct queue_job *job, char *err,
                      size_t errlen)
{
	Mailshift__Job pj = MAILSHIFT__JOB__INIT;

	if (job->account_id <= 0) {
		snprintf(err, errlen, "job without an account id");
		return -1;
	}
	pj.migration_id = job->migration_id;
	pj.account_id = job->account_id;
	pj.pass = job->pass;
	pj.attempt = job->attempt;
	pj.not_before_ms = job->not_before_ms;
	return producer_send(p, p->jobs_topic, job->account_id, job->attempt, &pj.base, err,
	                     errlen);
}

int queue_event_publish(struct queue_producer *p, const struct queue_event *ev, char *err,
                        size_t errlen)
{
	Mailshift__Event pe = MAILSHIFT__EVENT__INIT;

	if (ev->account_id <= 0) {
		snprintf(err, errlen, "event without an account id");
		return -1;
	}
	if (ev->kind < QUEUE_EVENT_UNSPECIFIED || ev->kind > QUEUE_EVENT_PROGRESS) {
		snprintf(err, errlen, "unknown event kind %d", ev->kind);
		return -1;
	}
	pe.migration_id = ev->migration_id;
	pe.account_id = ev->account_id;
	pe.pass = ev->pass;
	pe.kind = (Mailshift__Event__Kind)ev->kind;
	/* The generated struct wants char *; packing only reads them. */
	pe.folder = (char *)(ev->folder != NULL ? ev->folder : "");
	pe.messages = ev->messages;
	pe.bytes = ev->bytes;
	pe.errors = ev->errors;
	pe.worker = (char *)(ev->worker != NULL ? ev->worker : "");
	pe.detail = (char *)(ev->detail != NULL ? ev->detail : "");
	pe.at_ms = ev->at_ms;
	pe.lease_epoch = ev->lease_epoch;
	return producer_send(p, p->events_topic, ev->account_id, 0, &pe.base, err, errlen);
}

int queue_producer_flush(struct queue_producer *p, int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_resp_err_t rerr = rd_kafka_flush(p->rk, timeout_ms);
	unsigned int failed;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	failed = p->failed;
	if (failed > 0) {
		snprintf(err, errlen, "%u message(s) not delivered, first: %s", failed,
		         p->failed_reason);
		ret = -1;
	}
	p->failed = 0;
	pthread_mutex_unlock(&p->lock);
	if (ret == 0 && rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "%d message(s) still undelivered after %d ms",
		         rd_kafka_outq_len(p->rk), timeout_ms);
		ret = -1;
	}
	return ret;
}

void queue_producer_destroy(struct queue_producer **pp)
{
	struct queue_producer *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (p->rk != NULL) {
		if (rd_kafka_flush(p->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warn("queue: dropping %d undelivered message(s)",
			         rd_kafka_outq_len(p->rk));
		rd_kafka_destroy(p->rk);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- consumer ---- */

static void *job_unpack(size_t len, const uint8_t *data)
{
	return mailshift__job__unpack(NULL, len, data);
}

static void job_free(void *payload)
{
	mailshift__job__free_unpacked(payload, NULL);
}

static const char *job_check(const void *payload)
{
	const Mailshift__Job *pj = payload;

	return pj->account_id > 0 ? NULL : "job without an account id";
}

static void *event_unpack(size_t len, const uint8_t *data)
{
	return mailshift__event__unpack(NULL, len, data);
}

static void event_free(void *payload)
{
	mailshift__event__free_unpacked(payload, NULL);
}

static const char *event_check(const void *payload)
{
	const Mailshift__Event *pe = payload;

	return pe->account_id > 0 ? NULL : "event without an account id";
}

static const struct consumer_ops job_ops = {QUEUE_TOPIC_JOBS, job_unpack, job_free, job_check};
static const struct consumer_ops event_ops = {QUEUE_TOPIC_EVENTS, event_unpack, event_free,
                                              event_check};

/* Caller holds c->lock. */
static void msg_unlink(struct queue_consumer *c, struct queue_msg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		c->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		c->tail = m->prev;
	m->prev = m->next = NULL;
	m->linked = false;
}

static void msg_free(struct queue_consumer *c, struct queue_msg *m)
{
	if (m->payload != NULL)
		c->ops->free_unpacked(m->payload);
	free(m);
}

/* Forgets every message whose offset is not stored: after a revoke they can
 * no longer be stored; they will be delivered again, which the lease makes
 * harmless.  Done ones are freed, the others stay with their holder.  Caller
 * holds c->lock. */
static void consumer_forget_all(struct queue_consumer *c)
{
	struct queue_msg *m, *next;

	for (m = c->head; m != NULL; m = next) {
		next = m->next;
		msg_unlink(c, m);
		if (m->done)
			msg_free(c, m);
	}
}

/* Eager protocol: every rebalance revokes everything, then assigns. */
static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct queue_consumer *c = opaque;
	rd_kafka_resp_err_t rerr;

	pthread_mutex_lock(&c->lock);
	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		log_info("queue: %s: assigned %d partition(s) of %s%s", rd_kafka_name(rk),
		         parts->cnt, c->topic, c->paused ? " (paused)" : "");
		rerr = rd_kafka_assign(rk, parts);
		if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_error("queue: %s: assign: %s", rd_kafka_name(rk),
			          rd_kafka_err2str(rerr));
		else
			c->assigned = parts->cnt;
		/* Pause flags are per partition: new partitions start unpaused. */
		if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR && c->paused)
			(void)rd_kafka_pause_partitions(rk, parts);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		log_info("queue: %s: revoked %d partition(s) of %s", rd_kafka_name(rk), parts->cnt,
		         c->topic);
		consumer_forget_all(c);
		c->assigned = 0;
		(void)rd_kafka_assign(rk, NULL);
		break;
	default:
		log_warn("queue: %s: rebalance failed: %s", rd_kafka_name(rk),
		         rd_kafka_err2str(err));
		consumer_forget_all(c);
		c->assigned = 0;
		(void)rd_kafka_assign(rk, NULL);
		break;
	}
	pthread_mutex_unlock(&c->lock);
}

static int consumer_create(const char *brokers, const char *group, const char *client_id,
                           const struct consumer_ops *ops, struct queue_consumer **c_r, char *err,
                           size_t errlen)
{
	/* Eager assignors only (cooperative-sticky is broken in the mock).
	 * Offsets are stored by queue_msg_done alone, once the job belongs to
	 * PostgreSQL, and auto-committed every second.  The same session
	 * timeout for every member, which the mock requires. */
	/* clang-format off */
	static const char *const kv[] = {
		"partition.assignment.strategy", "range,roundrobin",
		"enable.auto.offset.store", "false",
		"enable.auto.commit", "true",
		"auto.commit.interval.ms", "1000",
		"auto.offset.reset", "earliest",
		"session.timeout.ms", "6000",
		"heartbeat.interval.ms", "1000",
		"max.poll.interval.ms", "300000",
		/* Jobs are tiny and rare: hand them over at once rather than
		 * waiting up to the default 500 ms for a fuller fetch. */
		"fetch.wait.max.ms", "50",
		"fetch.error.backoff.ms", "50",
		NULL,
	};
	/* clang-format on */
	rd_kafka_topic_partition_list_t *subs = NULL;
	struct queue_consumer *c = NULL;
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_resp_err_t rerr;
	char errstr[512];
	int ret = -1;

	*c_r = NULL;
	if (group == NULL || *group == '\0' || client_id == NULL || *client_id == '\0') {
		snprintf(err, errlen, "consumer needs a group and a client id");
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c->ops = ops;
	pthread_mutex_init(&c->lock, NULL);
	if (queue_topic_name(ops->topic, c->topic, sizeof(c->topic), err, errlen) < 0)
		goto out;
	conf = kafka_conf_new(brokers, kv, err, errlen);
	if (conf == NULL)
		goto out;
	if (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) !=
	        RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "client.id", client_id, errstr, sizeof(errstr)) !=
	        RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "consumer config: %s", errstr);
		goto out;
	}
	rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (c->rk == NULL) {
		snprintf(err, errlen, "kafka consumer: %s", errstr);
		goto out;
	}
	conf = NULL; /* owned by c->rk */
	/* Logs and errors are then served by rd_kafka_consumer_poll. */
	rd_kafka_poll_set_consumer(c->rk);
	subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, c->topic, RD_KAFKA_PARTITION_UA);
	rerr = rd_kafka_subscribe(c->rk, subs);
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "subscribe %s: %s", c->topic, rd_kafka_err2str(rerr));
		goto out;
	}
	*c_r = c;
	c = NULL;
	ret = 0;
out:
	if (subs != NULL)
		rd_kafka_topic_partition_list_destroy(subs);
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	queue_consumer_destroy(&c);
	return ret;
}

int queue_consumer_create(const char *brokers, const char *group, const char *client_id,
                          struct queue_consumer **c_r, char *err, size_t errlen)
{
	return consumer_create(brokers, group, client_id, &job_ops, c_r, err, errlen);
}

int queue_event_consumer_create(const char *brokers, const char *group, const char *client_id,
                                struct queue_consumer **c_r, char *err, size_t errlen)
{
	return consumer_create(brokers, group, client_id, &event_ops, c_r, err, errlen);
}

/* Returns 1 with *msg_r holding the next decodable, checked payload, 0 on
 * timeout, -1 on a fatal error. */
static int consumer_poll(struct queue_consumer *c, int timeout_ms, struct queue_msg **msg_r,
                         char *err, size_t errlen)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	rd_kafka_message_t *rkm;
	struct queue_msg *m;
	const char *why;
	char fatal[512];
	int wait;

	*msg_r = NULL;
	for (;;) {
		wait = -1;
		if (timeout_ms >= 0) {
			int64_t left = deadline - now_ms();

			wait = left > 0 ? (int)left : 0;
		}
		rkm = rd_kafka_consumer_poll(c->rk, wait);
		if (rkm == NULL)
			goto next;
		if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
				rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal));
				snprintf(err, errlen, "kafka consumer: %s", fatal);
				rd_kafka_message_destroy(rkm);
				return -1;
			}
			if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_warn("queue: %s: %s", rd_kafka_name(c->rk),
				         rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			goto next;
		}
		m = calloc(1, sizeof(*m));
		if (m == NULL) {
			snprintf(err, errlen, "out of memory");
			rd_kafka_message_destroy(rkm);
			return -1;
		}
		m->partition = rkm->partition;
		m->offset = rkm->offset;
		m->payload = c->ops->unpack(rkm->len,
		                            rkm->payload != NULL ? rkm->payload : (const void *)"");
		why = m->payload == NULL ? "does not decode" : c->ops->check(m->payload);
		pthread_mutex_lock(&c->lock);
		m->prev = c->tail;
		if (c->tail != NULL)
			c->tail->next = m;
		else
			c->head = m;
		c->tail = m;
		m->linked = true;
		pthread_mutex_unlock(&c->lock);
		if (why == NULL) {
			rd_kafka_message_destroy(rkm);
			*msg_r = m;
			return 1;
		}
		log_warn("queue: skipping message %s [%" PRId32 "] @ %" PRId64 " (%zu bytes): %s",
		         rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset, rkm->len, why);
		rd_kafka_message_destroy(rkm);
		queue_msg_done(c, &m);
	next:
		if (timeout_ms >= 0 && now_ms() >= deadline)
			return 0;
	}
}

int queue_job_poll(struct queue_consumer *c, int timeout_ms, struct queue_job *job_r,
                   struct queue_msg **msg_r, char *err, size_t errlen)
{
	const Mailshift__Job *pj;
	int ret;

	if (c->ops != &job_ops) {
		snprintf(err, errlen, "queue_job_poll on a consumer of %s", c->topic);
		return -1;
	}
	ret = consumer_poll(c, timeout_ms, msg_r, err, errlen);
	if (ret <= 0)
		return ret;
	pj = (*msg_r)->payload;
	job_r->migration_id = pj->migration_id;
	job_r->account_id = pj->account_id;
	job_r->pass = pj->pass;
	job_r->attempt = pj->attempt;
	job_r->not_before_ms = pj->not_before_ms;
	return 1;
}

int queue_event_poll(struct queue_consumer *c, int timeout_ms, struct queue_event *ev_r,
                     struct queue_msg **msg_r, char *err, size_t errlen)
{
	const Mailshift__Event *pe;
	int ret;

	if (c->ops != &event_ops) {
		snprintf(err, errlen, "queue_event_poll on a consumer of %s", c->topic);
		return -1;
	}
	ret = consumer_poll(c, timeout_ms, msg_r, err, errlen);
	if (ret <= 0)
		return ret;
	pe = (*msg_r)->payload;
	ev_r->migration_id = pe->migration_id;
	ev_r->account_id = pe->account_id;
	ev_r->pass = pe->pass;
	ev_r->kind = (int)pe->kind;
	ev_r->folder = pe->folder;
	ev_r->messages = pe->messages;
	ev_r->bytes = pe->bytes;
	ev_r->errors = pe->errors;
	ev_r->worker = pe->worker;
	ev_r->detail = pe->detail;
	ev_r->at_ms = pe->at_ms;
	ev_r->lease_epoch = pe->lease_epoch;
	return 1;
}

void queue_msg_done(struct queue_consumer *c, struct queue_msg **mp)
{
	struct queue_msg *m = *mp, *it, *next;
	rd_kafka_topic_partition_list_t *offsets;
	rd_kafka_resp_err_t rerr;
	int64_t store = -1;
	int32_t partition;

	if (m == NULL)
		return;
	*mp = NULL;
	pthread_mutex_lock(&c->lock);
	if (!m->linked) {
		/* Forgotten by a rebalance: nothing to store. */
		msg_free(c, m);
		goto out;
	}
	m->done = true;
	partition = m->partition;
	/* Store past the done messages at the head of this partition, never
	 * past one still held: a crash must replay a held job, not lose it. */
	for (it = c->head; it != NULL; it = next) {
		next = it->next;
		if (it->partition != partition)
			continue;
		if (!it->done)
			break;
		if (it->offset + 1 > store)
			store = it->offset + 1;
		msg_unlink(c, it);
		msg_free(c, it);
	}
	if (store < 0)
		goto out;
	offsets = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(offsets, c->topic, partition)->offset = store;
	rerr = rd_kafka_offsets_store(c->rk, offsets);
	if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR)
		rerr = offsets->elems[0].err;
	/* Fails only if the partition went away meanwhile: it is redelivered. */
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_debug("queue: store offset %s [%" PRId32 "] @ %" PRId64 ": %s", c->topic,
		          partition, store, rd_kafka_err2str(rerr));
	rd_kafka_topic_partition_list_destroy(offsets);
out:
	pthread_mutex_unlock(&c->lock);
}

/* Caller holds c->lock. */
static void consumer_set_paused(struct queue_consumer *c, bool paused)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t rerr;

	c->paused = paused;
	rerr = rd_kafka_assignment(c->rk, &parts);
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warn("queue: %s: assignment: %s", rd_kafka_name(c->rk), rd_kafka_err2str(rerr));
		return;
	}
	rerr = paused ? rd_kafka_pause_partitions(c->rk, parts)
	              : rd_kafka_resume_partitions(c->rk, parts);
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("queue: %s: %s: %s", rd_kafka_name(c->rk), paused ? "pause" : "resume",
		         rd_kafka_err2str(rerr));
	log_debug("queue: %s: %s %d partition(s)", rd_kafka_name(c->rk),
	          paused ? "paused" : "resumed", parts->cnt);
	rd_kafka_topic_partition_list_destroy(parts);
}

void queue_consumer_pause(struct queue_consumer *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->paused)
		consumer_set_paused(c, true);
	pthread_mutex_unlock(&c->lock);
}

void queue_consumer_resume(struct queue_consumer *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->paused)
		consumer_set_paused(c, false);
	pthread_mutex_unlock(&c->lock);
}

int queue_consumer_assigned(struct queue_consumer *c)
{
	int n;

	pthread_mutex_lock(&c->lock);
	n = c->assigned;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void queue_consumer_destroy(struct queue_consumer **cp)
{
	struct queue_consumer *c = *cp;
	rd_kafka_resp_err_t rerr;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->rk != NULL) {
		/* Revokes (committing stored offsets) and leaves the group, so
		 * the others get the partitions without waiting for the
		 * session timeout. */
		rerr = rd_kafka_consumer_close(c->rk);
		if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warn("queue: %s: close: %s", rd_kafka_name(c->rk),
			         rd_kafka_err2str(rerr));
		rd_kafka_destroy(c->rk);
	}
	pthread_mutex_lock(&c->lock);
	consumer_forget_all(c);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
