/* Waiting for a server's connection budget and for a throttling server
 * (pace.h). */
#include "pace.h"

#include <unistd.h>

int pace_throttle_delay_s(int suggested_s, int count)
{
	int secs = suggested_s;

	if (count < 1)
		count = 1;
	if (secs <= 0)
		secs = count < 7 ? 1 << (count - 1) : PACE_BACKOFF_MAX_S;
	if (secs > PACE_THROTTLE_MAX_S)
		secs = PACE_THROTTLE_MAX_S;
	return secs;
}

static bool go_on(pace_go_fn *go, void *context)
{
	return go == NULL || go(context);
}

int pace_sleep(double secs, pace_go_fn *go, void *context)
{
	const double step = PACE_STEP_MS / 1000.0;

	for (double slept = 0; slept < secs; slept += step) {
		if (!go_on(go, context))
			return PACE_STOPPED;
		usleep(secs - slept < step ? (useconds_t)((secs - slept) * 1e6)
		                           : (useconds_t)PACE_STEP_MS * 1000);
	}
	return go_on(go, context) ? PACE_SLEPT : PACE_STOPPED;
}

int pace_slot_wait(pace_take_fn *take, void *take_context, double max_wait_s, pace_go_fn *go,
                   void *go_context)
{
	long waited_ms = 0;
	int ret;

	while ((ret = take(take_context)) == PACE_BUSY) {
		if (max_wait_s >= 0 && waited_ms >= max_wait_s * 1000)
			break;
		if (!go_on(go, go_context))
			break;
		usleep((useconds_t)PACE_SLOT_RETRY_MS * 1000);
		waited_ms += PACE_SLOT_RETRY_MS;
	}
	return ret;
}
