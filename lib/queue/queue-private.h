/* Internals of the Kafka bus (queue.h), shared by the files that cut it by
 * role:
 *   queue-conf.c  the operator's librdkafka settings (file, environment)
 *   admin.c     the topics checked and created through the Admin API
 *   queue.c     topic names, the bootstrap list from a file, the librdkafka
 *               configuration and its log and error callbacks, the check
 *               that the event kinds equal the proto's
 *   producer.c  the producer: jobs and events encoded and published, flush
 *   consumer.c  a consumer of one topic: decoding, rebalance, poll, the
 *               offsets committed behind done messages, pause and resume
 * Not a public interface: only these files include it. */
#ifndef MAILSHIFT_QUEUE_PRIVATE_H
#define MAILSHIFT_QUEUE_PRIVATE_H

#include "queue.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#define QUEUE_TOPIC_MAX 250 /* Kafka's limit is 249 characters */

/* Returns a new configuration with bootstrap.servers and the NULL-terminated
 * key/value pairs set, or NULL with err set.  The caller owns it (until
 * rd_kafka_new takes it). */
rd_kafka_conf_t *queue_kafka_conf_new(const char *brokers, const char *const *kv, char *err,
                                      size_t errlen);

/* Applies the operator's librdkafka settings to conf: the properties file
 * named by MAILSHIFT_KAFKA_PROPERTIES_FILE (key=value lines), then every
 * MAILSHIFT_KAFKA_NAME=value variable as the property "name" (lower case, _
 * becomes .), a MAILSHIFT_KAFKA_NAME_FILE variable as the property "name"
 * with the file's content (secrets: sasl.password, ssl.key.password).  The
 * properties mailshift owns (bootstrap.servers, group.id, client.id...) are
 * refused.  Errors name the variable or the file and line, never a value. */
int queue_conf_passthrough(rd_kafka_conf_t *conf, char *err, size_t errlen);

#endif
