/* Settings from the environment, checked at start (config.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_PASSWORD_MAX 1024

int config_env_int(const char *name, long min, long max, long def, long *v_r, char *err,
                   size_t errlen)
{
	const char *v = getenv(name);
	char *end;
	long n;

	*v_r = def;
	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
		snprintf(err, errlen, "%s: must be an integer %ld..%ld", name, min, max);
		return -1;
	}
	*v_r = n;
	return 0;
}

int config_env_bool(const char *name, int def, int *v_r, char *err, size_t errlen)
{
	static const char *const yes[] = {"1", "true", "yes", "on", NULL};
	static const char *const no[] = {"0", "false", "no", "off", NULL};
	const char *v = getenv(name);

	*v_r = def;
	if (v == NULL || *v == '\0')
		return 0;
	for (size_t i = 0; yes[i] != NULL; i++)
		if (strcasecmp(v, yes[i]) == 0) {
			*v_r = 1;
			return 0;
		}
	for (size_t i = 0; no[i] != NULL; i++)
		if (strcasecmp(v, no[i]) == 0) {
			*v_r = 0;
			return 0;
		}
	snprintf(err, errlen, "%s: must be 1 or 0 (true/false, yes/no, on/off)", name);
	return -1;
}

/* MAILSHIFT_DB_PASSWORD_FILE: the file's first line is the password. */
static int db_password_file(char *err, size_t errlen)
{
	const char *path = getenv("MAILSHIFT_DB_PASSWORD_FILE");
	char buf[CONFIG_PASSWORD_MAX + 2];
	FILE *f;
	size_t n;
	int ret = -1;

	if (path == NULL || *path == '\0')
		return 0;
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "MAILSHIFT_DB_PASSWORD_FILE: open %s: %s", path,
		         strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0' || strlen(buf) > CONFIG_PASSWORD_MAX) {
		snprintf(err, errlen,
		         "MAILSHIFT_DB_PASSWORD_FILE: %s: empty or longer than %d bytes", path,
		         CONFIG_PASSWORD_MAX);
		goto out;
	}
	if (setenv("PGPASSWORD", buf, 1) < 0) {
		snprintf(err, errlen, "MAILSHIFT_DB_PASSWORD_FILE: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	return ret;
}

int config_env_check(char *err, size_t errlen)
{
	const char *log = getenv("MAILSHIFT_LOG");
	long v;

	if (log != NULL && *log != '\0' && strcmp(log, "debug") != 0 && strcmp(log, "info") != 0 &&
	    strcmp(log, "warn") != 0 && strcmp(log, "error") != 0) {
		snprintf(err, errlen, "MAILSHIFT_LOG: must be debug, info, warn or error");
		return -1;
	}
	if (config_env_int("MAILSHIFT_DB_TIMEOUT", 1, 3600, 10, &v, err, errlen) < 0 ||
	    config_env_int("MAILSHIFT_DB_STATEMENT_TIMEOUT", 1, 86400, 60, &v, err, errlen) < 0 ||
	    config_env_int("MAILSHIFT_KEY_FILE_PERMISSIVE", 0, 1, 0, &v, err, errlen) < 0)
		return -1;
	return db_password_file(err, errlen);
}
