/* The store connections the API's request threads share (api.h): a
 * PostgreSQL connection is used by one thread at a time, so a request takes
 * one for its life, waiting a bounded time when all are busy.  Connections
 * are opened on demand and replaced once broken (store_usable). */
#include "api.h"

#include "store-conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A connection attempt from a request gives up after this: a request
 * answers 503 rather than hang while PostgreSQL is away. */
#define POOL_CONNECT_TIMEOUT_S 3

struct api_pool {
	char *conninfo;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int size;
	struct store **conns; /* NULL: not open (yet, or any more) */
	bool *busy;
};

int api_pool_create(const char *conninfo, int size, struct api_pool **pool_r)
{
	struct api_pool *p = calloc(1, sizeof(*p));

	*pool_r = NULL;
	if (p == NULL)
		return -1;
	p->conninfo = strdup(conninfo);
	p->conns = calloc((size_t)size, sizeof(*p->conns));
	p->busy = calloc((size_t)size, sizeof(*p->busy));
	if (p->conninfo == NULL || p->conns == NULL || p->busy == NULL) {
		free(p->conninfo);
		free(p->conns);
		free(p->busy);
		free(p);
		return -1;
	}
	p->size = size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	*pool_r = p;
	return 0;
}

void api_pool_destroy(struct api_pool **pool)
{
	struct api_pool *p = *pool;

	if (p == NULL)
		return;
	for (int i = 0; i < p->size; i++)
		store_close(&p->conns[i]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	free(p->conninfo);
	free(p->conns);
	free(p->busy);
	free(p);
	*pool = NULL;
}

struct store *api_pool_take(struct api_pool *p, int wait_ms, char *err, size_t errlen)
{
	struct timespec deadline;
	struct store *st;
	int slot = -1;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	for (;;) {
		for (int i = 0; i < p->size && slot < 0; i++)
			if (!p->busy[i])
				slot = i;
		if (slot >= 0 ||
		    pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (slot >= 0)
		p->busy[slot] = true;
	pthread_mutex_unlock(&p->lock);
	if (slot < 0) {
		snprintf(err, errlen, "every database connection of the API is busy; try again");
		return NULL;
	}
	/* Opening happens outside the lock: other requests go on meanwhile. */
	st = p->conns[slot];
	if (st != NULL && !store_usable(st))
		store_close(&st);
	if (st == NULL &&
	    (store_open_bounded(p->conninfo, POOL_CONNECT_TIMEOUT_S, &st, err, errlen) < 0 ||
	     /* Times in the API's answers are UTC (RFC 3339 with +00:00). */
	     store_session_set(st, "TimeZone", "UTC", err, errlen) < 0)) {
		store_close(&st);
		pthread_mutex_lock(&p->lock);
		p->conns[slot] = NULL;
		p->busy[slot] = false;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	p->conns[slot] = st;
	return st;
}

void api_pool_give(struct api_pool *p, struct store **st)
{
	if (*st == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->size; i++) {
		if (p->conns[i] == *st) {
			if (!store_usable(*st))
				store_close(&p->conns[i]);
			p->busy[i] = false;
			break;
		}
	}
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
	*st = NULL;
}
