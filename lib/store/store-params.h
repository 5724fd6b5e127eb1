/* Query parameters in text form, for the store's modules (and its tests):
 * integers, booleans, strings and PostgreSQL array literals ("{1,2,3}"),
 * each turned into the text libpq sends, with the buffers owned by the
 * struct.  Adding never fails on its own: a parameter that cannot be built
 * (no memory, more than STORE_PARAMS_MAX) marks the set failed, and
 * store_params_failed says so before the statement runs. */
#ifndef MAILSHIFT_STORE_PARAMS_H
#define MAILSHIFT_STORE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_PARAMS_MAX 16

struct store_params {
	const char *values[STORE_PARAMS_MAX]; /* what PQexecParams takes */
	int count;
	bool failed;
	char num[STORE_PARAMS_MAX][24]; /* integer texts */
	char *owned[STORE_PARAMS_MAX];  /* array texts, freed by store_params_free */
};

/* An empty set.  store_params_free releases the array texts: needed after
 * store_param_uids or store_param_ids (also after a failure), harmless
 * otherwise. */
void store_params_init(struct store_params *p);
void store_params_free(struct store_params *p);
/* True if some parameter could not be added. */
bool store_params_failed(const struct store_params *p);

/* Each appends parameter $count+1. */
void store_param_i64(struct store_params *p, int64_t v);
void store_param_u32(struct store_params *p, uint32_t v);
void store_param_u64(struct store_params *p, uint64_t v);
void store_param_bool(struct store_params *p, bool v); /* "true" / "false" */
/* Borrowed: s must live until the statement ran; NULL is SQL NULL. */
void store_param_str(struct store_params *p, const char *s);
/* Array literals: "{}" for count 0; store_param_ids with ids NULL is SQL NULL. */
void store_param_uids(struct store_params *p, const uint32_t *uids, size_t count);
void store_param_ids(struct store_params *p, const int64_t *ids, size_t count);

/* Text array: each element double-quoted, '"' and '\\' escaped (any
 * text, and numbers for a typed array: '{"1","2"}'::bigint[] is {1,2}). */
void store_param_texts(struct store_params *p, const char *const *texts, size_t count);
/* bytea array: each element "\\x<hex>" in the literal (bytes[i], lens[i]
 * bytes), the escape form PostgreSQL reads as bytea. */
void store_param_byteas(struct store_params *p, const unsigned char *const *bytes,
                        const size_t *lens, size_t count);

#endif
