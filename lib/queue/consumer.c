/* The consumer of one topic (jobs or events): decoding and checking a
 * payload, the rebalance callback, polling, the list of messages not yet
 * done and the offsets committed behind them, pause and resume.  Its
 * configuration comes from queue.c; the producer is in producer.c. */
#include "queue-private.h"

#include "log.h"
#include "mailshift.pb-c.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	bool joined;  /* in the group: the last rebalance assigned (maybe nothing) */
	struct queue_msg *head, *tail;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
		c->joined = rerr == RD_KAFKA_RESP_ERR_NO_ERROR;
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
		c->joined = false;
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
	conf = queue_kafka_conf_new(brokers, kv, err, errlen);
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

bool queue_consumer_joined(struct queue_consumer *c)
{
	bool joined;

	pthread_mutex_lock(&c->lock);
	joined = c->joined;
	pthread_mutex_unlock(&c->lock);
	return joined;
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
