/* The Kafka bus between coordinator and workers: jobs ("run pass P of
 * account A") and events (progress).  PostgreSQL is the truth; a job may be
 * delivered twice and the worker's lease decides.  Callers never see Kafka
 * or protobuf types.  No secret is ever put on the bus.
 *
 * Errors: functions returning int return 0 on success and a negative value on
 * failure with a message in err (truncated to errlen, never a secret). */
#ifndef MAILSHIFT_QUEUE_H
#define MAILSHIFT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values equal the proto Event.Kind enum. */
#define QUEUE_EVENT_UNSPECIFIED 0
#define QUEUE_EVENT_ACCOUNT_STARTED 1
#define QUEUE_EVENT_FOLDER_DONE 2
#define QUEUE_EVENT_ACCOUNT_DONE 3
#define QUEUE_EVENT_ACCOUNT_FAILED 4
#define QUEUE_EVENT_PROGRESS 5

struct queue_job {
	int64_t migration_id, account_id;
	int32_t pass, attempt;
	int64_t not_before_ms; /* wall clock, ms since the epoch */
};

/* Strings of a polled event are owned by its queue_msg (valid until
 * queue_msg_done); when publishing, NULL strings are sent as "". */
struct queue_event {
	int64_t migration_id, account_id;
	int32_t pass;
	int kind; /* QUEUE_EVENT_* */
	const char *folder;
	uint64_t messages, bytes, errors;
	const char *worker;
	const char *detail;
	int64_t at_ms;
	int64_t lease_epoch; /* the reporting run; its counts are totals so far */
};

enum queue_topic { QUEUE_TOPIC_JOBS, QUEUE_TOPIC_EVENTS };

/* Writes the topic name into buf: $MAILSHIFT_TOPIC_JOBS or
 * $MAILSHIFT_TOPIC_EVENTS, else $MAILSHIFT_TOPIC_PREFIX (default
 * "mailshift.") followed by "jobs" or "events". */
int queue_topic_name(enum queue_topic topic, char *buf, size_t bufsize, char *err, size_t errlen);

/* Reads a bootstrap list written by mailshift-broker (or any file holding
 * "host:port[,host:port]"), trims whitespace.  *brokers_r is malloc()ed and
 * owned by the caller (free()). */
int queue_brokers_from_file(const char *path, char **brokers_r, char *err, size_t errlen);

/* The topics on a real cluster.  partitions and replication 0 mean the
 * defaults: 16 partitions, replication min(3, brokers in the cluster). */
struct queue_topics_config {
	int create; /* 0: refuse when a topic is missing */
	int partitions, replication;
	int timeout_ms;
};

/* Checks that the jobs and events topics exist (cluster metadata, never an
 * automatic creation) and creates the missing ones through the Admin API
 * (CreateTopics) when cfg->create.  Fails naming the topic when one is
 * missing and may not or cannot be created; warns when one has fewer
 * partitions than asked for (no more workers than partitions get jobs). */
int queue_topics_ensure(const char *brokers, const struct queue_topics_config *cfg, char *err,
                        size_t errlen);

/* Producer.  Publishing only queues the message; queue_producer_flush reports
 * whether everything queued since the previous flush was delivered.  Safe to
 * use from several threads. */
struct queue_producer;

int queue_producer_create(const char *brokers, struct queue_producer **producer_r, char *err,
                          size_t errlen);
/* Topic jobs, key = account id and attempt (a job published again goes to
 * another partition; the lease, not the order, decides who runs it). */
int queue_job_publish(struct queue_producer *p, const struct queue_job *job, char *err,
                      size_t errlen);
/* Topic events, key = account id. */
int queue_event_publish(struct queue_producer *p, const struct queue_event *ev, char *err,
                        size_t errlen);
/* Waits until every queued message is delivered.  Fails if some were not
 * delivered within timeout_ms or if any delivery since the previous flush
 * failed (then the failures are reset). */
int queue_producer_flush(struct queue_producer *p, int timeout_ms, char *err, size_t errlen);
/* Unflushed messages are given up to 5 s, then dropped. */
void queue_producer_destroy(struct queue_producer **p);

/* Consumer in a group.  Offsets are stored only by queue_msg_done and
 * committed in the background; a partition's offset never moves past a
 * message that is not done, so a crash replays rather than loses jobs.
 * Poll, pause, resume and destroy from one thread; queue_msg_done may be
 * called from any thread.  Keep polling even when not taking work: polling
 * keeps the member in its group. */
struct queue_consumer;
/* One polled message; holds the decoded payload until queue_msg_done. */
struct queue_msg;

/* Subscribes to the jobs topic.  client_id names this member in broker logs. */
int queue_consumer_create(const char *brokers, const char *group, const char *client_id,
                          struct queue_consumer **c_r, char *err, size_t errlen);
/* Subscribes to the events topic (coordinator side). */
int queue_event_consumer_create(const char *brokers, const char *group, const char *client_id,
                                struct queue_consumer **c_r, char *err, size_t errlen);

/* Waits up to timeout_ms (-1: forever) for the next job.  Returns 1 with
 * *job_r and *msg_r set, 0 on timeout, <0 on a fatal error.  A payload that
 * does not decode is logged with topic/partition/offset, its offset stored,
 * and skipped.  Only for a consumer from queue_consumer_create. */
int queue_job_poll(struct queue_consumer *c, int timeout_ms, struct queue_job *job_r,
                   struct queue_msg **msg_r, char *err, size_t errlen);
/* The same for events; the strings in *ev_r live until queue_msg_done(msg).
 * Only for a consumer from queue_event_consumer_create. */
int queue_event_poll(struct queue_consumer *c, int timeout_ms, struct queue_event *ev_r,
                     struct queue_msg **msg_r, char *err, size_t errlen);

/* The job's ownership has moved to PostgreSQL (or the job was dropped): store
 * its offset, committed by the auto-commit.  Frees *msg and sets it to NULL.
 * Every msg must be done before its consumer is destroyed. */
void queue_msg_done(struct queue_consumer *c, struct queue_msg **msg);

/* Stop/restart fetching on all assigned partitions (the worker is full).
 * The pause also applies to partitions assigned by later rebalances.  A
 * message fetched before the pause may still be returned by the next poll. */
void queue_consumer_pause(struct queue_consumer *c);
void queue_consumer_resume(struct queue_consumer *c);

/* Number of partitions assigned to this member by the last rebalance (0
 * while joining or rebalancing); for readiness checks and tests. */
int queue_consumer_assigned(struct queue_consumer *c);

/* The member is in its group: the last rebalance assigned its partitions,
 * none perhaps (more members than partitions).  Any thread may ask (the
 * worker's /readyz). */
bool queue_consumer_joined(struct queue_consumer *c);

/* Leaves the group (committing stored offsets) and frees the consumer. */
void queue_consumer_destroy(struct queue_consumer **c);

#endif
