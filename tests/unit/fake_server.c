/* tests/infra/fake_imap.py run by the unit tests (fake_server.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_server.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fakes still running: a failed assertion leaves a test without reaching its
 * fake_stop, so the teardown of every test stops what is left. */
static pid_t running[8];

static void running_stop(pid_t pid)
{
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (running[i] != 0 && (pid == 0 || running[i] == pid)) {
			kill(running[i], SIGTERM);
			waitpid(running[i], NULL, 0);
			running[i] = 0;
		}
}

int fake_teardown(void **state)
{
	(void)state;
	running_stop(0);
	return 0;
}

void fake_start(struct fake *fk, ...)
{
	const char *argv[32];
	int pipefd[2], n = 0;
	char line[128];
	va_list ap;
	FILE *out;
	int fd;

	snprintf(fk->log, sizeof(fk->log), "/tmp/fake-imap-log.XXXXXX");
	fd = mkstemp(fk->log);
	assert_true(fd >= 0);
	close(fd);
	argv[n++] = PYTHON;
	argv[n++] = FAKE_IMAP;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--log";
	argv[n++] = fk->log;
	va_start(ap, fk);
	for (const char *a = va_arg(ap, const char *); a != NULL && n < 30;
	     a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(pipe(pipefd), 0);
	fk->pid = fork();
	assert_true(fk->pid >= 0);
	if (fk->pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 2);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (running[i] == 0) {
			running[i] = fk->pid;
			break;
		}
	out = fdopen(pipefd[0], "r");
	assert_non_null(out);
	assert_non_null(fgets(line, sizeof(line), out));
	fclose(out);
	assert_true(strncmp(line, "listening on 127.0.0.1:", 23) == 0);
	fk->port = (int)strtol(line + 23, NULL, 10);
}

void fake_stop(struct fake *fk)
{
	running_stop(fk->pid);
	unlink(fk->log);
}
