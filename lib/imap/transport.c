/* The bounded byte stream under libetpan; see transport.h for what it
 * guarantees and why. */
#include "transport.h"

#include "framing.h"

#include "tls.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Longest single poll(): how late a cancel flag may be seen. */
#define SLICE_MS 250
/* A server that sends less than this while we waited a whole timeout_s for
 * the replies to one command is too slow to be alive. */
#define PROGRESS_MIN_BYTES 1024

struct window {
	long long wait_ms;
	size_t bytes;
};

struct transport {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;       /* NULL while plain */
	char peer[300]; /* "host:port" for error texts */
	char host[256];
	int timeout_s;
	const atomic_int *cancel, *cancel_mine;
	atomic_llong *last_io_ms;
	struct imap_io_stats *stats; /* NULL: not counted */
	bool wrote;                  /* written since the last read: the next read is a turn */
	struct imap_transport_fault *fault; /* the session's */
	bool failed;
	/* Asked before every write once set (imap_session_set_write_guard). */
	bool (*may_write)(void *context);
	void *may_write_context;

	struct imap_framing framing; /* the server's byte stream framed as IMAP */

	/* Progress windows: ms spent waiting for the server since the last
	 * PROGRESS_MIN_BYTES moved, and the bytes since then.  Replies: also
	 * started over by each write (a new command may take the server time);
	 * sends: a server that takes our bytes as slowly as a drip would keep an
	 * APPEND going for days. */
	struct window rx, tx;
};

long long imap_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records the first failure (later ones are consequences); always -1. */
static int transport_fail(struct transport *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int transport_fail(struct transport *t, int code, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return -1;
	t->failed = true;
	if (t->fault != NULL && t->fault->code == 0) {
		t->fault->code = code;
		va_start(ap, fmt);
		vsnprintf(t->fault->why, sizeof(t->fault->why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool transport_cancelled(const struct transport *t)
{
	return (t->cancel != NULL && atomic_load(t->cancel) != 0) ||
	       (t->cancel_mine != NULL && atomic_load(t->cancel_mine) != 0);
}

static void transport_moved(struct transport *t)
{
	if (t->last_io_ms != NULL)
		atomic_store(t->last_io_ms, imap_monotonic_ms());
}

/* Counts bytes moved in a window; enough of them start it over. */
static void window_moved(struct window *w, size_t n)
{
	w->bytes += n;
	if (w->bytes >= PROGRESS_MIN_BYTES) {
		w->bytes = 0;
		w->wait_ms = 0;
	}
}

/* Waits until fd is ready for events, in slices of SLICE_MS.  Fails after
 * timeout_s without readiness, when the cancel flags are raised, when
 * deadline_ms (absolute, 0: none) passes, and when the progress window w
 * (NULL: none) shows a server that moves less than PROGRESS_MIN_BYTES in a
 * whole timeout_s of waiting. */
static int transport_wait(struct transport *t, short events, struct window *w,
                          long long deadline_ms, const char *doing)
{
	long long start = imap_monotonic_ms(), limit = (long long)t->timeout_s * 1000;

	for (;;) {
		struct pollfd pfd = {.fd = t->fd, .events = events, .revents = 0};
		long long now, before, slice = SLICE_MS;
		int r;

		if (transport_cancelled(t))
			return transport_fail(t, IMAP_ENET, "cancelled while %s %s", doing,
			                      t->peer);
		before = imap_monotonic_ms();
		if (deadline_ms != 0 && deadline_ms - before < slice)
			slice = deadline_ms - before > 0 ? deadline_ms - before : 0;
		r = poll(&pfd, 1, (int)slice);
		if (r < 0 && errno != EINTR)
			return transport_fail(t, IMAP_ENET, "poll on the connection to %s: %s",
			                      t->peer, strerror(errno));
		now = imap_monotonic_ms();
		if (w != NULL)
			w->wait_ms += now - before;
		if (r > 0)
			return 0;
		if ((now - start >= limit || (deadline_ms != 0 && now >= deadline_ms)) &&
		    w == &t->tx)
			return transport_fail(t, IMAP_ENET, "%s took no data for %d s (%s)",
			                      t->peer, t->timeout_s, doing);
		if (now - start >= limit || (deadline_ms != 0 && now >= deadline_ms))
			return transport_fail(t, IMAP_ENET, "no answer from %s in %d s (%s)",
			                      t->peer, t->timeout_s, doing);
		if (w != NULL && w->wait_ms >= limit && w->bytes < PROGRESS_MIN_BYTES) {
			if (w->bytes == 0)
				return transport_fail(t, IMAP_ENET,
				                      "no answer from %s in %d s (%s)", t->peer,
				                      t->timeout_s, doing);
			return transport_fail(t, IMAP_ENET,
			                      "%s %s only %zu bytes in %lld s (%s): too slow",
			                      t->peer, w == &t->rx ? "sent" : "took", w->bytes,
			                      (w->wait_ms + 500) / 1000, doing);
		}
	}
}

/* Follows the server's bytes through lines and literals (framing.h); -1
 * (and the fault set) when they break a bound, before they are handed to
 * libetpan. */
static int transport_frame(struct transport *t, const char *buf, size_t len)
{
	char why[160];

	if (imap_framing_feed(&t->framing, buf, len, why, sizeof(why)) < 0)
		return transport_fail(t, IMAP_ELIMIT, "%s%s", t->peer, why);
	return 0;
}

/* The end of the stream or a reset, in words that say where we were. */
static int transport_lost(struct transport *t, int errnum)
{
	const char *where = t->framing.in_literal     ? " in the middle of a literal"
	                    : t->framing.line_len > 0 ? " in the middle of a reply line"
	                                              : "";

	if (errnum == 0)
		return transport_fail(t, IMAP_ENET, "%s closed the connection%s", t->peer, where);
	if (errnum == ECONNRESET)
		return transport_fail(t, IMAP_ENET, "connection reset by %s%s", t->peer, where);
	return transport_fail(t, IMAP_ENET, "connection to %s failed%s: %s", t->peer, where,
	                      strerror(errnum));
}

/* OpenSSL writes on the socket with write(): a peer gone would raise
 * SIGPIPE (the plain path uses MSG_NOSIGNAL).  The signal is held for the
 * call and one that it raised is taken back, so a process that does not
 * ignore SIGPIPE (the coordinator's verifier) is not killed by a server. */
struct sigpipe_hold {
	sigset_t set, old;
};

static void sigpipe_hold(struct sigpipe_hold *h)
{
	sigemptyset(&h->set);
	sigaddset(&h->set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &h->set, &h->old);
}

static void sigpipe_release(struct sigpipe_hold *h)
{
	struct timespec zero = {0, 0};
	sigset_t pending;
	int saved = errno;

	sigpending(&pending);
	if (sigismember(&pending, SIGPIPE) && !sigismember(&h->old, SIGPIPE))
		sigtimedwait(&h->set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &h->old, NULL);
	errno = saved;
}

/* A TLS-level failure; OpenSSL 3 reports a peer gone without close_notify
 * as one. */
static int transport_tls_error(struct transport *t)
{
	unsigned long e = ERR_get_error();
	const char *reason = ERR_reason_error_string(e);

#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return transport_lost(t, 0);
#endif
	return transport_fail(t, IMAP_ENET, "TLS error on the connection to %s: %s", t->peer,
	                      reason != NULL ? reason : "unknown");
}

static ssize_t transport_read(mailstream_low *low, void *buf, size_t count)
{
	struct transport *t = low->data;

	if (count > INT32_MAX)
		count = INT32_MAX;
	for (;;) {
		short want = POLLIN;
		ssize_t n;

		if (t->failed)
			return -1;
		if (transport_cancelled(t))
			return transport_fail(t, IMAP_ENET, "cancelled while reading from %s",
			                      t->peer);
		if (t->ssl != NULL) {
			struct sigpipe_hold h;
			int r;

			/* errno tells a reset from an end of stream below. */
			ERR_clear_error();
			errno = 0;
			sigpipe_hold(&h);
			r = SSL_read(t->ssl, buf, (int)count);
			sigpipe_release(&h);
			if (r > 0) {
				n = r;
			} else {
				int e = SSL_get_error(t->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE)
					want = POLLOUT;
				else if (e == SSL_ERROR_ZERO_RETURN ||
				         (e == SSL_ERROR_SYSCALL && errno == 0) ||
				         (e == SSL_ERROR_SYSCALL && r == 0))
					return transport_lost(t, 0);
				else if (e == SSL_ERROR_SYSCALL)
					return transport_lost(t, errno);
				else if (e != SSL_ERROR_WANT_READ)
					return transport_tls_error(t);
				n = -1;
			}
		} else {
			n = recv(t->fd, buf, count, 0);
			if (n == 0)
				return transport_lost(t, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return transport_lost(t, errno);
		}
		if (t->wrote && t->stats != NULL)
			t->stats->round_trips++;
		t->wrote = false;
		if (n > 0) {
			if (transport_frame(t, buf, (size_t)n) < 0)
				return -1;
			transport_moved(t);
			window_moved(&t->rx, (size_t)n);
			if (t->stats != NULL)
				t->stats->bytes_in += (uint64_t)n;
			return n;
		}
		long long waited = imap_monotonic_ms();
		int r = transport_wait(t, want, &t->rx, 0, "waiting for a reply");
		if (t->stats != NULL)
			t->stats->wait_ms += (uint64_t)(imap_monotonic_ms() - waited);
		if (r < 0)
			return -1;
	}
}

static ssize_t transport_write(mailstream_low *low, const void *buf, size_t count)
{
	struct transport *t = low->data;

	if (count > INT32_MAX)
		count = INT32_MAX;
	for (;;) {
		short want = POLLOUT;
		ssize_t n;

		if (t->failed)
			return -1;
		if (transport_cancelled(t))
			return transport_fail(t, IMAP_ENET, "cancelled while writing to %s",
			                      t->peer);
		if (t->may_write != NULL && !t->may_write(t->may_write_context))
			return transport_fail(t, IMAP_ENET,
			                      "write to %s refused: this worker's lease may have"
			                      " passed to another worker",
			                      t->peer);
		if (t->ssl != NULL) {
			struct sigpipe_hold h;
			int r;

			/* errno tells a reset from an end of stream below. */
			ERR_clear_error();
			errno = 0;
			sigpipe_hold(&h);
			r = SSL_write(t->ssl, buf, (int)count);
			sigpipe_release(&h);
			if (r > 0) {
				n = r;
			} else {
				int e = SSL_get_error(t->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					want = POLLIN;
				else if (e == SSL_ERROR_SYSCALL && errno != 0)
					return transport_lost(t, errno);
				else if (e != SSL_ERROR_WANT_WRITE)
					return transport_lost(t, 0);
				n = -1;
			}
		} else {
			/* MSG_NOSIGNAL: a peer gone is an error, not SIGPIPE. */
			n = send(t->fd, buf, count, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return transport_lost(t, errno);
		}
		if (n > 0) {
			transport_moved(t);
			/* A new command: the replies' progress window starts over. */
			memset(&t->rx, 0, sizeof(t->rx));
			window_moved(&t->tx, (size_t)n);
			t->wrote = true;
			if (t->stats != NULL)
				t->stats->bytes_out += (uint64_t)n;
			return n;
		}
		if (transport_wait(t, want, &t->tx, 0, "sending") < 0)
			return -1;
	}
}

static int transport_close(mailstream_low *low)
{
	struct transport *t = low->data;

	if (t->fd >= 0) {
		/* One try, never a wait: the socket is non-blocking. */
		if (t->ssl != NULL && !t->failed) {
			struct sigpipe_hold h;
			sigpipe_hold(&h);
			SSL_shutdown(t->ssl);
			sigpipe_release(&h);
		}
		close(t->fd);
		t->fd = -1;
	}
	return 0;
}

static int transport_get_fd(mailstream_low *low)
{
	struct transport *t = low->data;

	return t->fd;
}

static void transport_free(mailstream_low *low)
{
	struct transport *t = low->data;

	transport_close(low);
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	ERR_clear_error();
	free(t);
	free(low);
}

static void transport_cancel(mailstream_low *low)
{
	(void)low;
}

static struct mailstream_cancel *transport_get_cancel(mailstream_low *low)
{
	(void)low;
	return NULL;
}

static carray *transport_get_certificate_chain(mailstream_low *low)
{
	(void)low;
	return NULL;
}

static mailstream_low_driver transport_driver = {
    .mailstream_read = transport_read,
    .mailstream_write = transport_write,
    .mailstream_close = transport_close,
    .mailstream_get_fd = transport_get_fd,
    .mailstream_free = transport_free,
    .mailstream_cancel = transport_cancel,
    .mailstream_get_cancel = transport_get_cancel,
    .mailstream_get_certificate_chain = transport_get_certificate_chain,
};

/* Non-blocking connect to one address, bounded like every wait. */
static int connect_one(struct transport *t, const struct addrinfo *ai, long long deadline_ms,
                       int *errno_r)
{
	int fd, r, soerr = 0;
	socklen_t len = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (r == 0) {
		t->fd = fd;
		return 0;
	}
	if (errno != EINPROGRESS) {
		*errno_r = errno;
		close(fd);
		return -1;
	}
	t->fd = fd;
	if (transport_wait(t, POLLOUT, NULL, deadline_ms, "connecting") < 0) {
		close(fd);
		t->fd = -1;
		*errno_r = ETIMEDOUT;
		return -2; /* timed out or cancelled: the fault says which */
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		*errno_r = soerr;
		close(fd);
		t->fd = -1;
		return -1;
	}
	return 0;
}

/* The TLS handshake on t->fd, bounded by timeout_s in all. */
static int transport_handshake(struct transport *t, const struct imap_endpoint *ep, char *err,
                               size_t errlen)
{
	long long deadline = imap_monotonic_ms() + (long long)t->timeout_s * 1000;

	if (imap_tls_client_new(t->fd, ep->host, ep->ca_file, ep->tls_verify, &t->ctx, &t->ssl, err,
	                        errlen) < 0)
		return -1;
	for (;;) {
		int r, e;
		struct sigpipe_hold h;

		ERR_clear_error();
		sigpipe_hold(&h);
		errno = 0;
		r = SSL_connect(t->ssl);
		sigpipe_release(&h);
		if (r == 1)
			return 0;
		e = SSL_get_error(t->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			t->failed = true;
			if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
				snprintf(err, errlen, "TLS handshake with %s failed: %s", t->peer,
				         errno != 0 ? strerror(errno)
				                    : "connection closed by the server");
				return IMAP_ENET;
			}
			/* A refused certificate or a TLS mismatch: a setting to
			 * fix, not a connection to retry (as before this driver). */
			imap_tls_handshake_error(t->ssl, ep->host, ep->tls_verify, err, errlen);
			return -1;
		}
		if (transport_wait(t, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, NULL, deadline,
		                   "in the TLS handshake") < 0) {
			snprintf(err, errlen, "%s", t->fault->why);
			return IMAP_ENET;
		}
	}
}

void imap_transport_set_write_guard(mailstream_low *low, bool (*may_write)(void *context),
                                    void *context)
{
	struct transport *t = low->data;

	t->may_write = may_write;
	t->may_write_context = context;
}

void imap_transport_shut(mailstream_low *low)
{
	if (low != NULL && low->driver == &transport_driver)
		((struct transport *)low->data)->failed = true;
}

int imap_transport_start_tls(mailstream_low *low, const struct imap_endpoint *ep, char *err,
                             size_t errlen)
{
	struct transport *t = low->data;

	if (low->driver != &transport_driver || t->ssl != NULL || t->failed) {
		snprintf(err, errlen, "STARTTLS: the connection to %s cannot start TLS now",
		         t->peer);
		return IMAP_ENET;
	}
	if (t->stats != NULL)
		t->stats->round_trips++;
	return transport_handshake(t, ep, err, errlen);
}

int imap_transport_connect(const struct imap_endpoint *ep, struct imap_transport_fault *fault,
                           mailstream_low **low_r, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct transport *t;
	mailstream_low *low;
	long long deadline;
	char portstr[16];
	int r, ret, saved = 0;

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->fd = -1;
	t->fault = fault;
	snprintf(t->host, sizeof(t->host), "%s", ep->host);
	snprintf(t->peer, sizeof(t->peer), "%s:%d", ep->host, ep->port);
	t->timeout_s = ep->timeout_s > 0 ? ep->timeout_s : IMAP_DEFAULT_TIMEOUT_S;
	t->framing.max_line = ep->max_line > 0 ? ep->max_line : IMAP_DEFAULT_MAX_LINE;
	t->framing.max_literal = ep->max_literal > 0 ? ep->max_literal : IMAP_DEFAULT_MAX_LITERAL;
	t->cancel = ep->cancel;
	t->cancel_mine = ep->cancel_mine;
	t->last_io_ms = ep->last_io_ms;
	t->stats = ep->stats;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", ep->port);
	/* Name resolution is the one wait not bounded here: the resolver has its
	 * own timeouts (resolv.conf). */
	r = getaddrinfo(ep->host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", ep->host, gai_strerror(r));
		ret = IMAP_ENET;
		goto fail;
	}
	deadline = imap_monotonic_ms() + (long long)t->timeout_s * 1000;
	ret = IMAP_ENET;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		r = connect_one(t, ai, deadline, &saved);
		if (r == 0)
			break;
		if (r == -2) {
			snprintf(err, errlen, "%s", fault->why);
			break;
		}
	}
	freeaddrinfo(res);
	if (t->fd < 0) {
		if (fault->code == 0)
			snprintf(err, errlen, "cannot connect to %s: %s", t->peer, strerror(saved));
		goto fail;
	}
	transport_moved(t);
	if (t->stats != NULL) /* the TCP handshake; a TLS handshake counts as one more */
		t->stats->round_trips += ep->tls == IMAP_TLS_IMPLICIT ? 2 : 1;
	if (ep->tls == IMAP_TLS_IMPLICIT) {
		ret = transport_handshake(t, ep, err, errlen);
		if (ret < 0)
			goto fail;
	}
	low = mailstream_low_new(t, &transport_driver);
	if (low == NULL) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
		goto fail;
	}
	*low_r = low;
	return 0;
fail:
	/* A failure before the session exists is reported through err only. */
	fault->code = 0;
	fault->why[0] = '\0';
	if (t->fd >= 0)
		close(t->fd);
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	free(t);
	return ret;
}
