/* tests/infra/fake_imap.py run by the unit tests of lib/imap: each case
 * starts one with the options it needs, on a free port, and its teardown
 * stops whatever a failed assertion left running. */
#ifndef MAILSHIFT_TEST_FAKE_SERVER_H
#define MAILSHIFT_TEST_FAKE_SERVER_H

#include <sys/types.h>

struct fake {
	pid_t pid;
	int port;
	char log[64]; /* the fake's log of commands received (--log) */
};

/* Starts fake_imap.py with the options (NULL-terminated); cmocka assertions. */
void fake_start(struct fake *fk, ...);
/* Stops it and removes its log. */
void fake_stop(struct fake *fk);
/* cmocka teardown: stops every fake still running. */
int fake_teardown(void **state);

#endif
