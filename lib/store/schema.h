/* The numbered schema migrations (1-based versions: entry i is version i+1). */
#ifndef MAILSHIFT_SCHEMA_H
#define MAILSHIFT_SCHEMA_H

#include <stddef.h>

size_t schema_count(void);
const char *schema_sql(size_t i);

#endif
