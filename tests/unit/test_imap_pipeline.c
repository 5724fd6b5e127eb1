/* The pipelined commands of lib/imap (imap_status_many,
 * imap_store_flags_many) against a server that answers a burst out of order,
 * refuses one folder or one flag, names folders in another spelling or as
 * literals, or says BYE in the middle of a burst.  Each case starts
 * tests/infra/fake_imap.py with its faults and checks the exact numbers the
 * fake reports, the codes and the error texts, and what reached the server
 * (the fake's log of commands). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_server.h"
#include "imap.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The default mailbox of fake_imap.py: folders get UIDVALIDITY 1001, 1002,
 * ... in the order they are made (Archive, INBOX, Archive/2002, With Space,
 * Sent, Drafts, Trash, then --folders F00001.., then --odd-names). */
#define V_INBOX 1002
#define V_ARCHIVE2002 1003
#define V_WITHSPACE 1004
#define V_F(i) (1007 + (i))
#define ODD_QUOTED "Odd \"q\" \\ name"
#define ODD_8BIT "Caf&AOk-"

/* The fake's log of commands received, whole (malloc'd). */
static char *fake_log(const struct fake *fk)
{
	FILE *f = fopen(fk->log, "r");
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap);

	assert_non_null(f);
	assert_non_null(buf);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* Lines of the log that hold `what`. */
static int log_count(const struct fake *fk, const char *what)
{
	char *log = fake_log(fk);
	int n = 0;

	for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n"))
		if (strstr(line, what) != NULL)
			n++;
	free(log);
	return n;
}

/* Exactly `want` lines of the log hold `what` (the log shows a backslash as
 * two). */
static void assert_log_count(const struct fake *fk, const char *what, int want)
{
	int got = log_count(fk, what);

	if (got != want) {
		char *log = fake_log(fk);
		print_message("fake's log:\n%s", log);
		free(log);
		fail_msg("%d lines of the log hold \"%s\", expected %d", got, what, want);
	}
}

static void endpoint(struct imap_endpoint *ep, const struct fake *fk, struct imap_io_stats *stats)
{
	memset(ep, 0, sizeof(*ep));
	ep->host = "127.0.0.1";
	ep->port = fk->port;
	ep->tls = IMAP_TLS_NONE;
	ep->auth = IMAP_AUTH_LOGIN;
	ep->user = "u";
	ep->secret = "p";
	ep->timeout_s = 5;
	ep->stats = stats;
}

static struct imap_session *open_session(const struct imap_endpoint *ep)
{
	struct imap_session *s = NULL;
	char err[512] = "";

	if (imap_session_open(ep, &s, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
	return s;
}

static void assert_err_has(const char *err, const char *want)
{
	if (strstr(err, want) == NULL)
		fail_msg("error text \"%s\" does not say \"%s\"", err, want);
}

/* req answered 0 with exactly these numbers. */
static void assert_status(const struct imap_status_req *r, uint32_t validity, uint32_t next,
                          uint32_t messages)
{
	if (r->ret != 0)
		fail_msg("STATUS %s: %d %s", r->name, r->ret, r->err);
	if (r->st.uidvalidity != validity || r->st.uidnext != next || r->st.messages != messages)
		fail_msg("STATUS %s: UIDVALIDITY %u UIDNEXT %u MESSAGES %u, expected %u %u %u",
		         r->name, r->st.uidvalidity, r->st.uidnext, r->st.messages, validity, next,
		         messages);
	/* CONDSTORE: the fake's HIGHESTMODSEQ is 1 + one per message added. */
	if (r->st.highestmodseq != 1 + (uint64_t)messages)
		fail_msg("STATUS %s: HIGHESTMODSEQ %llu, expected %u", r->name,
		         (unsigned long long)r->st.highestmodseq, 1 + messages);
}

/* The default folders with messages, the two odd names, and F00001..F<nf>. */
struct status_set {
	struct imap_status_req reqs[80];
	char names[80][16];
	size_t n, nf;
};

static void status_set(struct status_set *set, size_t nf, bool odd)
{
	memset(set, 0, sizeof(*set));
	set->reqs[set->n++].name = "INBOX";
	set->reqs[set->n++].name = "Archive/2002";
	set->reqs[set->n++].name = "With Space";
	if (odd) {
		set->reqs[set->n++].name = ODD_QUOTED;
		set->reqs[set->n++].name = ODD_8BIT;
	}
	set->nf = nf;
	for (size_t i = 1; i <= nf; i++) {
		snprintf(set->names[i - 1], sizeof(set->names[0]), "F%05zu", i);
		set->reqs[set->n++].name = set->names[i - 1];
	}
}

/* Every folder of status_set answered with the fake's numbers; skip: the
 * index of one folder not to check (or (size_t)-1). */
static void assert_status_set(const struct status_set *set, bool odd, size_t skip)
{
	size_t k = 0;

	if (skip != 0)
		assert_status(&set->reqs[0], V_INBOX, 4, 3);
	if (skip != 1)
		assert_status(&set->reqs[1], V_ARCHIVE2002, 3, 2);
	if (skip != 2)
		assert_status(&set->reqs[2], V_WITHSPACE, 3, 2);
	k = 3;
	if (odd) {
		assert_status(&set->reqs[3], (uint32_t)V_F(set->nf + 1), 2, 1);
		assert_status(&set->reqs[4], (uint32_t)V_F(set->nf + 2), 2, 1);
		k = 5;
	}
	for (size_t i = 1; i <= set->nf; i++, k++)
		if (k != skip)
			assert_status(&set->reqs[k], (uint32_t)V_F(i), 1, 0);
}

/* A well-behaved server: every folder's numbers, in one round trip per burst
 * of 20 (not 20), every folder asked once. */
static void test_status_normal(void **state)
{
	struct imap_endpoint ep;
	struct imap_io_stats io;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	uint64_t before;
	struct fake fk;

	(void)state;
	fake_start(&fk, "--folders", "20", "--odd-names", NULL);
	memset(&io, 0, sizeof(io));
	endpoint(&ep, &fk, &io);
	s = open_session(&ep);
	status_set(&set, 20, true);
	assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
	assert_status_set(&set, true, (size_t)-1);
	assert_log_count(&fk, " STATUS ", (int)set.n);
	/* The odd names went out quoted with their escapes. */
	assert_log_count(&fk, "STATUS \"Odd \\\\\"q\\\\\" \\\\\\\\ name\"", 1);

	/* 20 folders: one turn of the conversation (2 at most if the server's
	 * answers straddle two reads), not 20. */
	status_set(&set, 20, false);
	before = io.round_trips;
	assert_int_equal(imap_status_many(s, set.reqs + 3, 20, err, sizeof(err)), 0);
	if (io.round_trips - before < 1 || io.round_trips - before > 2)
		fail_msg("20 pipelined STATUS took %llu round trips",
		         (unsigned long long)(io.round_trips - before));
	for (size_t i = 1; i <= 20; i++)
		assert_status(&set.reqs[2 + i], (uint32_t)V_F(i), 1, 0);
	/* The same 20 one by one, for comparison: 20 round trips. */
	before = io.round_trips;
	for (size_t i = 3; i < 23; i++)
		assert_int_equal(
		    imap_folder_status(s, set.reqs[i].name, &set.reqs[i].st, err, sizeof(err)), 0);
	assert_true(io.round_trips - before >= 20);
	imap_session_close(&s);
	fake_stop(&fk);
}

/* Answers in reverse order within each burst (70 folders: bursts of 32, 32
 * and 6): matched by tag and name, none asked twice. */
static void test_status_out_of_order(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	fake_start(&fk, "--folders", "70", "--odd-names", "--status-out-of-order", NULL);
	endpoint(&ep, &fk, NULL);
	s = open_session(&ep);
	status_set(&set, 70, true);
	assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
	assert_status_set(&set, true, (size_t)-1);
	assert_log_count(&fk, " STATUS ", (int)set.n);
	/* The fake did reorder (at least one burst came in one read). */
	assert_true(log_count(&fk, "in reverse order") >= 1);
	imap_session_close(&s);
	fake_stop(&fk);
}

/* One folder refused: its own IMAP_ENO with the server's words, the others
 * their numbers; a name that cannot be sent: IMAP_EARG, not sent. */
static void test_status_no(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	for (int ooo = 0; ooo < 2; ooo++) {
		fake_start(&fk, "--folders", "10", "--odd-names", "--status-no", "Space",
		           ooo ? "--status-out-of-order" : NULL, NULL);
		endpoint(&ep, &fk, NULL);
		s = open_session(&ep);
		status_set(&set, 10, true);
		set.reqs[set.n++].name = "Bad\r\nX1 CREATE INJECTED";
		assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
		assert_status_set(&set, true, 2);
		assert_int_equal(set.reqs[2].ret, IMAP_ENO);
		assert_err_has(set.reqs[2].err, "STATUS \"With Space\": 127.0.0.1:");
		assert_err_has(set.reqs[2].err, "NO [NONEXISTENT] Mailbox doesn't exist");
		assert_int_equal(set.reqs[set.n - 1].ret, IMAP_EARG);
		assert_err_has(set.reqs[set.n - 1].err, "not sent");
		assert_log_count(&fk, "INJECTED", 0);
		/* Neither the refused nor the unsendable one was asked again. */
		assert_log_count(&fk, " STATUS ", (int)set.n - 1);
		/* The session is still usable. */
		assert_int_equal(imap_status_many(s, set.reqs, 1, err, sizeof(err)), 0);
		assert_status(&set.reqs[0], V_INBOX, 4, 3);
		imap_session_close(&s);
		fake_stop(&fk);
	}
}

/* The server names folders in upper case in its STATUS data: nothing can be
 * matched but INBOX, so each other folder is asked again alone and still
 * gets its own numbers. */
static void test_status_name_upper(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	fake_start(&fk, "--folders", "5", "--odd-names", "--status-name-upper", NULL);
	endpoint(&ep, &fk, NULL);
	s = open_session(&ep);
	status_set(&set, 5, true);
	assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
	assert_status_set(&set, true, (size_t)-1);
	/* INBOX once (its name compares without case), F00003 once (upper case
	 * already), the four names with lower-case letters twice. */
	assert_log_count(&fk, " STATUS INBOX ", 1);
	assert_log_count(&fk, "F00003", 1);
	assert_log_count(&fk, " STATUS \"With Space\" ", 2);
	assert_log_count(&fk, "Caf&AOk-", 2);
	assert_log_count(&fk, " STATUS ", (int)set.n + 4);
	imap_session_close(&s);
	fake_stop(&fk);
}

/* Two folders whose names differ only in case, on a server that echoes names
 * in upper case: the data of "twin" names "TWIN" and must not be taken for
 * the folder "TWIN" (it was, silently: TWIN got twin's UIDVALIDITY).  And the
 * same folder asked twice gets its numbers twice. */
static void test_status_case_twins(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct imap_status lower, upper;
	struct imap_status_req reqs[4];
	char err[512] = "";
	struct fake fk;

	(void)state;
	for (int ooo = 0; ooo < 2; ooo++) {
		fake_start(&fk, "--status-name-upper", ooo ? "--status-out-of-order" : NULL, NULL);
		endpoint(&ep, &fk, NULL);
		s = open_session(&ep);
		assert_int_equal(imap_folder_create(s, "twin", err, sizeof(err)), 0);
		assert_int_equal(imap_folder_create(s, "TWIN", err, sizeof(err)), 0);
		assert_int_equal(imap_folder_status(s, "twin", &lower, err, sizeof(err)), 0);
		assert_int_equal(imap_folder_status(s, "TWIN", &upper, err, sizeof(err)), 0);
		assert_int_not_equal(lower.uidvalidity, upper.uidvalidity);
		memset(reqs, 0, sizeof(reqs));
		reqs[0].name = "twin";
		reqs[1].name = "TWIN";
		reqs[2].name = "INBOX";
		reqs[3].name = "INBOX";
		assert_int_equal(imap_status_many(s, reqs, 4, err, sizeof(err)), 0);
		assert_int_equal(reqs[0].ret, 0);
		assert_int_equal(reqs[1].ret, 0);
		assert_int_equal(reqs[0].st.uidvalidity, lower.uidvalidity);
		assert_int_equal(reqs[1].st.uidvalidity, upper.uidvalidity);
		assert_status(&reqs[2], V_INBOX, 4, 3);
		assert_status(&reqs[3], V_INBOX, 4, 3);
		imap_session_close(&s);
		fake_stop(&fk);
	}
}

/* Folder names as literals in the STATUS data (with out-of-order answers):
 * decoded and matched, odd names included, nothing asked twice. */
static void test_status_literal(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	for (int ooo = 0; ooo < 2; ooo++) {
		fake_start(&fk, "--folders", "40", "--odd-names", "--status-literal",
		           ooo ? "--status-out-of-order" : NULL, NULL);
		endpoint(&ep, &fk, NULL);
		s = open_session(&ep);
		status_set(&set, 40, true);
		assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
		assert_status_set(&set, true, (size_t)-1);
		assert_log_count(&fk, " STATUS ", (int)set.n);
		imap_session_close(&s);
		fake_stop(&fk);
	}
}

/* A folder named in raw UTF-8 (not modified UTF-7): sent as a LITERAL+
 * literal within the burst, and the server's data names it as a literal. */
static void test_status_utf8_literal(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct imap_status_req reqs[3];
	char err[512] = "";
	struct fake fk;

	(void)state;
	fake_start(&fk, "--status-out-of-order", NULL);
	endpoint(&ep, &fk, NULL);
	s = open_session(&ep);
	assert_int_equal(imap_folder_create(s, "Caf\xc3\xa9", err, sizeof(err)), 0);
	memset(reqs, 0, sizeof(reqs));
	reqs[0].name = "INBOX";
	reqs[1].name = "Caf\xc3\xa9";
	reqs[2].name = "With Space";
	assert_int_equal(imap_status_many(s, reqs, 3, err, sizeof(err)), 0);
	assert_status(&reqs[0], V_INBOX, 4, 3);
	assert_status(&reqs[1], V_F(1), 1, 0);
	assert_status(&reqs[2], V_WITHSPACE, 3, 2);
	/* Sent once, as a literal (the log shows {5} for {5+}). */
	assert_log_count(&fk, " STATUS {5} ", 1);
	assert_log_count(&fk, " STATUS ", 3);
	imap_session_close(&s);
	fake_stop(&fk);
}

/* BYE in the middle of a burst: the whole call fails with IMAP_ENET naming
 * the server's words, and the session is over. */
static void test_status_bye(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	for (int ooo = 0; ooo < 2; ooo++) {
		fake_start(&fk, "--folders", "10", "--bye-on-status", "5",
		           ooo ? "--status-out-of-order" : NULL, NULL);
		endpoint(&ep, &fk, NULL);
		s = open_session(&ep);
		status_set(&set, 10, false);
		assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), IMAP_ENET);
		assert_err_has(err, "STATUS: 127.0.0.1:");
		assert_err_has(err, "closed the connection: BYE Server shutting down");
		err[0] = '\0';
		assert_int_equal(imap_status_many(s, set.reqs, 1, err, sizeof(err)), IMAP_ENET);
		assert_err_has(err, "STATUS");
		imap_session_close(&s);
		fake_stop(&fk);
	}
}

/* A throttled STATUS: the whole call is IMAP_ETHROTTLED with the server's
 * words; the session stays usable. */
static void test_status_throttled(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	fake_start(&fk, "--folders", "3", "--status-throttle", "Archive", NULL);
	endpoint(&ep, &fk, NULL);
	s = open_session(&ep);
	status_set(&set, 3, false);
	assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), IMAP_ETHROTTLED);
	assert_err_has(err, "STATUS: 127.0.0.1:");
	assert_err_has(err, "asks to slow down: NO [THROTTLED] Too many STATUS commands");
	assert_int_equal(imap_status_many(s, set.reqs + 2, 2, err, sizeof(err)), 0);
	assert_status(&set.reqs[2], V_WITHSPACE, 3, 2);
	assert_status(&set.reqs[3], (uint32_t)V_F(1), 1, 0);
	imap_session_close(&s);
	fake_stop(&fk);
}

/* Invalid data: no UIDNEXT, or UIDVALIDITY 0, is IMAP_EPROTO per folder. */
static void test_status_invalid(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	struct status_set set;
	char err[512] = "";
	struct fake fk;

	(void)state;
	fake_start(&fk, "--status-no-uidnext", NULL);
	endpoint(&ep, &fk, NULL);
	s = open_session(&ep);
	status_set(&set, 0, false);
	assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
	for (size_t i = 0; i < set.n; i++) {
		assert_int_equal(set.reqs[i].ret, IMAP_EPROTO);
		assert_err_has(set.reqs[i].err, "answered without UIDNEXT");
	}
	assert_err_has(set.reqs[2].err, "STATUS \"With Space\": 127.0.0.1:");
	imap_session_close(&s);
	fake_stop(&fk);

	fake_start(&fk, "--uidvalidity-seq", "0", NULL);
	endpoint(&ep, &fk, NULL);
	s = open_session(&ep);
	status_set(&set, 0, false);
	assert_int_equal(imap_status_many(s, set.reqs, set.n, err, sizeof(err)), 0);
	for (size_t i = 0; i < set.n; i++) {
		assert_int_equal(set.reqs[i].ret, IMAP_EPROTO);
		assert_err_has(set.reqs[i].err, "UIDVALIDITY 0");
	}
	imap_session_close(&s);
	fake_stop(&fk);
}

/* --- UID STORE ---------------------------------------------------------- */

static struct imap_session *open_inbox_rw(const struct imap_endpoint *ep)
{
	struct imap_session *s = open_session(ep);
	struct imap_status st;
	char err[512] = "";

	if (imap_folder_open(s, "INBOX", false, &st, err, sizeof(err)) != 0)
		fail_msg("SELECT: %s", err);
	return s;
}

/* The flags of INBOX's messages 1..3 as the server holds them now. */
static void inbox_flags(struct imap_session *s, char flags[3][256])
{
	struct imap_batch b;
	char err[512] = "";

	if (imap_fetch_flags(s, 1, 3, 0, &b, err, sizeof(err)) != 0)
		fail_msg("FETCH FLAGS: %s", err);
	assert_int_equal(b.count, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(b.msgs[i].uid, i + 1);
		snprintf(flags[i], 256, "%s", b.msgs[i].flags);
	}
	imap_batch_free(&b);
}

/* Several flag sets, one command each, in one round trip; they land. */
static void test_store_many(void **state)
{
	struct imap_endpoint ep;
	struct imap_io_stats io;
	struct imap_session *s;
	uint32_t one[] = {1}, two_three[] = {2, 3}, all[] = {1, 2, 3};
	struct imap_flag_store stores[] = {
	    {one, 1, "\\Seen $Done"},
	    {two_three, 2, "\\Flagged"},
	};
	struct imap_flag_store many[20];
	char err[512] = "", flags[3][256];
	uint64_t before;
	struct fake fk;

	(void)state;
	for (int ooo = 0; ooo < 2; ooo++) {
		fake_start(&fk, ooo ? "--status-out-of-order" : NULL, NULL);
		memset(&io, 0, sizeof(io));
		endpoint(&ep, &fk, &io);
		s = open_inbox_rw(&ep);
		before = io.round_trips;
		assert_int_equal(imap_store_flags_many(s, stores, 2, err, sizeof(err)), 0);
		assert_int_equal(io.round_trips - before, 1);
		inbox_flags(s, flags);
		assert_string_equal(flags[0], "\\Seen $Done");
		assert_string_equal(flags[1], "\\Flagged");
		assert_string_equal(flags[2], "\\Flagged");
		assert_log_count(&fk, " UID STORE 1 FLAGS.SILENT (\\\\Seen $Done)", 1);
		assert_log_count(&fk, " UID STORE 2:3 FLAGS.SILENT (\\\\Flagged)", 1);

		/* 20 flag sets: about one round trip, not 20; the last wins. */
		for (size_t i = 0; i < 20; i++) {
			many[i].uids = all;
			many[i].count = 3;
			many[i].flags = i == 19 ? "$Last" : "$Work";
		}
		before = io.round_trips;
		assert_int_equal(imap_store_flags_many(s, many, 20, err, sizeof(err)), 0);
		if (io.round_trips - before > 2)
			fail_msg("20 pipelined UID STORE took %llu round trips",
			         (unsigned long long)(io.round_trips - before));
		if (!ooo) {
			inbox_flags(s, flags);
			for (size_t i = 0; i < 3; i++)
				assert_string_equal(flags[i], "$Last");
		}
		assert_log_count(&fk, " UID STORE ", 22);
		imap_session_close(&s);
		fake_stop(&fk);
	}
}

/* Checks a logged "UID STORE <set> ..." line: its set is under 8000 bytes,
 * and marks each UID it names in seen[]. */
static void store_line_uids(const char *line, uint32_t max, unsigned char *seen)
{
	const char *p = strstr(line, " UID STORE ") + 11;
	size_t len = strcspn(p, " ");

	if (len >= 8000)
		fail_msg("a UID set of %zu bytes", len);
	while (*p != ' ') {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;

		if (*end == ':')
			b = strtoul(end + 1, &end, 10);
		assert_true(a >= 1 && b <= max && a <= b);
		for (unsigned long u = a; u <= b; u++) {
			if (seen[u])
				fail_msg("UID %lu sent twice", u);
			seen[u] = 1;
		}
		p = *end == ',' ? end + 1 : end;
	}
}

/* 5000 scattered UIDs go out as several commands, each with a set under 8000
 * bytes, that together name every UID once; a run of consecutive UIDs stays a
 * range. */
static void test_store_split(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	uint32_t *uids = malloc(5003 * sizeof(*uids));
	unsigned char *seen = calloc(20000, 1);
	struct imap_flag_store store;
	char err[512] = "", flags[3][256], *log;
	int commands = 0;
	struct fake fk;

	(void)state;
	assert_non_null(uids);
	assert_non_null(seen);
	/* 1, 3, 5, ... 9999, then 12000:12002. */
	for (uint32_t i = 0; i < 5000; i++)
		uids[i] = 1 + 2 * i;
	uids[5000] = 12000;
	uids[5001] = 12001;
	uids[5002] = 12002;
	store.uids = uids;
	store.count = 5003;
	store.flags = "$Big";
	fake_start(&fk, NULL);
	endpoint(&ep, &fk, NULL);
	s = open_inbox_rw(&ep);
	assert_int_equal(imap_store_flags_many(s, &store, 1, err, sizeof(err)), 0);
	inbox_flags(s, flags);
	assert_string_equal(flags[0], "$Big");
	assert_string_equal(flags[1], "\\Seen \\Flagged $Work");
	assert_string_equal(flags[2], "$Big");
	imap_session_close(&s);
	log = fake_log(&fk);
	for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strstr(line, " UID STORE ") == NULL)
			continue;
		commands++;
		assert_non_null(strstr(line, " FLAGS.SILENT ($Big)"));
		store_line_uids(line, 19999, seen);
	}
	free(log);
	/* About 24 KB of set: at least 4 commands. */
	if (commands < 4)
		fail_msg("5003 UIDs in %d UID STORE commands", commands);
	for (uint32_t i = 0; i < 5003; i++)
		if (!seen[uids[i]])
			fail_msg("UID %u never sent", uids[i]);
	assert_log_count(&fk, "12000:12002 FLAGS", 1);
	fake_stop(&fk);
	free(uids);
	free(seen);
}

/* One flag set refused: IMAP_ENO with the server's words, and the other
 * commands of the burst were still answered and taken. */
static void test_store_no(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	uint32_t u1 = 1, u2 = 2, u3 = 3;
	struct imap_flag_store stores[] = {
	    {&u1, 1, "$Ok1"},
	    {&u2, 1, "$Refused"},
	    {&u3, 1, "$Ok3"},
	};
	char err[512] = "", flags[3][256];
	struct fake fk;

	(void)state;
	for (int ooo = 0; ooo < 2; ooo++) {
		fake_start(&fk, "--store-no", "Refused", ooo ? "--status-out-of-order" : NULL,
		           NULL);
		endpoint(&ep, &fk, NULL);
		s = open_inbox_rw(&ep);
		assert_int_equal(imap_store_flags_many(s, stores, 3, err, sizeof(err)), IMAP_ENO);
		assert_err_has(err, "UID STORE: 127.0.0.1:");
		assert_err_has(err, "answered: NO [CANNOT] Flag not permitted");
		inbox_flags(s, flags);
		assert_string_equal(flags[0], "$Ok1");
		assert_string_equal(flags[1], "\\Seen \\Flagged $Work");
		assert_string_equal(flags[2], "$Ok3");
		imap_session_close(&s);
		fake_stop(&fk);
	}
}

/* A flag that is not an atom: IMAP_EARG, and not one command sent, not even
 * the valid flag sets before it. */
static void test_store_invalid_flag(void **state)
{
	struct imap_endpoint ep;
	struct imap_session *s;
	uint32_t u1 = 1, u2 = 2;
	struct imap_flag_store stores[] = {
	    {&u1, 1, "$Fine"},
	    {&u2, 1, "$Fine bad\"flag"},
	};
	struct imap_flag_store crlf[] = {
	    {&u1, 1, "$X\r\nX1 CREATE INJECTED"},
	};
	char err[512] = "";
	struct fake fk;

	(void)state;
	fake_start(&fk, NULL);
	endpoint(&ep, &fk, NULL);
	s = open_inbox_rw(&ep);
	assert_int_equal(imap_store_flags_many(s, stores, 2, err, sizeof(err)), IMAP_EARG);
	assert_err_has(err, "not a valid IMAP flag (\"bad\"flag\")");
	assert_int_equal(imap_store_flags_many(s, crlf, 1, err, sizeof(err)), IMAP_EARG);
	assert_err_has(err, "not sent");
	/* Still usable, and the log shows the next command right after SELECT. */
	assert_int_equal(imap_store_flags_many(s, stores, 1, err, sizeof(err)), 0);
	imap_session_close(&s);
	assert_log_count(&fk, " UID STORE ", 1);
	assert_log_count(&fk, "bad", 0);
	assert_log_count(&fk, "INJECTED", 0);
	fake_stop(&fk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_status_normal, fake_teardown),
	    cmocka_unit_test_teardown(test_status_out_of_order, fake_teardown),
	    cmocka_unit_test_teardown(test_status_no, fake_teardown),
	    cmocka_unit_test_teardown(test_status_name_upper, fake_teardown),
	    cmocka_unit_test_teardown(test_status_case_twins, fake_teardown),
	    cmocka_unit_test_teardown(test_status_literal, fake_teardown),
	    cmocka_unit_test_teardown(test_status_utf8_literal, fake_teardown),
	    cmocka_unit_test_teardown(test_status_bye, fake_teardown),
	    cmocka_unit_test_teardown(test_status_throttled, fake_teardown),
	    cmocka_unit_test_teardown(test_status_invalid, fake_teardown),
	    cmocka_unit_test_teardown(test_store_many, fake_teardown),
	    cmocka_unit_test_teardown(test_store_split, fake_teardown),
	    cmocka_unit_test_teardown(test_store_no, fake_teardown),
	    cmocka_unit_test_teardown(test_store_invalid_flag, fake_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
