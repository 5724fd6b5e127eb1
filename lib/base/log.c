#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Loaded configuration: written once by log_init before threads start. */
static enum log_level min_level = LOG_LEVEL_INFO;
static const char *component_name = "mailshift";

void log_init(const char *component)
{
	const char *env = getenv("MAILSHIFT_LOG");

	component_name = component;
	if (env == NULL)
		return;
	if (strcmp(env, "debug") == 0)
		min_level = LOG_LEVEL_DEBUG;
	else if (strcmp(env, "warn") == 0)
		min_level = LOG_LEVEL_WARN;
	else if (strcmp(env, "error") == 0)
		min_level = LOG_LEVEL_ERROR;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* One fprintf per line so concurrent threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", stamp, ts.tv_nsec / 1000000, names[level],
	        component_name, line);
}
