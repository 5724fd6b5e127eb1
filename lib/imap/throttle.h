/* Recognising server answers that mean "slow down" (rate limiting, overload),
 * as opposed to answers about the message, the folder or the account. */
#ifndef MAILSHIFT_IMAP_THROTTLE_H
#define MAILSHIFT_IMAP_THROTTLE_H

#include <stdbool.h>

/* Whether a status response asks the client to slow down.  text is one
 * response line as the server sent it, with or without its tag and CRLF
 * ("a1 NO [THROTTLED] ...", "* BYE ...", "NO ...").  Recognised, ignoring
 * case:
 *  - NO, BAD or BYE with the response code [THROTTLED] (Gmail, Yahoo,
 *    Exchange) or [UNAVAILABLE] (RFC 5530 3: temporary failure);
 *  - NO, BAD or BYE with Exchange's "Suggested Backoff Time: N [unit]";
 *  - BYE whose text tells of load: "too many", "busy", "overload",
 *    "try again later", "rate limit", "throttl".
 * A [LIMIT] code (RFC 5530: a size or count limit, not load) is never
 * throttling, whatever the text says; OK and PREAUTH never are.  A NO without
 * one of the codes or the backoff phrase is not throttling either: only a BYE
 * is judged by its words.
 *
 * When throttled and backoff_s_r is not NULL, *backoff_s_r is the wait the
 * server suggested in whole seconds (milliseconds rounded up; a number
 * without a unit counts as seconds; at most one day), 0 if none was given. */
bool imap_throttle_classify(const char *text, int *backoff_s_r);

#endif
