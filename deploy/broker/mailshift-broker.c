/* mailshift-broker: the local and test Kafka broker, librdkafka's mock
 * cluster (a real Kafka-protocol broker on loopback) in a small program.
 *
 * Writes the bootstrap list to --bootstrap-file once the topics exist, runs
 * until SIGTERM or SIGINT, then removes the file.  Fault injection: SIGUSR1
 * takes every broker down (connections cut, new ones refused), SIGUSR2 brings
 * them back.  Everything lives in memory and is lost on exit. */
#include "log.h"
#include "queue.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t down_requested;
static volatile sig_atomic_t up_requested;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		down_requested = 1;
	else if (sig == SIGUSR2)
		up_requested = 1;
	else
		stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mailshift-broker --bootstrap-file PATH [--brokers N (1)] "
	           "[--partitions N (8)] [--no-topics]\n"
	           "Topics: $MAILSHIFT_TOPIC_PREFIX (mailshift.) + jobs, events, created\n"
	           "at start unless --no-topics.\n"
	           "Signals: TERM/INT stop, USR1 all brokers down, USR2 all brokers up.\n");
}

static int parse_count(const char *arg, const char *name, int max, int *value_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 1 || v > max) {
		log_error("%s: expected an integer from 1 to %d, got '%s'", name, max, arg);
		return -1;
	}
	*value_r = (int)v;
	return 0;
}

/* Writes "brokers\n" to path through a temporary file and rename(), so a
 * reader sees either no file or the whole list. */
static int bootstrap_file_write(const char *path, const char *brokers)
{
	char tmp[PATH_MAX];
	FILE *f = NULL;
	int n, ret = -1;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_error("%s: path too long", path);
		goto out;
	}
	f = fopen(tmp, "we");
	if (f == NULL) {
		log_error("open %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fprintf(f, "%s\n", brokers) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_error("write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		log_error("close %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		log_error("rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (f != NULL)
		fclose(f);
	if (ret < 0)
		(void)unlink(tmp);
	return ret;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 3)
		log_error("kafka %s: %s", fac, buf);
	else if (level == 4)
		log_warn("kafka %s: %s", fac, buf);
	else if (level <= 6)
		log_info("kafka %s: %s", fac, buf);
	else
		log_debug("kafka %s: %s", fac, buf);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"bootstrap-file", required_argument, NULL, 'f'},
	    {"brokers", required_argument, NULL, 'b'},
	    {"partitions", required_argument, NULL, 'p'},
	    {"no-topics", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const enum queue_topic topics[] = {QUEUE_TOPIC_JOBS, QUEUE_TOPIC_EVENTS};
	const char *bootstrap_path = NULL;
	int broker_cnt = 1, partition_cnt = 8, opt, ret = 1;
	rd_kafka_mock_cluster_t *mcluster = NULL;
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_t *rk = NULL;
	sigset_t block, old;
	struct sigaction sa;
	const char *brokers;
	char errstr[512], topic[256];
	bool file_written = false, no_topics = false;
	size_t i;

	log_init("broker");
	while ((opt = getopt_long(argc, argv, "f:b:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			bootstrap_path = optarg;
			break;
		case 'b':
			if (parse_count(optarg, "--brokers", 16, &broker_cnt) < 0)
				return 2;
			break;
		case 'p':
			if (parse_count(optarg, "--partitions", 1024, &partition_cnt) < 0)
				return 2;
			break;
		case 'n':
			no_topics = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bootstrap_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	/* librdkafka's threads inherit this mask, so the signals reach the
	 * main thread and cut its sleep short. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &block, &old);

	conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	if (rd_kafka_conf_set(conf, "client.id", "mailshift-broker", errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		log_error("config: %s", errstr);
		goto out;
	}
	/* The mock cluster needs a handle for its bookkeeping only. */
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		log_error("kafka: %s", errstr);
		goto out;
	}
	conf = NULL; /* owned by rk */
	mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (mcluster == NULL) {
		log_error("cannot start the mock cluster");
		goto out;
	}
	/* --no-topics: a cluster where the coordinator must create them
	 * (tests/integration/test_deploy.sh). */
	for (i = 0; !no_topics && i < sizeof(topics) / sizeof(topics[0]); i++) {
		rd_kafka_resp_err_t rerr;

		if (queue_topic_name(topics[i], topic, sizeof(topic), errstr, sizeof(errstr)) < 0) {
			log_error("%s", errstr);
			goto out;
		}
		rerr = rd_kafka_mock_topic_create(mcluster, topic, partition_cnt,
		                                  broker_cnt < 3 ? broker_cnt : 3);
		if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
			log_error("create topic %s: %s", topic, rd_kafka_err2str(rerr));
			goto out;
		}
	}
	brokers = rd_kafka_mock_cluster_bootstraps(mcluster);
	if (bootstrap_file_write(bootstrap_path, brokers) < 0)
		goto out;
	file_written = true;
	log_info("%d broker(s) at %s, %d partition(s) per topic, bootstrap list in %s", broker_cnt,
	         brokers, partition_cnt, bootstrap_path);
	printf("%s\n", brokers);
	fflush(stdout);

	while (!stop_requested) {
		const struct timespec tick = {0, 100 * 1000 * 1000};

		if (down_requested) {
			down_requested = 0;
			log_info("fault injection: all brokers down");
			(void)rd_kafka_mock_broker_set_down(mcluster, -1);
		}
		if (up_requested) {
			up_requested = 0;
			log_info("fault injection: all brokers up");
			(void)rd_kafka_mock_broker_set_up(mcluster, -1);
		}
		nanosleep(&tick, NULL);
	}
	log_info("stopping");
	ret = 0;
out:
	if (file_written && unlink(bootstrap_path) != 0)
		log_warn("unlink %s: %s", bootstrap_path, strerror(errno));
	if (mcluster != NULL)
		rd_kafka_mock_cluster_destroy(mcluster);
	if (rk != NULL)
		rd_kafka_destroy(rk);
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return ret;
}
