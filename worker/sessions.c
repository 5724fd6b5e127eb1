/* An account's two sessions (folder_ctx.src, .dst): both logins at once,
 * the connection bounds of the worker's options on each endpoint, OAuth2
 * access tokens put in and refreshed once when a server refuses one. */
#include "sync-private.h"

#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

/* The destination's login, run beside the source's (sessions_open). */
struct dst_open {
	struct folder_ctx *fc;
	int ret, backoff_s;
	char err[512];
};

static void *dst_open_thread(void *arg)
{
	struct dst_open *o = arg;

	o->ret = imap_session_open_backoff(&o->fc->dst_ep, &o->fc->dst, &o->backoff_s, o->err,
	                                   sizeof(o->err));
	return NULL;
}

/* Both logins once; *auth_side_r: 0 source, 1 destination, when a server
 * refused the credentials (IMAP_EAUTH). */
static int sessions_open_once(struct folder_ctx *fc, int *auth_side_r)
{
	struct account_run *run = fc->run;
	struct dst_open dst = {.fc = fc};
	pthread_t thread;
	bool threaded;
	int64_t t0 = monotonic_ms();
	int ret, src_backoff = 0;

	fc->open_backoff_s = 0;
	fc->throttled_dst = false;
	atomic_store(&fc->cancel_mine, 0);
	fc_alive(fc);
	for (int k = 0; k < 2; k++) {
		struct imap_endpoint *ep = k == 0 ? &fc->src_ep : &fc->dst_ep;
		if (run->cfg->io_timeout_s > 0)
			ep->timeout_s = run->cfg->io_timeout_s;
		/* A literal is a whole message, or a chunk of a spooled one. */
		if (run->cfg->max_message_bytes > 0)
			ep->max_literal = run->cfg->max_message_bytes;
		ep->cancel = run->cfg->cancel;
		ep->cancel_mine = &fc->cancel_mine;
		ep->last_io_ms = &fc->last_io_ms;
		ep->stats = k == 0 ? &fc->src_io : &fc->dst_io;
	}
	/* Both logins at once: over a WAN link each costs a few round trips. */
	threaded = pthread_create(&thread, NULL, dst_open_thread, &dst) == 0;
	ret = src_open(fc, &src_backoff);
	if (threaded)
		pthread_join(thread, NULL);
	else
		dst_open_thread(&dst);
	phase_add(fc, PHASE_CONNECT, t0, 0);
	*auth_side_r = 0;
	if (ret == 0) {
		fc->throttled_dst = dst.ret == IMAP_ETHROTTLED;
		fc->open_backoff_s = dst.backoff_s;
		ret = dst.ret;
		if (ret < 0)
			snprintf(fc->err, sizeof(fc->err), "%s", dst.err);
		*auth_side_r = 1;
	} else if (ret != IMAP_EAUTH) {
		fc->open_backoff_s = src_backoff;
	}
	if (ret < 0) {
		/* Both sessions or none (the tokens stay: a refused one is
		 * compared with the cache's). */
		imap_session_close(&fc->src);
		imap_session_close(&fc->dst);
		return ret;
	}
	imap_session_set_write_guard(fc->dst, lease_may_write, run);
	fc_alive(fc);
	return 0;
}

/* Puts a current access token into fc's endpoint of each OAuth2 side, the
 * one a server just refused (refused[side]) refreshed.  A grant the token
 * endpoint refuses (a revoked refresh token) fails the run as refused
 * credentials, with the endpoint's words; an endpoint that cannot be asked
 * is IMAP_ENET: retried like a dropped connection, then the account fails
 * and the scheduler tries it again with backoff. */
static int oauth_fill(struct folder_ctx *fc, const bool refused[2])
{
	struct account_run *run = fc->run;

	for (int k = 0; k < 2; k++) {
		bool oauth = k == 0 ? run->creds.src_oauth : run->creds.dst_oauth;
		char **token = k == 0 ? &fc->src_token : &fc->dst_token;
		const struct account_rotate rot = {fc->st, run->cfg->key, run->acct,
		                                   k == 0 ? ACCOUNT_SRC : ACCOUNT_DST};
		const char *side = k == 0 ? "source" : "destination";
		char *fresh = NULL, why[512];
		int ret;

		if (!oauth)
			continue;
		ret = account_oauth_token(&run->creds, &rot, refused[k] ? *token : NULL, &fresh,
		                          why, sizeof(why));
		secret_free(token);
		if (ret == OAUTH_EREFUSED) {
			snprintf(fc->err, sizeof(fc->err), "%s: %s", side, why);
			run_fail(run, SYNC_AUTH_FAILED, fc->err);
			return IMAP_EAUTH;
		}
		if (ret < 0) {
			snprintf(fc->err, sizeof(fc->err), "%s: %s", side, why);
			return IMAP_ENET;
		}
		*token = fresh;
		(k == 0 ? &fc->src_ep : &fc->dst_ep)->secret = fresh;
	}
	return 0;
}

int sessions_open(struct folder_ctx *fc)
{
	struct account_run *run = fc->run;
	bool refused[2] = {false, false};
	int ret, side;

	fc->src_ep = run->creds.src;
	fc->dst_ep = run->creds.dst;
	for (int attempt = 0;; attempt++) {
		bool oauth;
		if ((ret = oauth_fill(fc, refused)) < 0)
			return ret;
		ret = sessions_open_once(fc, &side);
		if (ret != IMAP_EAUTH)
			return ret;
		/* An access token refused (expired or revoked early at the
		 * server) is refreshed once and the login tried again; a
		 * second refusal is the account's. */
		oauth = side == 0 ? run->creds.src_oauth : run->creds.dst_oauth;
		if (!oauth || attempt > 0)
			break;
		log_info("account %" PRId64 ": %s; refreshing the access token once", run->acct->id,
		         fc->err);
		refused[side] = true;
	}
	run_fail(run, SYNC_AUTH_FAILED, fc->err);
	return ret;
}

void sessions_close(struct folder_ctx *fc)
{
	src_close(fc);
	imap_session_close(&fc->dst);
	/* The access tokens were only needed for the logins. */
	secret_free(&fc->src_token);
	secret_free(&fc->dst_token);
	fc->src_ep.secret = fc->dst_ep.secret = NULL;
}
