/* The producer: one librdkafka handle for both topics, jobs and events
 * encoded as protobuf and keyed by account, delivery reports, flush.  Its
 * configuration comes from queue.c; the consumer is in consumer.c. */
#include "queue-private.h"

#include "log.h"
#include "mailshift.pb-c.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_PRODUCE_RETRIES 100 /* x 100 ms of polling while the local queue is full */

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
	conf = queue_kafka_conf_new(brokers, kv, err, errlen);
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
