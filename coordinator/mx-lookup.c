/* One MX lookup with c-ares: the query, the wait for its answer bounded by
 * a deadline (the scheduler must not hang on a silent resolver), and the
 * answer's host names in preference order. */
#include "mx.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

struct answer {
	bool done;
	int status;
	struct ares_mx_reply *mx;
};

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct answer *a = arg;

	(void)timeouts;
	a->done = true;
	a->status = status;
	if (status == ARES_SUCCESS)
		a->status = ares_parse_mx_reply(abuf, alen, &a->mx);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int by_priority(const void *x, const void *y)
{
	const struct ares_mx_reply *const *a = x, *const *b = y;

	if ((*a)->priority != (*b)->priority)
		return (*a)->priority < (*b)->priority ? -1 : 1;
	return strcmp((*a)->host, (*b)->host);
}

/* The answer's hosts, sorted by preference then name, normalised. */
static int answer_hosts(struct ares_mx_reply *mx, char ***hosts_r, size_t *count_r)
{
	struct ares_mx_reply **sorted;
	size_t n = 0, i;
	char **hosts;

	for (struct ares_mx_reply *r = mx; r != NULL; r = r->next)
		n++;
	sorted = calloc(n + 1, sizeof(*sorted));
	hosts = calloc(n + 1, sizeof(*hosts));
	if (sorted == NULL || hosts == NULL) {
		free(sorted);
		free(hosts);
		return -1;
	}
	i = 0;
	for (struct ares_mx_reply *r = mx; r != NULL; r = r->next)
		sorted[i++] = r;
	qsort(sorted, n, sizeof(*sorted), by_priority);
	for (i = 0; i < n; i++) {
		size_t len = strlen(sorted[i]->host);

		if (len > 0 && sorted[i]->host[len - 1] == '.')
			len--;
		hosts[i] = strndup(sorted[i]->host, len);
		if (hosts[i] == NULL) {
			for (size_t k = 0; k < i; k++)
				free(hosts[k]);
			free(hosts);
			free(sorted);
			return -1;
		}
		for (char *c = hosts[i]; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	free(sorted);
	*hosts_r = hosts;
	*count_r = n;
	return 0;
}

int mx_lookup(const char *domain, const char *resolver, int timeout_ms, char ***hosts_r,
              size_t *count_r, char *err, size_t errlen)
{
	static bool library_ready;
	struct ares_options opts = {.flags = ARES_FLAG_NOSEARCH, .timeout = 0, .tries = 2};
	struct answer a = {0};
	ares_channel channel;
	const char *at = resolver != NULL ? resolver : "the system's resolver";
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	*hosts_r = NULL;
	*count_r = 0;
	if (!library_ready) {
		if ((r = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
			snprintf(err, errlen, "MX lookup: c-ares: %s", ares_strerror(r));
			return -1;
		}
		library_ready = true;
	}
	/* Two tries, each half the bound: one lost datagram is retried. */
	opts.timeout = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
	r = ares_init_options(&channel, &opts,
	                      ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "MX lookup of %s: c-ares: %s", domain, ares_strerror(r));
		return -1;
	}
	if (resolver != NULL &&
	    (r = ares_set_servers_ports_csv(channel, resolver)) != ARES_SUCCESS) {
		snprintf(err, errlen, "MX lookup of %s: resolver %s: %s", domain, resolver,
		         ares_strerror(r));
		ares_destroy(channel);
		return -1;
	}
	ares_query(channel, domain, ns_c_in, ns_t_mx, on_answer, &a);
	while (!a.done) {
		struct timeval max, tv, *tvp;
		fd_set rfds, wfds;
		int64_t left = deadline - now_ms();
		int nfds;

		if (left <= 0)
			break;
		FD_ZERO(&rfds);
		FD_ZERO(&wfds);
		nfds = ares_fds(channel, &rfds, &wfds);
		if (nfds == 0)
			break;
		max.tv_sec = (time_t)(left / 1000);
		max.tv_usec = (suseconds_t)(left % 1000) * 1000;
		tvp = ares_timeout(channel, &max, &tv);
		if (select(nfds, &rfds, &wfds, NULL, tvp) < 0)
			break;
		ares_process(channel, &rfds, &wfds);
	}
	if (!a.done) {
		/* Calls on_answer with ARES_ECANCELLED. */
		ares_cancel(channel);
		a.status = ARES_ETIMEOUT;
	}
	ares_destroy(channel);
	if (a.status != ARES_SUCCESS) {
		const char *why = ares_strerror(a.status);

		if (a.status == ARES_ENODATA || a.status == ARES_ENOTFOUND)
			why = "no MX record (the domain has none, or does not exist)";
		else if (a.status == ARES_ETIMEOUT)
			why = "no answer in time (resolver unreachable or silent)";
		else if (a.status == ARES_ECONNREFUSED)
			why = "resolver unreachable or refusing (c-ares: Could not contact DNS"
			      " servers)";
		snprintf(err, errlen, "MX lookup of %s at %s failed: %s", domain, at, why);
		ares_free_data(a.mx);
		return -1;
	}
	r = answer_hosts(a.mx, hosts_r, count_r);
	ares_free_data(a.mx);
	if (r < 0) {
		snprintf(err, errlen, "MX lookup of %s: out of memory", domain);
		return -1;
	}
	if (*count_r == 0) {
		free(*hosts_r);
		*hosts_r = NULL;
		snprintf(err, errlen, "MX lookup of %s at %s: no MX record", domain, at);
		return -1;
	}
	return 0;
}
