/* Settings from the environment (lib/base/config.c) and the operator's
 * librdkafka settings (lib/queue/queue-conf.c): values checked and named,
 * properties mapped from variable names, secrets read from files and never
 * put in an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "queue-private.h"

#define SECRET "S3cretNeverShown"

static char dir[] = "/tmp/mailshift-test-settings.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_env_int(void **state)
{
	char err[256] = "";
	long v;

	(void)state;
	unsetenv("MS_TEST_INT");
	assert_int_equal(config_env_int("MS_TEST_INT", 1, 10, 7, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);
	setenv("MS_TEST_INT", "10", 1);
	assert_int_equal(config_env_int("MS_TEST_INT", 1, 10, 7, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 10);
	for (const char *const *bad = (const char *const[]){"11", "0", "x", "5s", " ", NULL};
	     *bad != NULL; bad++) {
		setenv("MS_TEST_INT", *bad, 1);
		assert_int_equal(config_env_int("MS_TEST_INT", 1, 10, 7, &v, err, sizeof(err)), -1);
		assert_string_equal(err, "MS_TEST_INT: must be an integer 1..10");
	}
	unsetenv("MS_TEST_INT");
}

static void test_env_bool(void **state)
{
	char err[256] = "";
	int v;

	(void)state;
	setenv("MS_TEST_BOOL", "Off", 1);
	assert_int_equal(config_env_bool("MS_TEST_BOOL", 1, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	setenv("MS_TEST_BOOL", "yes", 1);
	assert_int_equal(config_env_bool("MS_TEST_BOOL", 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1);
	setenv("MS_TEST_BOOL", "maybe", 1);
	assert_int_equal(config_env_bool("MS_TEST_BOOL", 0, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "MS_TEST_BOOL"));
	unsetenv("MS_TEST_BOOL");
}

static void test_db_password_file(void **state)
{
	char err[256] = "";

	(void)state;
	unsetenv("PGPASSWORD");
	setenv("MAILSHIFT_DB_PASSWORD_FILE", write_file("pw", SECRET "\n"), 1);
	assert_int_equal(config_env_check(err, sizeof(err)), 0);
	assert_string_equal(getenv("PGPASSWORD"), SECRET);
	setenv("MAILSHIFT_DB_PASSWORD_FILE", write_file("empty", "\n"), 1);
	assert_int_equal(config_env_check(err, sizeof(err)), -1);
	assert_non_null(strstr(err, "MAILSHIFT_DB_PASSWORD_FILE"));
	unsetenv("MAILSHIFT_DB_PASSWORD_FILE");
	setenv("MAILSHIFT_LOG", "loud", 1);
	assert_int_equal(config_env_check(err, sizeof(err)), -1);
	assert_string_equal(err, "MAILSHIFT_LOG: must be debug, info, warn or error");
	unsetenv("MAILSHIFT_LOG");
	unsetenv("PGPASSWORD");
}

/* The property's value in conf, or "" when unset. */
static const char *conf_value(rd_kafka_conf_t *conf, const char *name)
{
	static char buf[512];
	size_t size = sizeof(buf);

	if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK)
		return "";
	return buf;
}

static void test_kafka_passthrough(void **state)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512] = "";

	(void)state;
	setenv(
	    "MAILSHIFT_KAFKA_PROPERTIES_FILE",
	    write_file("kafka.properties",
	               "# a comment\n! another\n\n  socket.timeout.ms = 1234  \nsasl.username=u\n"),
	    1);
	setenv("MAILSHIFT_KAFKA_SOCKET_TIMEOUT_MS", "4321", 1); /* after the file: wins */
	setenv("MAILSHIFT_KAFKA_SASL_PASSWORD_FILE", write_file("sasl", SECRET "\n"), 1);
	assert_int_equal(queue_conf_passthrough(conf, err, sizeof(err)), 0);
	assert_string_equal(conf_value(conf, "socket.timeout.ms"), "4321");
	assert_string_equal(conf_value(conf, "sasl.username"), "u");
	assert_string_equal(conf_value(conf, "sasl.password"), SECRET);
	unsetenv("MAILSHIFT_KAFKA_SOCKET_TIMEOUT_MS");
	unsetenv("MAILSHIFT_KAFKA_SASL_PASSWORD_FILE");
	unsetenv("MAILSHIFT_KAFKA_PROPERTIES_FILE");

	/* Named, never the value. */
	setenv("MAILSHIFT_KAFKA_SECURITY_PROTOCOL", SECRET, 1);
	assert_int_equal(queue_conf_passthrough(conf, err, sizeof(err)), -1);
	assert_string_equal(err, "MAILSHIFT_KAFKA_SECURITY_PROTOCOL: invalid value for the Kafka"
	                         " property security.protocol");
	unsetenv("MAILSHIFT_KAFKA_SECURITY_PROTOCOL");
	setenv("MAILSHIFT_KAFKA_NO_SUCH", "1", 1);
	assert_int_equal(queue_conf_passthrough(conf, err, sizeof(err)), -1);
	assert_string_equal(err, "MAILSHIFT_KAFKA_NO_SUCH: unknown Kafka property no.such");
	unsetenv("MAILSHIFT_KAFKA_NO_SUCH");
	setenv("MAILSHIFT_KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092", 1);
	assert_int_equal(queue_conf_passthrough(conf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bootstrap.servers is set by mailshift"));
	unsetenv("MAILSHIFT_KAFKA_BOOTSTRAP_SERVERS");
	setenv("MAILSHIFT_KAFKA_PROPERTIES_FILE", write_file("bad.properties", "x\n" SECRET "\n"),
	       1);
	assert_int_equal(queue_conf_passthrough(conf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad.properties line 1: expected name=value"));
	assert_null(strstr(err, SECRET));
	unsetenv("MAILSHIFT_KAFKA_PROPERTIES_FILE");
	rd_kafka_conf_destroy(conf);
}

static void test_topic_names(void **state)
{
	char name[256], err[256] = "";

	(void)state;
	unsetenv("MAILSHIFT_TOPIC_PREFIX");
	unsetenv("MAILSHIFT_TOPIC_JOBS");
	assert_int_equal(queue_topic_name(QUEUE_TOPIC_JOBS, name, sizeof(name), err, sizeof(err)),
	                 0);
	assert_string_equal(name, "mailshift.jobs");
	setenv("MAILSHIFT_TOPIC_PREFIX", "acme-", 1);
	setenv("MAILSHIFT_TOPIC_JOBS", "ops.mail.jobs", 1);
	assert_int_equal(queue_topic_name(QUEUE_TOPIC_JOBS, name, sizeof(name), err, sizeof(err)),
	                 0);
	assert_string_equal(name, "ops.mail.jobs");
	assert_int_equal(queue_topic_name(QUEUE_TOPIC_EVENTS, name, sizeof(name), err, sizeof(err)),
	                 0);
	assert_string_equal(name, "acme-events");
	setenv("MAILSHIFT_TOPIC_JOBS", "bad name", 1);
	assert_int_equal(queue_topic_name(QUEUE_TOPIC_JOBS, name, sizeof(name), err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "MAILSHIFT_TOPIC_JOBS holds a character"));
	unsetenv("MAILSHIFT_TOPIC_JOBS");
	unsetenv("MAILSHIFT_TOPIC_PREFIX");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env_int),          cmocka_unit_test(test_env_bool),
	    cmocka_unit_test(test_db_password_file), cmocka_unit_test(test_kafka_passthrough),
	    cmocka_unit_test(test_topic_names),
	};
	int ret;
	char cmd[128];

	if (mkdtemp(dir) == NULL)
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		ret = ret != 0 ? ret : 1;
	return ret;
}
