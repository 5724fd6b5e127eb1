/* Every string this library sends to a server goes through here: encoded as
 * one IMAP argument, never pasted into a command.
 *
 * Folder names come from the source server and logins and passwords from
 * operators: both can hold CR, LF or NUL, and a CR LF inside an argument ends
 * the command and starts another one (libetpan's quoting escapes only '"' and
 * '\').  So such strings are refused here, with IMAP_EARG and a message that
 * names what the string was (never showing a secret), before a byte is sent. */
#ifndef MAILSHIFT_IMAP_ARG_H
#define MAILSHIFT_IMAP_ARG_H

#include <stdbool.h>
#include <stddef.h>

/* Longest string accepted as one argument (name, login, password). */
#define IMAP_ARG_MAX 65536
/* Longer strings are sent as literals rather than quoted. */
#define IMAP_ARG_QUOTED_MAX 1024

/* A growing byte buffer with a maximum set at creation; data is
 * NUL-terminated.  A failed append (over max, out of memory) leaves the
 * buffer as it was. */
struct imap_buf {
	char *data;
	size_t len, cap, max;
};
void imap_buf_init(struct imap_buf *buf, size_t max);
int imap_buf_append(struct imap_buf *buf, const void *data, size_t len);
int imap_buf_printf(struct imap_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Frees the bytes; wipe first when they held a secret. */
void imap_buf_free(struct imap_buf *buf, bool wipe);

enum imap_arg_form {
	IMAP_ARG_ATOM,    /* sent as is (RFC 3501 9, ASTRING-CHAR without "]") */
	IMAP_ARG_QUOTED,  /* "..." with '"' and '\' escaped */
	IMAP_ARG_LITERAL, /* {N}CRLF or {N+}CRLF, then the bytes */
};

/* Checks that str (len bytes) can be sent as one argument: no CR, LF or NUL,
 * at most IMAP_ARG_MAX bytes.  IMAP_EARG with "<what> ... cannot be sent"
 * in err otherwise; the string is quoted there (control bytes shown as \r, \n,
 * \0) unless secret. */
int imap_arg_check(const char *what, bool secret, const char *str, size_t len, char *err,
                   size_t errlen);

/* Appends str as one astring (RFC 3501 4.3, 9): an atom when it is one, a
 * quoted string when it is short 7-bit text, else a literal, non-synchronizing
 * ("{N+}") when literal_plus.  Returns the form (>= 0) or IMAP_EARG (check
 * failed, or the buffer's maximum) with err set; out is unchanged then.  A
 * synchronizing literal must be sent in two steps: up to and including the
 * CRLF after "{N}", then, after the server's continuation, the bytes. */
int imap_arg_encode(struct imap_buf *out, const char *what, bool secret, const char *str,
                    size_t len, bool literal_plus, char *err, size_t errlen);

/* A flag as APPEND and STORE may carry it: "\" followed by an atom (system
 * flags, RFC 3501 2.3.2) or a keyword atom. */
bool imap_arg_flag_ok(const char *flag, size_t len);

/* An INTERNALDATE as APPEND sends it, without its quotes: date-time of RFC
 * 3501 9, "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d"). */
bool imap_arg_date_ok(const char *date);

#endif
