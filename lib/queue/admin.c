/* The topics on a real cluster: checked in the cluster's metadata and the
 * missing ones created through the Admin API (CreateTopics), or a refusal
 * that names them.  The metadata request asks for all topics, so no broker
 * creates one behind our back (auto.create.topics.enable). */
#include "queue-private.h"

#include "log.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TOPICS_PARTITIONS 16
#define TOPICS_REPLICATION 3

/* Partitions of name in md, or -1 when the cluster does not know it. */
static int topic_partitions(const struct rd_kafka_metadata *md, const char *name)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, name) == 0)
			return md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR
			           ? md->topics[i].partition_cnt
			           : -1;
	return -1;
}

/* CreateTopics for the names in missing[0..n); waits for the answer. */
static int topics_create(rd_kafka_t *rk, char *const *missing, size_t n, int partitions,
                         int replication, int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_NewTopic_t *nt[2] = {NULL, NULL};
	rd_kafka_AdminOptions_t *opts = NULL;
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev = NULL;
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **tr;
	char errstr[512];
	size_t cnt;
	int ret = -1;

	for (size_t i = 0; i < n; i++) {
		nt[i] = rd_kafka_NewTopic_new(missing[i], partitions, replication, errstr,
		                              sizeof(errstr));
		if (nt[i] == NULL) {
			snprintf(err, errlen, "topic %s: %s", missing[i], errstr);
			goto out;
		}
	}
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr)) !=
	        RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr)) !=
	        RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "admin options: %s", errstr);
		goto out;
	}
	rd_kafka_CreateTopics(rk, nt, n, opts, q);
	ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
	if (ev == NULL) {
		snprintf(err, errlen, "creating topic %s: no answer from the cluster in %d ms",
		         missing[0], timeout_ms + 5000);
		goto out;
	}
	/* A cluster without a reachable controller (librdkafka's own mock
	 * cluster, the local broker, is one) times out here. */
	if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen,
		         "creating topic %s: %s (create the topics on the cluster and start with "
		         "--no-create-topics)",
		         missing[0], rd_kafka_event_error_string(ev));
		goto out;
	}
	res = rd_kafka_event_CreateTopics_result(ev);
	tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
	for (size_t i = 0; i < cnt; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);

		/* Another coordinator created it meanwhile: as good. */
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
		    e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			const char *msg = rd_kafka_topic_result_error_string(tr[i]);

			snprintf(err, errlen, "creating topic %s: %s (%s)",
			         rd_kafka_topic_result_name(tr[i]), rd_kafka_err2name(e),
			         msg != NULL ? msg : rd_kafka_err2str(e));
			goto out;
		}
		log_info("queue: topic %s created: %d partitions, replication %d",
		         rd_kafka_topic_result_name(tr[i]), partitions, replication);
	}
	ret = 0;
out:
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	if (opts != NULL)
		rd_kafka_AdminOptions_destroy(opts);
	for (size_t i = 0; i < n; i++)
		if (nt[i] != NULL)
			rd_kafka_NewTopic_destroy(nt[i]);
	rd_kafka_queue_destroy(q);
	return ret;
}

int queue_topics_ensure(const char *brokers, const struct queue_topics_config *cfg, char *err,
                        size_t errlen)
{
	static const char *const kv[] = {"allow.auto.create.topics", "false", NULL};
	char names[2][QUEUE_TOPIC_MAX];
	char *missing[2];
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk = NULL;
	rd_kafka_resp_err_t rerr;
	char errstr[512];
	int partitions = cfg->partitions > 0 ? cfg->partitions : TOPICS_PARTITIONS;
	int replication = cfg->replication;
	int timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	size_t nmissing = 0;
	int ret = -1;

	if (queue_topic_name(QUEUE_TOPIC_JOBS, names[0], sizeof(names[0]), err, errlen) < 0 ||
	    queue_topic_name(QUEUE_TOPIC_EVENTS, names[1], sizeof(names[1]), err, errlen) < 0)
		return -1;
	conf = queue_kafka_conf_new(brokers, kv, err, errlen);
	if (conf == NULL)
		return -1;
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "kafka admin client: %s", errstr);
		return -1;
	}
	rerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "Kafka cluster metadata from %s: %s (in %d ms)", brokers,
		         rd_kafka_err2str(rerr), timeout_ms);
		goto out;
	}
	if (replication <= 0)
		replication =
		    md->broker_cnt < TOPICS_REPLICATION ? md->broker_cnt : TOPICS_REPLICATION;
	for (int i = 0; i < 2; i++) {
		int have = topic_partitions(md, names[i]);

		if (have < 0)
			missing[nmissing++] = names[i];
		else if (have < partitions)
			log_warn("queue: topic %s has %d partitions (%d asked for): at most %d "
			         "workers get jobs",
			         names[i], have, partitions, have);
	}
	if (nmissing == 0) {
		ret = 0;
		goto out;
	}
	if (!cfg->create) {
		snprintf(err, errlen,
		         "Kafka topic %s does not exist and topic creation is off "
		         "(--no-create-topics, MAILSHIFT_CREATE_TOPICS=0): create it%s%s, or let "
		         "the coordinator create it",
		         missing[0], nmissing > 1 ? " and " : "", nmissing > 1 ? missing[1] : "");
		goto out;
	}
	ret =
	    topics_create(rk, missing, nmissing, partitions, replication, timeout_ms, err, errlen);
out:
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return ret;
}
