/* Blackout windows: the SQL function server_blackout (lib/store/schema.c)
 * that the scheduler asks before it publishes a job, evaluated at chosen
 * instants.  Needs a throwaway PostgreSQL: run by with_pg.sh, which passes
 * its conninfo in MAILSHIFT_TEST_DB (without it the test is skipped).  The
 * clock is faked by a now() in a schema put before pg_catalog on the
 * search_path, so the function's own text runs unchanged.
 *
 * Weekday bits: bit 0 Monday ... bit 6 Sunday; from_s/to_s are seconds of
 * the local day.  2026-12-07 is a Monday. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "schema.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MON 0x01
#define TUE 0x02
#define FRI 0x10
#define SAT 0x20
#define SUN 0x40
#define WEEKDAYS 0x1f
#define DAILY 0x7f
#define HM(h, m) ((h)*3600 + (m)*60)

static PGconn *db;

static void exec_ok(const char *sql)
{
	PGresult *r = PQexec(db, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(db));
	PQclear(r);
}

static char *value(const char *sql)
{
	PGresult *r = PQexec(db, sql);
	char *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(db));
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* A new source server (in a migration of its own) with no windows. */
static long server_new(void)
{
	char *v = value("WITH m AS (INSERT INTO migrations (name) VALUES ('unit') RETURNING id)"
	                " INSERT INTO servers (migration_id, role, host, port, tls, auth)"
	                " SELECT id, 'source', 'imap.example', 993, 'implicit', 'plain' FROM m"
	                " RETURNING id");
	long id = atol(v);

	free(v);
	return id;
}

static void window(long sid, int weekdays, int from_s, int to_s, const char *tz)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "INSERT INTO blackouts (server_id, weekdays, from_s, to_s, time_zone)"
	         " VALUES (%ld, %d, %d, %d, '%s')",
	         sid, weekdays, from_s, to_s, tz);
	exec_ok(sql);
}

/* Asserts whether server sid is inside a window at the instant at. */
static void blackout_at(long sid, const char *at, bool want)
{
	char sql[256], *v;

	snprintf(sql, sizeof(sql), "SELECT set_config('mailshift.test_now', '%s', false)", at);
	free(value(sql));
	snprintf(sql, sizeof(sql), "SELECT server_blackout(%ld)", sid);
	v = value(sql);
	if (strcmp(v, want ? "t" : "f") != 0)
		fail_msg("server %ld at %s: blackout %s, expected %s", sid, at, v,
		         want ? "t" : "f");
	free(v);
}

static int setup(void **state)
{
	const char *conninfo = getenv("MAILSHIFT_TEST_DB");
	char *v;

	(void)state;
	db = PQconnectdb(conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(db));
		return -1;
	}
	exec_ok("SET client_min_messages = warning");
	for (size_t i = 0; i < schema_count(); i++)
		exec_ok(schema_sql(i));
	exec_ok("CREATE SCHEMA fake");
	exec_ok("CREATE FUNCTION fake.now() RETURNS timestamptz LANGUAGE sql STABLE AS"
	        " $$ SELECT current_setting('mailshift.test_now')::timestamptz $$");
	exec_ok("SET search_path = fake, pg_catalog, public");
	/* The fake clock is the one now() reads. */
	exec_ok("SELECT set_config('mailshift.test_now', '2001-02-03 04:05:06+00', false)");
	v = value("SELECT now() = '2001-02-03 04:05:06+00'");
	if (strcmp(v, "t") != 0) {
		fprintf(stderr, "the fake now() is not used\n");
		free(v);
		return -1;
	}
	free(v);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	PQfinish(db);
	return 0;
}

static void test_no_windows(void **state)
{
	long s = server_new();

	(void)state;
	blackout_at(s, "2026-12-07 12:00:00+00", false);
}

static void test_same_day_edges(void **state)
{
	long s = server_new();

	(void)state;
	window(s, WEEKDAYS, HM(8, 0), HM(18, 0), "UTC");
	blackout_at(s, "2026-12-07 07:59:59+00", false);
	blackout_at(s, "2026-12-07 08:00:00+00", true); /* from is inside */
	blackout_at(s, "2026-12-07 17:59:59+00", true);
	blackout_at(s, "2026-12-07 18:00:00+00", false); /* to is not */
	blackout_at(s, "2026-12-11 12:00:00+00", true);  /* Friday */
	blackout_at(s, "2026-12-12 12:00:00+00", false); /* Saturday */
	blackout_at(s, "2026-12-13 12:00:00+00", false); /* Sunday */
}

static void test_over_midnight(void **state)
{
	long s = server_new();

	(void)state;
	/* Friday 22:00 to Saturday 06:00: the window belongs to Friday. */
	window(s, FRI, HM(22, 0), HM(6, 0), "UTC");
	blackout_at(s, "2026-12-11 21:59:59+00", false);
	blackout_at(s, "2026-12-11 22:00:00+00", true);
	blackout_at(s, "2026-12-11 23:59:59+00", true);
	blackout_at(s, "2026-12-12 00:00:00+00", true);
	blackout_at(s, "2026-12-12 05:59:59+00", true);
	blackout_at(s, "2026-12-12 06:00:00+00", false);
	blackout_at(s, "2026-12-12 22:30:00+00", false); /* Saturday's own evening */
	blackout_at(s, "2026-12-11 05:00:00+00", false); /* Thursday is not in it */
}

static void test_over_year_end(void **state)
{
	long s = server_new();

	(void)state;
	/* Thursday 2026-12-31 23:00 into Friday 2027-01-01. */
	window(s, 0x08, HM(23, 0), HM(1, 0), "UTC");
	blackout_at(s, "2026-12-31 23:30:00+00", true);
	blackout_at(s, "2027-01-01 00:59:59+00", true);
	blackout_at(s, "2027-01-01 01:00:00+00", false);
}

static void test_from_equals_to(void **state)
{
	long s = server_new(), z = server_new();

	(void)state;
	/* from = to: 24 hours from "from" on the listed day. */
	window(s, MON, HM(12, 0), HM(12, 0), "UTC");
	blackout_at(s, "2026-12-07 11:59:59+00", false);
	blackout_at(s, "2026-12-07 12:00:00+00", true);
	blackout_at(s, "2026-12-08 11:59:59+00", true);
	blackout_at(s, "2026-12-08 12:00:00+00", false);
	/* 00:00 = 00:00: the whole of Sunday and nothing of Monday. */
	window(z, SUN, 0, 0, "UTC");
	blackout_at(z, "2026-12-12 23:59:59+00", false);
	blackout_at(z, "2026-12-13 00:00:00+00", true);
	blackout_at(z, "2026-12-13 23:59:59+00", true);
	blackout_at(z, "2026-12-14 00:00:00+00", false);
}

static void test_to_midnight(void **state)
{
	long s = server_new();

	(void)state;
	/* "to": "24:00" is the end of the day. */
	window(s, SAT, HM(20, 0), 86400, "UTC");
	blackout_at(s, "2026-12-12 19:59:59+00", false);
	blackout_at(s, "2026-12-12 23:59:59+00", true);
	blackout_at(s, "2026-12-13 00:00:00+00", false);
}

static void test_time_zones(void **state)
{
	long berlin = server_new(), kiritimati = server_new(), la = server_new();

	(void)state;
	/* Berlin is UTC+1 in December, UTC+2 in July. */
	window(berlin, DAILY, HM(9, 0), HM(17, 0), "Europe/Berlin");
	blackout_at(berlin, "2026-12-07 07:59:59+00", false);
	blackout_at(berlin, "2026-12-07 08:00:00+00", true);
	blackout_at(berlin, "2026-12-07 15:59:59+00", true);
	blackout_at(berlin, "2026-12-07 16:00:00+00", false);
	blackout_at(berlin, "2026-07-06 06:59:59+00", false);
	blackout_at(berlin, "2026-07-06 07:00:00+00", true);
	blackout_at(berlin, "2026-07-06 14:59:59+00", true);
	blackout_at(berlin, "2026-07-06 15:00:00+00", false);
	/* The weekday is the one of the window's zone: Sunday 10:00 UTC is
	 * Monday 00:00 at UTC+14. */
	window(kiritimati, MON, 0, HM(1, 0), "Pacific/Kiritimati");
	blackout_at(kiritimati, "2026-12-06 09:59:59+00", false);
	blackout_at(kiritimati, "2026-12-06 10:00:00+00", true);
	blackout_at(kiritimati, "2026-12-06 10:59:59+00", true);
	blackout_at(kiritimati, "2026-12-07 00:30:00+00", false);
	/* Monday 03:00 UTC is Sunday 19:00 in Los Angeles (UTC-8). */
	window(la, SUN, HM(18, 0), HM(20, 0), "America/Los_Angeles");
	blackout_at(la, "2026-12-07 03:00:00+00", true);
	blackout_at(la, "2026-12-06 19:00:00+00", false); /* Sunday UTC, 11:00 there */
}

static void test_several_windows_and_servers(void **state)
{
	long s = server_new(), other = server_new();

	(void)state;
	window(s, MON, HM(1, 0), HM(2, 0), "UTC");
	window(s, TUE | SAT, HM(23, 0), HM(3, 0), "UTC");
	window(other, DAILY, 0, 0, "UTC"); /* another server's window is not s's */
	blackout_at(s, "2026-12-07 01:30:00+00", true);
	blackout_at(s, "2026-12-07 02:30:00+00", false);
	blackout_at(s, "2026-12-08 23:30:00+00", true); /* Tuesday night */
	blackout_at(s, "2026-12-09 02:59:59+00", true); /* into Wednesday */
	blackout_at(s, "2026-12-09 23:30:00+00", false);
	blackout_at(s, "2026-12-13 01:00:00+00", true);  /* Saturday into Sunday */
	blackout_at(s, "2026-12-14 01:00:00+00", true);  /* Monday's own window */
	blackout_at(s, "2026-12-14 00:30:00+00", false); /* Sunday is not listed */
	blackout_at(other, "2026-12-14 00:30:00+00", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_windows),
	    cmocka_unit_test(test_same_day_edges),
	    cmocka_unit_test(test_over_midnight),
	    cmocka_unit_test(test_over_year_end),
	    cmocka_unit_test(test_from_equals_to),
	    cmocka_unit_test(test_to_midnight),
	    cmocka_unit_test(test_time_zones),
	    cmocka_unit_test(test_several_windows_and_servers),
	};

	if (getenv("MAILSHIFT_TEST_DB") == NULL) {
		fprintf(stderr, "MAILSHIFT_TEST_DB not set (run through with_pg.sh): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
