/* Settings from the environment, checked once at a daemon's start: a bad
 * value is named and refused rather than silently replaced by a default, and
 * the database password can come from a file (a mounted Kubernetes Secret).
 * Errors: 0 on success, -1 with a message in err naming the variable (never
 * a value that could be a secret). */
#ifndef MAILSHIFT_CONFIG_H
#define MAILSHIFT_CONFIG_H

#include <stddef.h>

/* An integer from the variable name in min..max, def when unset or empty. */
int config_env_int(const char *name, long min, long max, long def, long *v_r, char *err,
                   size_t errlen);

/* A yes/no variable: 1/true/yes/on or 0/false/no/off; def when unset. */
int config_env_bool(const char *name, int def, int *v_r, char *err, size_t errlen);

/* Checks the variables every daemon reads (MAILSHIFT_LOG, the PostgreSQL
 * bounds MAILSHIFT_DB_TIMEOUT and MAILSHIFT_DB_STATEMENT_TIMEOUT,
 * MAILSHIFT_KEY_FILE_PERMISSIVE) and loads MAILSHIFT_DB_PASSWORD_FILE: its
 * content becomes libpq's password (PGPASSWORD, in this process only: the
 * conninfo string, which errors may quote, never holds it).  Call at start,
 * before threads. */
int config_env_check(char *err, size_t errlen);

#endif
