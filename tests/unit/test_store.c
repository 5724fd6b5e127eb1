/* lib/store's main contracts, module by module, against a throwaway
 * PostgreSQL (with_pg.sh passes its conninfo in MAILSHIFT_TEST_DB; without
 * it the test is skipped): the checkpoint protocol of a folder, the lease
 * and its fence, connection slots, and the query parameter helper.  Each
 * test works on accounts of its own, from one imported migration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store-account.h"
#include "store-checkpoint.h"
#include "store-conn.h"
#include "store-lease.h"
#include "store-params.h"
#include "store-pass.h"
#include "store-plan.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNTS 3
/* Connections the source and the destination allow: slots of each. */
#define MAX_CONN 2

static struct store *st;
static PGconn *db; /* a connection of the test's own, to read tables */
static int64_t migration_id, account_ids[ACCOUNTS], src_server_id;
static char err[STORE_ERRLEN];

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

static void assert_value(const char *sql, const char *want)
{
	char *v = value(sql);

	assert_string_equal(v, want);
	free(v);
}

/* A migration with ACCOUNTS accounts, all verified and queued for pass 1. */
static int setup(void **state)
{
	const char *conninfo = getenv("MAILSHIFT_TEST_DB");
	struct store_server src = {.name = "default",
	                           .host = "src.example",
	                           .port = 993,
	                           .tls = "implicit",
	                           .auth = "plain",
	                           .max_connections = MAX_CONN};
	struct store_server dst = src;
	static const unsigned char secret[] = {0x00, 0x01, 0xfe, 0xff};
	struct store_new_account accts[ACCOUNTS];
	char logins[ACCOUNTS][2][32];
	struct store_server *srcs = NULL;
	int64_t *ids = NULL;
	size_t n = 0, queued = 0;

	(void)state;
	dst.host = "dst.example";
	for (size_t i = 0; i < ACCOUNTS; i++) {
		/* the last login needs quoting inside an array literal */
		snprintf(logins[i][0], sizeof(logins[i][0]), "%s%zu@src.example",
		         i + 1 == ACCOUNTS ? "q\"u\\o,te" : "user", i);
		snprintf(logins[i][1], sizeof(logins[i][1]), "user%zu@dst.example", i);
		accts[i] = (struct store_new_account){.src_login = logins[i][0],
		                                      .dst_login = logins[i][1],
		                                      .src_secret = secret,
		                                      .dst_secret = secret,
		                                      .src_secret_len = sizeof(secret),
		                                      .dst_secret_len = sizeof(secret),
		                                      .priority = 5,
		                                      .line = (int)i + 2};
	}
	if (store_open(conninfo, &st, err, sizeof(err)) < 0 ||
	    store_schema_apply(st, err, sizeof(err)) < 0 ||
	    store_migration_import(st, "unit", &src, 1, &dst, accts, ACCOUNTS, &migration_id, err,
	                           sizeof(err)) < 0 ||
	    store_migration_accounts(st, migration_id, &ids, &n, err, sizeof(err)) < 0 ||
	    store_migration_sources(st, migration_id, &srcs, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	memcpy(account_ids, ids, sizeof(account_ids));
	free(ids);
	src_server_id = srcs[0].id;
	store_server_clear(&srcs[0]);
	free(srcs);
	for (size_t i = 0; i < ACCOUNTS; i++)
		if (store_account_verified(st, account_ids[i], "verified", "unit", err,
		                           sizeof(err)) < 0) {
			fprintf(stderr, "setup: %s\n", err);
			return -1;
		}
	if (store_pass_start(st, migration_id, 1, "bulk", NULL, 0, &queued, err, sizeof(err)) < 0 ||
	    queued != ACCOUNTS) {
		fprintf(stderr, "setup: pass start: %s (%zu queued)\n", err, queued);
		return -1;
	}
	db = PQconnectdb(conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(db));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	PQfinish(db);
	store_close(&st);
	return 0;
}

static int64_t lease(int64_t account_id, const char *owner)
{
	struct store_account acct = {0};
	int64_t epoch = 0;

	assert_int_equal(
	    store_lease_take(st, account_id, 1, owner, 60, &epoch, &acct, err, sizeof(err)),
	    STORE_TAKEN);
	assert_int_equal(acct.id, account_id);
	assert_int_equal(acct.src_secret_len, 4);
	assert_int_equal(acct.src_secret[2], 0xfe);
	assert_int_equal(acct.src.max_connections, MAX_CONN);
	assert_string_equal(acct.dst.host, "dst.example");
	store_account_clear(&acct);
	assert_true(epoch > 0);
	return epoch;
}

static void folder_get(int64_t account_id, int64_t epoch, struct store_folder *f)
{
	assert_int_equal(
	    store_folder_get(st, account_id, epoch, "INBOX", "INBOX", f, err, sizeof(err)), 0);
}

static void lookup(int64_t folder_id, const uint32_t *src, size_t n, const uint32_t *want)
{
	uint32_t got[16];

	assert_true(n <= 16);
	memset(got, 0xff, sizeof(got));
	assert_int_equal(store_uidmap_lookup(st, folder_id, src, n, got, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i++) {
		if (got[i] != want[i])
			fail_msg("UID %u: mapped to %u, want %u", src[i], got[i], want[i]);
	}
}

/* The worker's protocol on one folder: row created, intent, commits (runs
 * compressed, errors recorded, the next intent left open), synced, and a
 * UIDVALIDITY change that clears the map. */
static void test_checkpoint_protocol(void **state)
{
	int64_t aid = account_ids[0], epoch = lease(aid, "worker-a");
	struct store_folder f, again;
	static const uint32_t intent[] = {1, 2, 3, 4, 5, 6};
	static const struct store_uidpair pairs[] = {{1, 50}, {2, 51}, {3, 52}, {5, 60}, {6, 61}};
	static const struct store_msg_error errors[] = {{4, "NO [TOOBIG] message too large"}};
	static const uint32_t ask[] = {1, 2, 3, 4, 5, 6, 7, 9};
	static const uint32_t next_uids[] = {8, 9};
	static const struct store_uidpair pairs2[] = {{7, 62}};
	const struct store_intent next = {.dst_uidnext = 63, .uids = next_uids, .count = 2};
	char sql[256];
	uint32_t uid = 0;

	(void)state;
	/* folder get creates the row, at zero; a second get finds it */
	folder_get(aid, epoch, &f);
	assert_true(f.id > 0);
	assert_int_equal(f.high_water, 0);
	assert_int_equal(f.intent_dst_uidnext, 0);
	assert_int_equal(f.intent_count, 0);
	assert_string_equal(f.dst_name, "INBOX");
	folder_get(aid, epoch, &again);
	assert_int_equal(again.id, f.id);
	store_folder_clear(&again);
	assert_int_equal(
	    store_folder_reset(st, aid, epoch, f.id, 100, 200, false, err, sizeof(err)), 0);

	/* (a): the intent is recorded as given */
	assert_int_equal(
	    store_intent_begin(st, aid, epoch, f.id, false, 50, intent, 6, err, sizeof(err)), 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.src_uidvalidity, 100);
	assert_int_equal(again.dst_uidvalidity, 200);
	assert_int_equal(again.intent_dst_uidnext, 50);
	assert_int_equal(again.intent_count, 6);
	assert_int_equal(again.intent_uids[0], 1);
	assert_int_equal(again.intent_uids[5], 6);
	store_folder_clear(&again);

	/* (c): five pairs stored as two runs, the refused message recorded,
	 * the intent cleared, the high water past all six */
	assert_int_equal(store_batch_commit(st, aid, epoch, f.id, false, pairs, 5, errors, 1, 6, 5,
	                                    5000, 0, NULL, err, sizeof(err)),
	                 0);
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(src_start || ':' || dst_start || ':' || len, ' '"
	         " ORDER BY src_start) FROM uid_map WHERE folder_id = %lld",
	         (long long)f.id);
	assert_value(sql, "1:50:3 5:60:2");
	snprintf(sql, sizeof(sql),
	         "SELECT src_uid || ' ' || error FROM message_errors WHERE folder_id = %lld",
	         (long long)f.id);
	assert_value(sql, "4 NO [TOOBIG] message too large");
	lookup(f.id, ask, 8, (const uint32_t[]){50, 51, 52, 0, 60, 61, 0, 0});
	assert_int_equal(store_uidmap_next(st, f.id, 4, &uid, err, sizeof(err)), 0);
	assert_int_equal(uid, 5);
	assert_int_equal(store_uidmap_next(st, f.id, 7, &uid, err, sizeof(err)), 0);
	assert_int_equal(uid, 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.high_water, 6);
	assert_int_equal(again.intent_dst_uidnext, 0);
	assert_int_equal(again.intent_count, 0);
	store_folder_clear(&again);

	/* (c) with the next batch's (a): that intent stays open */
	assert_int_equal(store_batch_commit(st, aid, epoch, f.id, false, pairs2, 1, NULL, 0, 7, 1,
	                                    100, 0, &next, err, sizeof(err)),
	                 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.high_water, 7);
	assert_int_equal(again.intent_dst_uidnext, 63);
	assert_int_equal(again.intent_count, 2);
	assert_int_equal(again.intent_uids[0], 8);
	assert_int_equal(again.intent_uids[1], 9);
	store_folder_clear(&again);
	lookup(f.id, ask, 8, (const uint32_t[]){50, 51, 52, 0, 60, 61, 62, 0});

	/* synced: the source state is kept */
	assert_int_equal(store_folder_synced(st, aid, epoch, f.id, 10, 9, 77, err, sizeof(err)), 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.src_uidnext, 10);
	assert_int_equal(again.src_messages, 9);
	assert_int_equal(again.highest_modseq, 77);
	assert_false(again.rematch);
	store_folder_clear(&again);

	/* a lane over source UIDs 20..30: its intent and high water are its
	 * own, its pairs the folder's; closing it moves the high water */
	static const struct store_uidpair lane_pairs[] = {{20, 70}, {21, 71}};
	static const uint32_t lane_uids[] = {22, 23};
	const struct store_intent lane_next = {.dst_uidnext = 72, .uids = lane_uids, .count = 2};
	assert_int_equal(store_lane_open(st, aid, epoch, f.id, 20, 30, err, sizeof(err)), 0);
	assert_int_equal(store_intent_begin(st, aid, epoch, f.id, true, 70,
	                                    (const uint32_t[]){20, 21}, 2, err, sizeof(err)),
	                 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.lane_lo, 20);
	assert_int_equal(again.lane_hi, 30);
	assert_int_equal(again.lane_intent_dst_uidnext, 70);
	assert_int_equal(again.lane_intent_count, 2);
	assert_int_equal(again.intent_dst_uidnext, 63); /* the folder's own, untouched */
	store_folder_clear(&again);
	assert_int_equal(store_batch_commit(st, aid, epoch, f.id, true, lane_pairs, 2, NULL, 0, 21,
	                                    2, 200, 0, &lane_next, err, sizeof(err)),
	                 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.high_water, 7);
	assert_int_equal(again.lane_high_water, 21);
	assert_int_equal(again.lane_intent_dst_uidnext, 72);
	assert_int_equal(again.lane_intent_uids[1], 23);
	assert_int_equal(again.intent_count, 2);
	store_folder_clear(&again);
	lookup(f.id, (const uint32_t[]){20, 21}, 2, (const uint32_t[]){70, 71});
	assert_int_equal(store_lane_close(st, aid, epoch, f.id, err, sizeof(err)), 0);
	folder_get(aid, epoch, &again);
	assert_int_equal(again.high_water, 30);
	assert_int_equal(again.lane_lo, 0);
	assert_int_equal(again.lane_intent_dst_uidnext, 0);
	assert_int_equal(again.lane_intent_count, 0);
	store_folder_clear(&again);
	/* a lane left open is cleared by a reset too */
	assert_int_equal(store_lane_open(st, aid, epoch, f.id, 40, 50, err, sizeof(err)), 0);

	/* a new UIDVALIDITY: rematch, map and high water cleared */
	assert_int_equal(store_folder_reset(st, aid, epoch, f.id, 101, 200, true, err, sizeof(err)),
	                 0);
	folder_get(aid, epoch, &again);
	assert_true(again.rematch);
	assert_int_equal(again.src_uidvalidity, 101);
	assert_int_equal(again.high_water, 0);
	assert_int_equal(again.highest_modseq, 0);
	assert_int_equal(again.lane_lo, 0);
	store_folder_clear(&again);
	lookup(f.id, ask, 8, (const uint32_t[]){0, 0, 0, 0, 0, 0, 0, 0});
	assert_int_equal(store_uidmap_next(st, f.id, 1, &uid, err, sizeof(err)), 0);
	assert_int_equal(uid, 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM uid_map WHERE folder_id = %lld",
	         (long long)f.id);
	assert_value(sql, "0");
	store_folder_clear(&f);
	assert_int_equal(store_lease_release(st, aid, epoch, "synced", "unit", err, sizeof(err)),
	                 0);
}

/* Take, renew, release; a taken lease is busy for others; a stale epoch
 * is refused everywhere (STORE_LEASE_LOST) once the lease moved on. */
static void test_lease_fencing(void **state)
{
	int64_t aid = account_ids[1], e1, e2, epoch = 0;
	struct store_account acct = {0};
	struct store_folder f;
	const char *stop = "unset";
	char sql[256], owner[64];

	(void)state;
	e1 = lease(aid, "worker-a");
	snprintf(sql, sizeof(sql),
	         "SELECT state || ' ' || coalesce(lease_owner, '-') FROM accounts WHERE id = %lld",
	         (long long)aid);
	assert_value(sql, "running worker-a");
	assert_int_equal(
	    store_account_lease_holder(st, aid, owner, sizeof(owner), err, sizeof(err)), 0);
	assert_string_equal(owner, "worker-a");
	assert_int_equal(store_lease_renew(st, aid, e1, 60, &stop, err, sizeof(err)), 0);
	assert_null(stop);
	/* held by a live owner: another worker's job is dropped */
	assert_int_equal(
	    store_lease_take(st, aid, 1, "worker-b", 60, &epoch, &acct, err, sizeof(err)),
	    STORE_BUSY);
	/* released and taken again: a higher epoch */
	assert_int_equal(store_lease_release(st, aid, e1, "queued", "unit", err, sizeof(err)), 0);
	assert_value(sql, "queued -");
	e2 = lease(aid, "worker-b");
	assert_true(e2 > e1);
	/* the old owner is fenced out */
	assert_int_equal(store_lease_renew(st, aid, e1, 60, &stop, err, sizeof(err)),
	                 STORE_LEASE_LOST);
	assert_int_equal(store_folder_get(st, aid, e1, "INBOX", "INBOX", &f, err, sizeof(err)),
	                 STORE_LEASE_LOST);
	assert_int_equal(store_lease_release(st, aid, e1, "synced", "stale", err, sizeof(err)),
	                 STORE_LEASE_LOST);
	assert_value(sql, "running worker-b");
	/* the new owner still writes */
	folder_get(aid, e2, &f);
	assert_true(f.id > 0);
	store_folder_clear(&f);
	assert_int_equal(store_lease_release(st, aid, e2, "synced", "unit", err, sizeof(err)), 0);
	snprintf(sql, sizeof(sql), "SELECT state || ' ' || pass_done FROM accounts WHERE id = %lld",
	         (long long)aid);
	assert_value(sql, "synced 1");
	/* pass 1 done: nothing left to take */
	assert_int_equal(
	    store_lease_take(st, aid, 1, "worker-c", 60, &epoch, &acct, err, sizeof(err)),
	    STORE_BUSY);
}

/* A server's slots: as many as max_connections, then busy; a released one
 * is taken again. */
static void test_slots(void **state)
{
	int a = 0, b = 0, c = 0;

	(void)state;
	assert_int_equal(store_slot_take(st, src_server_id, "acct:1", 60, &a, err, sizeof(err)),
	                 STORE_TAKEN);
	assert_int_equal(store_slot_take(st, src_server_id, "acct:2", 60, &b, err, sizeof(err)),
	                 STORE_TAKEN);
	assert_true(a >= 1 && a <= MAX_CONN);
	assert_true(b >= 1 && b <= MAX_CONN);
	assert_int_not_equal(a, b);
	assert_int_equal(store_slot_take(st, src_server_id, "acct:3", 60, &c, err, sizeof(err)),
	                 STORE_BUSY);
	assert_int_equal(store_slots_renew(st, "acct:1", 60, err, sizeof(err)), 0);
	assert_int_equal(store_slot_release(st, src_server_id, a, "acct:1", err, sizeof(err)), 0);
	assert_int_equal(store_slot_take(st, src_server_id, "acct:3", 60, &c, err, sizeof(err)),
	                 STORE_TAKEN);
	assert_int_equal(c, a);
	assert_int_equal(store_slot_release(st, src_server_id, b, "acct:2", err, sizeof(err)), 0);
	assert_int_equal(store_slot_release(st, src_server_id, c, "acct:3", err, sizeof(err)), 0);
}

/* The import's arrays: an odd login and binary secrets come back as sent,
 * and the account is found by its login. */
static void test_plan_import(void **state)
{
	struct store_account acct = {0};
	int64_t found = 0;

	(void)state;
	assert_int_equal(store_account_get(st, account_ids[ACCOUNTS - 1], &acct, err, sizeof(err)),
	                 0);
	assert_string_equal(acct.src_login, "q\"u\\o,te2@src.example");
	assert_string_equal(acct.dst_login, "user2@dst.example");
	assert_int_equal(acct.dst_secret_len, 4);
	assert_memory_equal(acct.dst_secret, ((const unsigned char[]){0x00, 0x01, 0xfe, 0xff}), 4);
	assert_int_equal(acct.src.id, src_server_id);
	store_account_clear(&acct);
	assert_int_equal(store_account_find(st, migration_id, "Q\"U\\O,TE2@src.example", &found,
	                                    err, sizeof(err)),
	                 0);
	assert_int_equal(found, account_ids[ACCOUNTS - 1]);
}

/* The parameter helper: texts as PostgreSQL reads them, arrays included. */
static void test_params(void **state)
{
	struct store_params p;
	static const uint32_t uids[] = {1, 2, 4294967295u};
	static const int64_t ids[] = {7, -8, INT64_MAX};
	PGresult *r;

	(void)state;
	store_params_init(&p);
	store_param_i64(&p, INT64_MIN);
	store_param_u32(&p, 4294967295u);
	store_param_bool(&p, true);
	store_param_str(&p, NULL);
	store_param_uids(&p, uids, 3);
	store_param_uids(&p, NULL, 0);
	store_param_ids(&p, ids, 3);
	store_param_ids(&p, NULL, 0);
	store_param_u64(&p, UINT64_MAX);
	assert_false(store_params_failed(&p));
	assert_int_equal(p.count, 9);
	assert_string_equal(p.values[0], "-9223372036854775808");
	assert_string_equal(p.values[1], "4294967295");
	assert_string_equal(p.values[2], "true");
	assert_null(p.values[3]);
	assert_string_equal(p.values[4], "{1,2,4294967295}");
	assert_string_equal(p.values[5], "{}");
	assert_string_equal(p.values[6], "{7,-8,9223372036854775807}");
	assert_null(p.values[7]);
	assert_string_equal(p.values[8], "18446744073709551615");

	/* and PostgreSQL reads them back */
	r = PQexecParams(db,
	                 "SELECT $1::bigint = -9223372036854775808, $2::bigint, $3::bool,"
	                 " $4::text IS NULL, array_length($5::bigint[], 1), ($5::bigint[])[3],"
	                 " cardinality($6::bigint[]), ($7::bigint[])[2], $8::bigint[] IS NULL",
	                 8, NULL, p.values, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	assert_string_equal(PQgetvalue(r, 0, 1), "4294967295");
	assert_string_equal(PQgetvalue(r, 0, 2), "t");
	assert_string_equal(PQgetvalue(r, 0, 3), "t");
	assert_string_equal(PQgetvalue(r, 0, 4), "3");
	assert_string_equal(PQgetvalue(r, 0, 5), "4294967295");
	assert_string_equal(PQgetvalue(r, 0, 6), "0");
	assert_string_equal(PQgetvalue(r, 0, 7), "-8");
	assert_string_equal(PQgetvalue(r, 0, 8), "t");
	PQclear(r);
	store_params_free(&p);

	/* text and bytea arrays */
	store_params_init(&p);
	store_param_texts(&p, (const char *const[]){"a\"b", "c\\d", ""}, 3);
	store_param_byteas(&p, (const unsigned char *const[]){(const unsigned char *)"\x01\xab"},
	                   (const size_t[]){2}, 1);
	assert_false(store_params_failed(&p));
	assert_string_equal(p.values[0], "{\"a\\\"b\",\"c\\\\d\",\"\"}");
	assert_string_equal(p.values[1], "{\"\\\\x01ab\"}");
	r = PQexecParams(db,
	                 "SELECT ($1::text[])[1], ($1::text[])[2], encode(($2::bytea[])[1], 'hex')",
	                 2, NULL, p.values, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "a\"b");
	assert_string_equal(PQgetvalue(r, 0, 1), "c\\d");
	assert_string_equal(PQgetvalue(r, 0, 2), "01ab");
	PQclear(r);
	store_params_free(&p);

	/* more than STORE_PARAMS_MAX: the set is marked failed */
	store_params_init(&p);
	for (int i = 0; i <= STORE_PARAMS_MAX; i++)
		store_param_i64(&p, i);
	assert_true(store_params_failed(&p));
	assert_int_equal(p.count, STORE_PARAMS_MAX);
	store_params_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checkpoint_protocol),
	    cmocka_unit_test(test_lease_fencing),
	    cmocka_unit_test(test_slots),
	    cmocka_unit_test(test_plan_import),
	    cmocka_unit_test(test_params),
	};

	if (getenv("MAILSHIFT_TEST_DB") == NULL) {
		fprintf(stderr, "MAILSHIFT_TEST_DB not set (run through with_pg.sh): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
