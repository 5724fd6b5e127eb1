/* Logging: one line per event to stderr, "time level [component] message".
 * Never pass a secret to these functions. */
#ifndef MAILSHIFT_LOG_H
#define MAILSHIFT_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Reads MAILSHIFT_LOG (debug|info|warn|error) and sets the component name shown
 * on each line.  Call once at start, before threads. */
void log_init(const char *component);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
