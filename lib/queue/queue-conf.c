/* The operator's librdkafka settings for a real cluster: a properties file
 * and MAILSHIFT_KAFKA_* variables, applied after mailshift's own settings
 * (queue.c).  Kubernetes mounts secrets as files: a variable ending in _FILE
 * gives the property the file's content, so sasl.password never sits in the
 * environment.  No value is ever put in an error: some are secrets. */
#include "queue-private.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_PREFIX "MAILSHIFT_KAFKA_"
#define CONF_VALUE_MAX 8192

extern char **environ;

/* Set by mailshift itself: an operator's value would break the protocol
 * between coordinator and workers, or is given by its own setting. */
static const char *const owned[] = {
    "bootstrap.servers",        "group.id",          "client.id",          "enable.auto.commit",
    "enable.auto.offset.store", "auto.offset.reset", "enable.idempotence", NULL,
};

/* Variables of the MAILSHIFT_KAFKA_ family that are not properties. */
static const char *const not_properties[] = {"PROPERTIES_FILE", NULL};

static bool is_owned(const char *name)
{
	for (size_t i = 0; owned[i] != NULL; i++)
		if (strcmp(owned[i], name) == 0)
			return true;
	return false;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *from,
                    char *err, size_t errlen)
{
	char errstr[512];
	rd_kafka_conf_res_t res;

	if (is_owned(name)) {
		snprintf(err, errlen, "%s: the Kafka property %s is set by mailshift, not here",
		         from, name);
		return -1;
	}
	res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
	if (res == RD_KAFKA_CONF_UNKNOWN) {
		snprintf(err, errlen, "%s: unknown Kafka property %s", from, name);
		return -1;
	}
	/* librdkafka's message quotes the value: only the name is said. */
	if (res != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "%s: invalid value for the Kafka property %s", from, name);
		return -1;
	}
	return 0;
}

/* Reads a whole small file into *value_r (malloc()ed, one trailing newline
 * dropped: secrets are often written with echo). */
static int file_value(const char *path, const char *from, char **value_r, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	*value_r = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "%s: open %s: %s", from, path, strerror(errno));
		return -1;
	}
	buf = malloc(CONF_VALUE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = fread(buf, 1, CONF_VALUE_MAX + 1, f);
	fclose(f);
	if (n > CONF_VALUE_MAX) {
		snprintf(err, errlen, "%s: %s is longer than %d bytes", from, path, CONF_VALUE_MAX);
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n) {
		snprintf(err, errlen, "%s: %s is empty or holds a NUL byte", from, path);
		free(buf);
		return -1;
	}
	*value_r = buf;
	return 0;
}

/* Java-style properties, the subset librdkafka's tools take: key=value per
 * line, # and ! comments, blank lines; whitespace around both trimmed. */
static int properties_file(rd_kafka_conf_t *conf, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[CONF_VALUE_MAX], from[512];
	int lineno = 0, ret = -1;

	if (f == NULL) {
		snprintf(err, errlen, "MAILSHIFT_KAFKA_PROPERTIES_FILE: open %s: %s", path,
		         strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *key = line, *eq, *value, *end;

		lineno++;
		snprintf(from, sizeof(from), "%s line %d", path, lineno);
		key += strspn(key, " \t");
		if (*key == '#' || *key == '!' || strspn(key, " \t\r\n") == strlen(key))
			continue;
		if (strchr(key, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s: line too long", from);
			goto out;
		}
		eq = strchr(key, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "%s: expected name=value", from);
			goto out;
		}
		value = eq + 1;
		for (end = eq; end > key && isspace((unsigned char)end[-1]); end--)
			;
		*end = '\0';
		value += strspn(value, " \t");
		for (end = value + strlen(value); end > value && isspace((unsigned char)end[-1]);
		     end--)
			;
		*end = '\0';
		if (conf_set(conf, key, value, from, err, errlen) < 0)
			goto out;
	}
	ret = 0;
out:
	fclose(f);
	return ret;
}

/* MAILSHIFT_KAFKA_SASL_PASSWORD_FILE -> "sasl.password", file: true. */
static int env_property(const char *var, size_t var_len, char *name, size_t namesize, bool *file_r)
{
	size_t len = var_len - strlen(CONF_PREFIX);
	const char *p = var + strlen(CONF_PREFIX);

	*file_r = len > 5 && strncmp(p + len - 5, "_FILE", 5) == 0;
	if (*file_r)
		len -= 5;
	if (len == 0 || len >= namesize)
		return -1;
	for (size_t i = 0; i < len; i++)
		name[i] = p[i] == '_' ? '.' : (char)tolower((unsigned char)p[i]);
	name[len] = '\0';
	return 0;
}

int queue_conf_passthrough(rd_kafka_conf_t *conf, char *err, size_t errlen)
{
	const char *path = getenv("MAILSHIFT_KAFKA_PROPERTIES_FILE");

	if (path != NULL && properties_file(conf, path, err, errlen) < 0)
		return -1;
	for (char **e = environ; *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		char var[256], name[256];
		char *value = NULL;
		bool file, skip = false;
		int ret;

		if (eq == NULL || strncmp(*e, CONF_PREFIX, strlen(CONF_PREFIX)) != 0 ||
		    (size_t)(eq - *e) >= sizeof(var))
			continue;
		snprintf(var, sizeof(var), "%.*s", (int)(eq - *e), *e);
		for (size_t i = 0; not_properties[i] != NULL; i++)
			skip |= strcmp(var + strlen(CONF_PREFIX), not_properties[i]) == 0;
		if (skip)
			continue;
		if (env_property(var, strlen(var), name, sizeof(name), &file) < 0) {
			snprintf(err, errlen, "%s: not a Kafka property name", var);
			return -1;
		}
		if (file && file_value(eq + 1, var, &value, err, errlen) < 0)
			return -1;
		ret = conf_set(conf, name, file ? value : eq + 1, var, err, errlen);
		if (value != NULL) {
			/* The value may be a password: not left in freed memory. */
			explicit_bzero(value, strlen(value));
			free(value);
		}
		if (ret < 0)
			return -1;
	}
	return 0;
}
