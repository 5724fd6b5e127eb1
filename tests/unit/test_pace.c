/* Waiting for a server (lib/pace): the backoff arithmetic, and the waits
 * ending as their callbacks say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pace.h"

static void test_suggestion_is_waited(void **state)
{
	(void)state;
	assert_int_equal(pace_throttle_delay_s(30, 1), 30);
	assert_int_equal(pace_throttle_delay_s(5, 9), 5); /* whatever the count */
	assert_int_equal(pace_throttle_delay_s(1, 20), 1);
}

static void test_suggestion_is_capped(void **state)
{
	(void)state;
	assert_int_equal(pace_throttle_delay_s(PACE_THROTTLE_MAX_S, 1), PACE_THROTTLE_MAX_S);
	assert_int_equal(pace_throttle_delay_s(PACE_THROTTLE_MAX_S + 1, 1), PACE_THROTTLE_MAX_S);
	assert_int_equal(pace_throttle_delay_s(86400, 3), 600);
}

static void test_own_backoff_doubles_then_flat(void **state)
{
	static const int expected[] = {1, 2, 4, 8, 16, 32, 60, 60, 60};

	(void)state;
	for (int count = 1; count <= 9; count++) {
		assert_int_equal(pace_throttle_delay_s(0, count), expected[count - 1]);
		assert_int_equal(pace_throttle_delay_s(-1, count), expected[count - 1]);
	}
	assert_int_equal(pace_throttle_delay_s(0, 1000), PACE_BACKOFF_MAX_S);
}

static void test_count_below_one_is_first(void **state)
{
	(void)state;
	assert_int_equal(pace_throttle_delay_s(0, 0), 1);
	assert_int_equal(pace_throttle_delay_s(0, -5), 1);
}

/* A go callback that answers true calls_left times, counting its calls. */
struct go_count {
	int calls, calls_left;
};

static bool go_counted(void *context)
{
	struct go_count *g = context;

	g->calls++;
	return g->calls_left-- > 0;
}

static void test_sleep_asks_each_step(void **state)
{
	struct go_count g = {0, 100};

	(void)state;
	/* 250 ms: steps of 100, 100, 50, then once more at the end. */
	assert_int_equal(pace_sleep(0.25, go_counted, &g), PACE_SLEPT);
	assert_int_equal(g.calls, 4);
	assert_int_equal(pace_sleep(0, NULL, NULL), PACE_SLEPT);
}

static void test_sleep_stops_when_told(void **state)
{
	struct go_count g = {0, 2};

	(void)state;
	/* An hour's wait ends at the third question. */
	assert_int_equal(pace_sleep(3600, go_counted, &g), PACE_STOPPED);
	assert_int_equal(g.calls, 3);
}

/* A take callback answering from a script, then PACE_BUSY. */
struct take_script {
	const int *answers;
	int n, calls;
};

static int take_scripted(void *context)
{
	struct take_script *t = context;

	return t->calls < t->n ? t->answers[t->calls++] : (t->calls++, PACE_BUSY);
}

static void test_slot_taken_after_busy(void **state)
{
	static const int answers[] = {PACE_BUSY, PACE_BUSY, PACE_TAKEN};
	struct take_script t = {answers, 3, 0};
	struct go_count g = {0, 100};

	(void)state;
	assert_int_equal(pace_slot_wait(take_scripted, &t, -1, go_counted, &g), PACE_TAKEN);
	assert_int_equal(t.calls, 3);
	assert_int_equal(g.calls, 2); /* asked before each of the two sleeps */
}

static void test_slot_error_returned_at_once(void **state)
{
	static const int answers[] = {-3};
	struct take_script t = {answers, 1, 0};

	(void)state;
	assert_int_equal(pace_slot_wait(take_scripted, &t, 60, NULL, NULL), -3);
	assert_int_equal(t.calls, 1);
}

static void test_slot_wait_bounded(void **state)
{
	struct take_script t = {NULL, 0, 0};

	(void)state;
	assert_int_equal(pace_slot_wait(take_scripted, &t, 0, NULL, NULL), PACE_BUSY);
	assert_int_equal(t.calls, 1);
	/* 0.3 s: tries at 0, 200 and 400 ms of sleep. */
	t.calls = 0;
	assert_int_equal(pace_slot_wait(take_scripted, &t, 0.3, NULL, NULL), PACE_BUSY);
	assert_int_equal(t.calls, 3);
}

static void test_slot_wait_stops_when_told(void **state)
{
	struct take_script t = {NULL, 0, 0};
	struct go_count g = {0, 1};

	(void)state;
	assert_int_equal(pace_slot_wait(take_scripted, &t, -1, go_counted, &g), PACE_BUSY);
	assert_int_equal(t.calls, 2);
	assert_int_equal(g.calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_suggestion_is_waited),
	    cmocka_unit_test(test_suggestion_is_capped),
	    cmocka_unit_test(test_own_backoff_doubles_then_flat),
	    cmocka_unit_test(test_count_below_one_is_first),
	    cmocka_unit_test(test_sleep_asks_each_step),
	    cmocka_unit_test(test_sleep_stops_when_told),
	    cmocka_unit_test(test_slot_taken_after_busy),
	    cmocka_unit_test(test_slot_error_returned_at_once),
	    cmocka_unit_test(test_slot_wait_bounded),
	    cmocka_unit_test(test_slot_wait_stops_when_told),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
