/* What lib/pop3's files share besides pop3.h: the session's line I/O
 * (pop3.c), used by the listing (list.c). */
#ifndef MAILSHIFT_POP3_PRIVATE_H
#define MAILSHIFT_POP3_PRIVATE_H

#include "pop3.h"

#include <stddef.h>

/* Breaks the session for an answer that broke a bound or is not POP3. */
int pop3_bad(struct pop3_session *s, int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* One line without its CRLF (a bare LF is taken too) into line (max bytes,
 * NUL-terminated): 0, or IMAP_ELIMIT past max, or the stream's loss. */
int pop3_read_line(struct pop3_session *s, char *line, size_t max, const char *doing, char *err,
                   size_t errlen);
/* The server's line as shown in errors: control bytes as '?', cut. */
void pop3_shown(const char *line, char *out, size_t outlen);
/* Sends one command (cmd with its CRLF; shown as what in errors) and reads
 * its status line. */
int pop3_command(struct pop3_session *s, const char *cmd, const char *what, char *line, size_t max,
                 char *err, size_t errlen);

#endif
