/* Query parameters as text (store-params.h). */
#include "store-params.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_params_init(struct store_params *p)
{
	memset(p, 0, sizeof(*p));
}

void store_params_free(struct store_params *p)
{
	for (int i = 0; i < STORE_PARAMS_MAX; i++) {
		free(p->owned[i]);
		p->owned[i] = NULL;
	}
	p->count = 0;
}

bool store_params_failed(const struct store_params *p)
{
	return p->failed;
}

/* The next slot, or -1 (the set marked failed) when full. */
static int param_slot(struct store_params *p)
{
	if (p->count >= STORE_PARAMS_MAX) {
		p->failed = true;
		return -1;
	}
	return p->count++;
}

void store_param_i64(struct store_params *p, int64_t v)
{
	int i = param_slot(p);

	if (i < 0)
		return;
	snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64, v);
	p->values[i] = p->num[i];
}

void store_param_u64(struct store_params *p, uint64_t v)
{
	int i = param_slot(p);

	if (i < 0)
		return;
	snprintf(p->num[i], sizeof(p->num[i]), "%" PRIu64, v);
	p->values[i] = p->num[i];
}

void store_param_u32(struct store_params *p, uint32_t v)
{
	store_param_u64(p, v);
}

void store_param_bool(struct store_params *p, bool v)
{
	store_param_str(p, v ? "true" : "false");
}

void store_param_str(struct store_params *p, const char *s)
{
	int i = param_slot(p);

	if (i >= 0)
		p->values[i] = s;
}

/* "{a,b,...}" of count numbers, each at most 20 digits and a sign. */
static void param_array(struct store_params *p, const uint32_t *uids, const int64_t *ids,
                        size_t count)
{
	int i = param_slot(p);
	size_t cap, len = 0;
	char *arr;

	if (i < 0)
		return;
	cap = 3 + count * 22;
	arr = malloc(cap);
	if (arr == NULL) {
		p->failed = true;
		return;
	}
	arr[len++] = '{';
	for (size_t k = 0; k < count; k++) {
		int n =
		    uids != NULL
		        ? snprintf(arr + len, cap - len, "%s%" PRIu32, k > 0 ? "," : "", uids[k])
		        : snprintf(arr + len, cap - len, "%s%" PRId64, k > 0 ? "," : "", ids[k]);
		len += (size_t)n;
	}
	arr[len++] = '}';
	arr[len] = '\0';
	p->owned[i] = arr;
	p->values[i] = arr;
}

void store_param_uids(struct store_params *p, const uint32_t *uids, size_t count)
{
	static const uint32_t none[1] = {0};

	param_array(p, uids != NULL ? uids : none, NULL, uids != NULL ? count : 0);
}

void store_param_ids(struct store_params *p, const int64_t *ids, size_t count)
{
	if (ids == NULL) {
		store_param_str(p, NULL);
		return;
	}
	param_array(p, NULL, ids, count);
}

/* Stores arr (owned) as the next parameter, or marks the set failed. */
static void param_owned(struct store_params *p, char *arr)
{
	int i;

	if (arr == NULL) {
		p->failed = true;
		return;
	}
	i = param_slot(p);
	if (i < 0) {
		free(arr);
		return;
	}
	p->owned[i] = arr;
	p->values[i] = arr;
}

void store_param_texts(struct store_params *p, const char *const *texts, size_t count)
{
	size_t cap = 3, len = 0;
	char *arr;

	for (size_t k = 0; k < count; k++)
		cap += 3 + 2 * strlen(texts[k]);
	arr = malloc(cap);
	if (arr != NULL) {
		arr[len++] = '{';
		for (size_t k = 0; k < count; k++) {
			if (k > 0)
				arr[len++] = ',';
			arr[len++] = '"';
			for (const char *c = texts[k]; *c != '\0'; c++) {
				if (*c == '"' || *c == '\\')
					arr[len++] = '\\';
				arr[len++] = *c;
			}
			arr[len++] = '"';
		}
		arr[len++] = '}';
		arr[len] = '\0';
	}
	param_owned(p, arr);
}

void store_param_byteas(struct store_params *p, const unsigned char *const *bytes,
                        const size_t *lens, size_t count)
{
	static const char hex[] = "0123456789abcdef";
	size_t cap = 3, len = 0;
	char *arr;

	for (size_t k = 0; k < count; k++)
		cap += 7 + 2 * lens[k];
	arr = malloc(cap);
	if (arr != NULL) {
		arr[len++] = '{';
		for (size_t k = 0; k < count; k++) {
			if (k > 0)
				arr[len++] = ',';
			memcpy(arr + len, "\"\\\\x", 4);
			len += 4;
			for (size_t j = 0; j < lens[k]; j++) {
				arr[len++] = hex[bytes[k][j] >> 4];
				arr[len++] = hex[bytes[k][j] & 15];
			}
			arr[len++] = '"';
		}
		arr[len++] = '}';
		arr[len] = '\0';
	}
	param_owned(p, arr);
}
