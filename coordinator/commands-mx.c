/* The MX-aware final pass's command: mx sets, changes or turns off a
 * migration's MX watching (the plan's "mx" object for a migration already
 * imported), and import stores the plan's. */
#include "commands-private.h"

#include "mx.h"
#include "plan.h"
#include "store-mx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits a comma-separated list of DNS names into mx (normalised). */
static int names_arg(const char *opt, const char *list, char ***names_r, size_t *count_r)
{
	char *copy = strdup(list), *save = NULL;
	size_t cap = 1;

	for (const char *c = list; *c != '\0'; c++)
		cap += *c == ',';
	*names_r = calloc(cap + 1, sizeof(**names_r));
	if (copy == NULL || *names_r == NULL) {
		free(copy);
		return -1;
	}
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		char *name;

		if (plan_mx_name(t, &name) < 0) {
			fprintf(stderr, "mailshift-coordinator: %s: not a DNS name: %s\n", opt, t);
			free(copy);
			return -1;
		}
		(*names_r)[(*count_r)++] = name;
	}
	free(copy);
	if (*count_r == 0) {
		fprintf(stderr, "mailshift-coordinator: %s: empty list\n", opt);
		return -1;
	}
	return 0;
}

/* mx MIGRATION (--domains D,... --hosts H,... [--settle T] [--interval T]
 * [--resolver ADDR] | --off) */
int cmd_mx(struct command_ctx *c, int argc, char **argv)
{
	struct plan_mx *mx = calloc(1, sizeof(*mx));
	struct store_mx_config cfg;
	char error[STORE_ERRLEN] = "";
	bool off = false;
	int64_t mid;
	int ret = 2;

	if (mx == NULL || command_parse_id(argv[1], "migration", &mid) < 0)
		goto out;
	mx->settle_s = PLAN_MX_SETTLE_DEFAULT;
	mx->interval_s = PLAN_MX_INTERVAL_DEFAULT;
	for (int i = 2; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--off") == 0) {
			off = true;
			continue;
		}
		if (val == NULL) {
			fprintf(stderr, "mailshift-coordinator: %s: missing value\n", opt);
			goto out;
		}
		i++;
		if (strcmp(opt, "--domains") == 0 && mx->domains == NULL) {
			if (names_arg(opt, val, &mx->domains, &mx->ndomains) < 0)
				goto out;
		} else if (strcmp(opt, "--hosts") == 0 && mx->hosts == NULL) {
			if (names_arg(opt, val, &mx->hosts, &mx->nhosts) < 0)
				goto out;
		} else if (strcmp(opt, "--settle") == 0 || strcmp(opt, "--interval") == 0) {
			if (plan_mx_duration(val, opt[2] == 's' ? &mx->settle_s : &mx->interval_s) <
			    0) {
				fprintf(stderr,
				        "mailshift-coordinator: %s: not a duration like 90s, 10m or"
				        " 1h: %s\n",
				        opt, val);
				goto out;
			}
		} else if (strcmp(opt, "--resolver") == 0 && mx->resolver == NULL) {
			if (!plan_mx_resolver_ok(val) || (mx->resolver = strdup(val)) == NULL) {
				fprintf(stderr,
				        "mailshift-coordinator: --resolver: not an address like"
				        " 127.0.0.1, 127.0.0.1:5353 or [::1]:5353: %s\n",
				        val);
				goto out;
			}
		} else {
			fprintf(stderr,
			        "mailshift-coordinator: mx: unknown or repeated option %s\n", opt);
			goto out;
		}
	}
	if (off == (mx->domains != NULL || mx->hosts != NULL) ||
	    (!off && (mx->domains == NULL || mx->hosts == NULL))) {
		fprintf(stderr,
		        "mailshift-coordinator: mx: give --domains and --hosts, or --off\n");
		goto out;
	}
	plan_mx_config(mx, &cfg);
	if (store_mx_set(c->st, mid, off ? NULL : &cfg, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		ret = 1;
		goto out;
	}
	ret = 0;
	if (off)
		printf("migration %" PRId64 ": MX watching off\n", mid);
	else if (mx_status_print(c->st, mid, error, sizeof(error)) < 0) {
		fprintf(stderr, "%s\n", error);
		ret = 1;
	}
out:
	plan_mx_free(&mx);
	return ret;
}
