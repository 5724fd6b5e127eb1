#!/usr/bin/env python3
"""A scripted IMAP server for tests: serves a small mailbox correctly, or
misbehaves in one chosen way (hangs, endless lines, huge literals, drops,
invalid data, hostile folder names).

    fake_imap.py --port PORT [--user U] [--password P] [--xoauth2-token T]
                 [--messages-dir DIR] [--log FILE] [--no-condstore]
                 [misbehaviour options]

Listens on 127.0.0.1:PORT (0: any free port), plain TCP; with --tls-cert and
--tls-key (PEM files) implicit TLS, or with --starttls as well, plain until
the client's STARTTLS (then STARTTLS is advertised and LOGIN refused before
it). Once
listening it prints "listening on 127.0.0.1:PORT" on stdout. One mailbox
shared by all connections (so what one connection APPENDs another one sees).

The mailbox (default): INBOX (3 messages), Archive (a parent), Archive/2002
(2 messages), "With Space" (2 messages), each message with flags, keywords
($Work, $Label1) and its own INTERNALDATE; Sent, Drafts and Trash (empty,
with their special-use attributes). --messages-dir DIR loads DIR/*.eml into
INBOX and DIR/SUB/*.eml into the folder SUB (hierarchy "/"), with no flags
and the file's modification time as INTERNALDATE.

Commands: CAPABILITY (IMAP4rev1 LITERAL+ UIDPLUS SASL-IR AUTH=PLAIN
AUTH=XOAUTH2 AUTH=OAUTHBEARER ESEARCH MULTIAPPEND NAMESPACE SPECIAL-USE, and CONDSTORE unless
--no-condstore, SASL-IR unless --no-sasl-ir), LOGIN (atoms, quoted strings, literals), AUTHENTICATE PLAIN
(authorization identity empty or the user), XOAUTH2 and OAUTHBEARER (user
and --xoauth2-token; when that is not given, the password is accepted as the
token; a wrong one gets an error challenge, which OAUTHBEARER must answer
with ^A, RFC 7628), all with SASL-IR or after the "+" continuation; NAMESPACE, LIST and
LSUB (special-use attributes always shown), STATUS (UIDVALIDITY UIDNEXT
MESSAGES HIGHESTMODSEQ UNSEEN), SELECT/EXAMINE (with CONDSTORE), FETCH and
UID FETCH (UID FLAGS INTERNALDATE RFC822.SIZE BODY[] BODY.PEEK[]
BODY.PEEK[]<o.n> MODSEQ, the macros FAST/ALL, CHANGEDSINCE), SEARCH and UID
SEARCH (ALL, UID set, a sequence set; RETURN (MIN MAX COUNT ALL) answered
with ESEARCH), NOOP, LOGOUT, CREATE, SUBSCRIBE, APPEND (MULTIAPPEND, LITERAL+,
APPENDUID), STORE and UID STORE (FLAGS, +FLAGS, -FLAGS, .SILENT), CHECK,
CLOSE (no expunge).

--log FILE  appends one line per command received: "conn=N " and the command
            with its literals shown as {N} (their bytes left out), non-printable
            bytes escaped (\\r, \\n, \\xNN). LOGIN's password and AUTHENTICATE's
            responses are replaced by ***. A line that is not a complete command
            (a client gone mid-command) is logged too.

Misbehaviours (each one option):
--no-greeting          accepts connections and never sends a greeting.
--endless-greeting     sends "* OK " and then bytes forever, never a CRLF.
--huge-literal         the body in a FETCH of bodies is announced as
                       {4294967295}; then bytes are sent until the client goes.
--close-mid-literal    in a FETCH of bodies: sends half of the first body
                       literal, then closes the connection.
--stall-mid-literal    same, then goes silent forever (connection kept open).
--drip SECS            responses to a FETCH of bodies are sent one byte every
                       SECS seconds (a float).
--folders N            N extra empty folders F00001 .. F<N> (LIST, STATUS, ...).
--uidnext N            STATUS and SELECT/EXAMINE report UIDNEXT N; the messages
                       keep their small UIDs.
--folder-name-crlf     one more folder, named "Evil\\r\\nX1 CREATE
                       INJECTED-BY-SOURCE\\r\\nX2 NOOP", listed as a literal.
--status-no-uidnext    STATUS and SELECT/EXAMINE leave UIDNEXT out.
--uid-zero             the first message of each folder is reported with UID 0
                       in FETCH responses (it is found by its real UID).
--uid-negative         same, reported as UID -1.
--uidvalidity-seq L    comma-separated UIDVALIDITY values, one per connection in
                       the order they arrive (the last one repeated): every
                       folder reports that connection's value.
--refuse-create SUBSTR CREATE of a name containing SUBSTR gets
                       "NO [CANNOT] Invalid mailbox name".
--refuse-append-flag FLAG  an APPEND (single or MULTIAPPEND) with a message
                       whose flag list holds FLAG (a flag or keyword, compared
                       case-insensitively) gets "NO [LIMIT] Too many keywords"
                       and stores nothing of that command (MULTIAPPEND is
                       atomic, RFC 3502); APPENDs without it work as usual.
--garbage-fetch        every FETCH response carries "RFC822.SIZE !!" (not a
                       number), a reply no parser accepts.
--bytes-beyond-size N  a body literal has N bytes more than the RFC822.SIZE
                       announced (N bytes of "X" appended to every message when
                       its body is fetched, whole or partial).
--slow-read SECS       on an APPEND, reads the rest of the connection's bytes
                       100 every SECS seconds and never answers again (a server
                       that takes a client's bytes as slowly as a drip).
--drop-after-login N   the Nth successful LOGIN/AUTHENTICATE (1-based, counted
                       over all connections) gets its tagged OK and then the
                       connection is closed; once only.
--odd-names            two more folders, one message each: 'Odd "q" \\ name'
                       (a quote and a backslash: sent quoted with escapes) and
                       "Caf&AOk-" (modified UTF-7 for an 8-bit name).

Pipelining (STATUS and UID STORE sent in bursts before any answer is read):
--status-out-of-order  STATUS and STORE/UID STORE commands that are already
                       waiting in the read buffer when one is read are answered
                       together, in reverse order (each command's untagged data
                       still right before its own tagged reply).
--status-no SUBSTR     STATUS of a folder whose name contains SUBSTR gets
                       "NO [NONEXISTENT] Mailbox doesn't exist".
--status-throttle SUBSTR  same, with "NO [THROTTLED] Too many STATUS commands".
--status-name-upper    the untagged STATUS data names the folder in upper case.
--status-literal       the untagged STATUS data names the folder as a literal.
--bye-on-status N      on a connection, the STATUS after the Nth gets
                       "* BYE Server shutting down" and the connection closes.
--store-no SUBSTR      a STORE/UID STORE whose flag list contains SUBSTR gets
                       "NO [CANNOT] Flag not permitted" (nothing changed).

Python 3 standard library only.
"""

import argparse
import asyncio
import base64
import datetime
import os
import re
import ssl
import sys

LINE_MAX = 1 << 20
LITERAL_RE = re.compile(rb"\{(\d+)(\+?)\}\r\n\Z")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
EVIL_NAME = b"Evil\r\nX1 CREATE INJECTED-BY-SOURCE\r\nX2 NOOP"
ODD_QUOTED = b'Odd "q" \\ name'
ODD_8BIT = b"Caf&AOk-"
SYSTEM_FLAGS = [b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Seen", b"\\Draft"]


def imap_date(ts):
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return "%02d-%s-%04d %02d:%02d:%02d +0000" % (d.day, MONTHS[d.month - 1], d.year, d.hour,
                                                  d.minute, d.second)


def make_message(subject, n, date):
    return (b"From: sender%d@example.org\r\nTo: user@example.com\r\nSubject: %s\r\n"
            b"Date: %s\r\nMessage-ID: <%s.%d@fake-imap>\r\n\r\nBody of message %d.\r\n"
            b"Second line.\r\n" % (n, subject, date.encode(), subject.replace(b" ", b"-"), n, n))


class Message:
    def __init__(self, uid, body, flags, internaldate, modseq):
        self.uid = uid
        self.body = body
        self.flags = list(flags)
        self.internaldate = internaldate
        self.modseq = modseq


class Folder:
    def __init__(self, name, uidvalidity, special=b""):
        self.name = name  # bytes, as on the wire (modified UTF-7)
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.messages = []
        self.special = special
        self.highestmodseq = 1
        self.noselect = False

    def add(self, body, flags, internaldate):
        self.highestmodseq += 1
        m = Message(self.uidnext, body, flags, internaldate, self.highestmodseq)
        self.uidnext += 1
        self.messages.append(m)
        return m


class Mailbox:
    def __init__(self, args):
        self.folders = {}
        self.subscribed = set()
        self.next_validity = 1000
        if args.messages_dir:
            self.load_dir(args.messages_dir)
        else:
            self.load_default()
        for name, special in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"),
                              (b"Trash", b"\\Trash")):
            if name not in self.folders:
                self.create(name, special)
        for i in range(1, args.folders + 1):
            self.create(b"F%05d" % i)
        if args.odd_names:
            for i, name in enumerate((ODD_QUOTED, ODD_8BIT)):
                f = self.create(name)
                f.add(make_message(b"odd", 90 + i, "Mon, 1 Jan 2001 00:00:00 +0000"), [],
                      "01-Jan-2001 00:00:00 +0000")
        if args.folder_name_crlf:
            f = self.create(EVIL_NAME)
            f.add(make_message(b"evil", 1, "Mon, 1 Jan 2001 00:00:00 +0000"), [],
                  "01-Jan-2001 00:00:00 +0000")
        self.subscribed = set(self.folders)

    def create(self, name, special=b""):
        self.next_validity += 1
        f = Folder(name, self.next_validity, special)
        self.folders[name] = f
        return f

    def load_default(self):
        specs = [
            (b"INBOX", [([b"\\Seen"], 2001), ([b"\\Seen", b"\\Flagged", b"$Work"], 2003),
                        ([], 2010)]),
            (b"Archive/2002", [([b"\\Seen", b"\\Answered"], 2002), ([b"$Label1"], 2002)]),
            (b"With Space", [([b"\\Seen", b"\\Draft"], 1999), ([b"\\Deleted", b"$Work"], 2024)]),
        ]
        self.create(b"Archive").noselect = False
        n = 0
        for name, msgs in specs:
            f = self.folders.get(name) or self.create(name)
            for flags, year in msgs:
                n += 1
                ts = datetime.datetime(year, 1 + n % 12, 1 + n, 10, n, 7,
                                       tzinfo=datetime.timezone.utc).timestamp()
                date = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
                    "%a, %d %b %Y %H:%M:%S +0000")
                f.add(make_message(b"%s %d" % (name, n), n, date), flags, imap_date(ts))

    def load_dir(self, top):
        self.create(b"INBOX")
        for dirpath, _dirs, files in sorted(os.walk(top)):
            rel = os.path.relpath(dirpath, top)
            name = b"INBOX" if rel == "." else rel.replace(os.sep, "/").encode()
            for fn in sorted(files):
                if not fn.endswith(".eml"):
                    continue
                path = os.path.join(dirpath, fn)
                with open(path, "rb") as fh:
                    body = fh.read()
                f = self.folders.get(name) or self.create(name)
                f.add(body, [], imap_date(os.stat(path).st_mtime))


class Bad(Exception):
    pass


# ---- command parsing: tokens from the raw command bytes (literals inline) ----

def tokenize(data):
    """Returns a nested list of tokens: bytes (atoms, strings), ('lit', bytes)
    for literals, lists for parenthesised groups."""
    pos = 0
    stack = [[]]
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c in (b" ", b"\r", b"\n"):
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            if len(stack) < 2:
                raise Bad("unbalanced )")
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif c == b'"':
            out = bytearray()
            pos += 1
            while True:
                if pos >= n:
                    raise Bad("unterminated quoted string")
                ch = data[pos]
                if ch == 0x5c:  # backslash
                    if pos + 1 >= n or data[pos + 1] not in (0x22, 0x5c):
                        raise Bad("bad escape in quoted string")
                    out.append(data[pos + 1])
                    pos += 2
                elif ch == 0x22:
                    pos += 1
                    break
                elif ch in (0x0d, 0x0a, 0):
                    raise Bad("CR, LF or NUL in a quoted string")
                else:
                    out.append(ch)
                    pos += 1
            stack[-1].append(bytes(out))
        elif c == b"{":
            m = re.compile(rb"\{(\d+)\+?\}\r\n").match(data, pos)
            if m is None:
                raise Bad("bad literal")
            size = int(m.group(1))
            start = m.end()
            stack[-1].append(("lit", data[start:start + size]))
            pos = start + size
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos:pos + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b"(", b")", b"\r", b"\n"):
                    break
                pos += 1
            stack[-1].append(data[start:pos])
    if len(stack) != 1:
        raise Bad("unbalanced (")
    return stack[0]


def sval(tok):
    """A token as a string value (atom, quoted or literal)."""
    if isinstance(tok, tuple):
        return tok[1]
    if isinstance(tok, bytes):
        return tok
    raise Bad("expected a string")


def quote(name):
    """A name as the server sends it: quoted, or a literal when it cannot be."""
    if any(b in b"\r\n\0" for b in name) or any(b > 0x7e for b in name):
        return b"{%d}\r\n%s" % (len(name), name)
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def parse_set(text, maxval):
    """Sequence set -> function(value) -> bool."""
    ranges = []
    for part in text.split(b","):
        if b":" in part:
            a, b = part.split(b":", 1)
        else:
            a = b = part
        lo = maxval if a == b"*" else int(a)
        hi = maxval if b == b"*" else int(b)
        if lo > hi:
            lo, hi = hi, lo
        ranges.append((lo, hi))
    return lambda v: any(lo <= v <= hi for lo, hi in ranges)


def format_set(values):
    values = sorted(values)
    out = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(b"%d" % values[i] if i == j else b"%d:%d" % (values[i], values[j]))
        i = j + 1
    return b",".join(out)


def printable(data):
    out = []
    for b in data:
        if b == 13:
            out.append("\\r")
        elif b == 10:
            out.append("\\n")
        elif b < 32 or b > 126:
            out.append("\\x%02x" % b)
        elif b == 92:
            out.append("\\\\")
        else:
            out.append(chr(b))
    return "".join(out)


class Server:
    def __init__(self, args):
        self.args = args
        self.mailbox = Mailbox(args)
        self.connections = 0
        self.logins = 0
        self.dropped = False
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.validity_seq = [int(v) for v in args.uidvalidity_seq.split(",")] \
            if args.uidvalidity_seq else []
        self.ssl_ctx = None
        if args.tls_cert:
            self.ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)

    def caps(self):
        c = (b"IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER ESEARCH MULTIAPPEND "
             b"NAMESPACE SPECIAL-USE")
        if not self.args.no_sasl_ir:
            c += b" SASL-IR"
        if self.args.starttls:
            c += b" STARTTLS"
        if not self.args.no_condstore:
            c += b" CONDSTORE"
        return c

    def log_line(self, conn, text):
        if self.log is not None:
            self.log.write("conn=%d %s\n" % (conn, text))

    async def handle(self, reader, writer):
        self.connections += 1
        conn = Connection(self, reader, writer, self.connections)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass


class Connection:
    def __init__(self, server, reader, writer, number):
        self.srv = server
        self.args = server.args
        self.mb = server.mailbox
        self.r = reader
        self.w = writer
        self.number = number
        self.authed = False
        self.selected = None
        self.read_only = True
        self.capture = None  # a list: send() collects there (--status-out-of-order)
        self.held = []  # answers of a burst not sent yet, in arrival order
        self.statuses = 0
        seq = server.validity_seq
        self.validity = seq[min(number - 1, len(seq) - 1)] if seq else None

    async def send(self, data):
        if self.capture is not None:
            self.capture.append(data)
            return
        self.w.write(data)
        await self.w.drain()

    def command_waiting(self):
        """True when a whole command line is already in the read buffer."""
        buf = getattr(self.r, "_buffer", b"")
        return b"\n" in buf

    async def read_command(self):
        """The raw bytes of one command (first line, literals, following lines)
        and its log text; None at end of stream."""
        raw = bytearray()
        shown = bytearray()
        while True:
            line = await self.r.readuntil(b"\n")
            if self.args.slow_read and b" APPEND " in line.upper()[:40]:
                self.srv.log_line(self.number, "(slow read) " + printable(line[:60]))
                while await self.r.read(100):
                    await asyncio.sleep(self.args.slow_read)
                raise asyncio.IncompleteReadError(b"", None)
            raw += line
            m = LITERAL_RE.search(line)
            if m is None:
                shown += line.rstrip(b"\r\n")
                return bytes(raw), bytes(shown)
            shown += line[:m.start()] + b"{%s}" % m.group(1)
            if m.group(2) == b"":
                await self.send(b"+ go ahead\r\n")
            raw += await self.r.readexactly(int(m.group(1)))

    def uidvalidity(self, f):
        return self.validity if self.validity is not None else f.uidvalidity

    def uidnext(self, f):
        return self.args.uidnext if self.args.uidnext else f.uidnext

    async def run(self):
        if self.args.no_greeting:
            await asyncio.Event().wait()
        if self.args.endless_greeting:
            await self.send(b"* OK ")
            chunk = b"x" * 65536
            while True:
                await self.send(chunk)
        await self.send(b"* OK [CAPABILITY " + self.srv.caps() + b"] fake_imap ready\r\n")
        while True:
            try:
                raw, shown = await self.read_command()
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    self.srv.log_line(self.number, "(incomplete) " + printable(e.partial))
                return
            words = raw.split(b" ", 2)
            tag = words[0].rstrip(b"\r\n")
            name = words[1].rstrip(b"\r\n").upper() if len(words) > 1 else b""
            if name == b"UID" and len(words) > 2:
                name += b" " + words[2].split(b" ", 1)[0].rstrip(b"\r\n").upper()
            log = shown
            if name == b"LOGIN":
                # Keep the tag, command and user; hide the password.
                try:
                    toks = tokenize(raw)
                    user = sval(toks[2]) if len(toks) > 2 else b""
                    log = tag + b" LOGIN " + quote(user).split(b"\r\n")[0] + b" ***"
                except Bad:
                    log = tag + b" LOGIN ***"
            elif name == b"AUTHENTICATE":
                parts = shown.split(b" ")
                log = b" ".join(parts[:3]) + (b" ***" if len(parts) > 3 else b"")
            self.srv.log_line(self.number, printable(log))
            hold = self.args.status_out_of_order and name in (b"STATUS", b"STORE", b"UID STORE")
            if hold:
                self.capture = []
            elif self.held:
                await self.release()
            try:
                keep = await self.dispatch(tag, name, raw)
            except Bad as e:
                await self.send(tag + b" BAD " + str(e).encode() + b"\r\n")
                keep = True
            except (ValueError, IndexError) as e:
                await self.send(tag + b" BAD Error in IMAP command: " +
                                str(e).encode("ascii", "replace") + b"\r\n")
                keep = True
            if hold:
                self.held.append(b"".join(self.capture))
                self.capture = None
                if not keep or not self.command_waiting():
                    await self.release(last_at_end=not keep)
            if not keep:
                return

    async def release(self, last_at_end=False):
        """Sends the held answers of a burst, last command first (or, when
        it ended the connection, the others reversed and then its BYE)."""
        held, self.held = self.held, []
        tail = [held.pop()] if last_at_end and held else []
        if len(held) > 1:
            self.srv.log_line(self.number, "(answered %d in reverse order)" % len(held))
        await self.send(b"".join(list(reversed(held)) + tail))

    async def login_ok(self, tag, text):
        self.authed = True
        self.srv.logins += 1
        await self.send(tag + b" OK [CAPABILITY " + self.srv.caps() + b"] " + text + b"\r\n")
        if (self.args.drop_after_login and not self.srv.dropped and
                self.srv.logins == self.args.drop_after_login):
            self.srv.dropped = True
            return False
        return True

    async def dispatch(self, tag, name, raw):
        toks = tokenize(raw)
        args = toks[2:]
        if name == b"UID":
            raise Bad("UID needs a command")
        if name.startswith(b"UID "):
            args = toks[3:]
        if name == b"STARTTLS" and self.args.starttls and self.srv.ssl_ctx is not None:
            await self.send(tag + b" OK Begin TLS negotiation now\r\n")
            await self.w.start_tls(self.srv.ssl_ctx)
            return True
        if name == b"CAPABILITY":
            await self.send(b"* CAPABILITY " + self.srv.caps() + b"\r\n" + tag +
                            b" OK Capability completed\r\n")
        elif name == b"NOOP" or name == b"CHECK":
            await self.send(tag + b" OK done\r\n")
        elif name == b"CLOSE":
            # verify.py and imaplib end a folder with CLOSE; nothing is
            # expunged here (no \Deleted messages are ever served).
            self.selected = None
            await self.send(tag + b" OK Close completed\r\n")
        elif name == b"LOGOUT":
            await self.send(b"* BYE Logging out\r\n" + tag + b" OK Logout completed\r\n")
            return False
        elif name == b"LOGIN":
            if len(args) != 2:
                raise Bad("LOGIN needs a user and a password")
            if sval(args[0]) == self.args.user.encode() and \
                    sval(args[1]) == self.args.password.encode():
                return await self.login_ok(tag, b"Logged in")
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        elif name == b"AUTHENTICATE":
            return await self.authenticate(tag, args)
        elif not self.authed:
            await self.send(tag + b" BAD Not authenticated\r\n")
        elif name == b"NAMESPACE":
            await self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n' + tag +
                            b" OK Namespace completed\r\n")
        elif name in (b"LIST", b"LSUB"):
            await self.list(tag, name, args)
        elif name == b"STATUS":
            return await self.status(tag, args)
        elif name in (b"SELECT", b"EXAMINE"):
            await self.select(tag, name, args)
        elif name == b"CREATE":
            await self.create(tag, args)
        elif name == b"SUBSCRIBE":
            self.mb.subscribed.add(sval(args[0]))
            await self.send(tag + b" OK Subscribe completed\r\n")
        elif name == b"APPEND":
            await self.append(tag, args)
        elif name in (b"FETCH", b"UID FETCH"):
            return await self.fetch(tag, name, args)
        elif name in (b"SEARCH", b"UID SEARCH"):
            await self.search(tag, name, args)
        elif name in (b"STORE", b"UID STORE"):
            await self.store(tag, name, args)
        else:
            await self.send(tag + b" BAD Unknown command\r\n")
        return True

    async def read_sasl_line(self):
        line = await self.r.readuntil(b"\n")
        self.srv.log_line(self.number, "***")
        return line.rstrip(b"\r\n")

    async def authenticate(self, tag, args):
        mech = sval(args[0]).upper()
        if mech not in (b"PLAIN", b"XOAUTH2", b"OAUTHBEARER"):
            await self.send(tag + b" NO Unsupported authentication mechanism\r\n")
            return True
        if len(args) > 1:
            resp = sval(args[1])
        else:
            await self.send(b"+ \r\n")
            resp = await self.read_sasl_line()
        if resp == b"*":
            await self.send(tag + b" BAD Authentication cancelled\r\n")
            return True
        try:
            raw = base64.b64decode(b"" if resp == b"=" else resp, validate=True)
        except ValueError:
            await self.send(tag + b" BAD Invalid base64\r\n")
            return True
        user = self.args.user.encode()
        if mech == b"PLAIN":
            parts = raw.split(b"\0")
            ok = (len(parts) == 3 and parts[0] in (b"", user) and parts[1] == user and
                  parts[2] == self.args.password.encode())
            if ok:
                return await self.login_ok(tag, b"Logged in")
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
            return True
        token = (self.args.xoauth2_token or self.args.password).encode()
        if mech == b"OAUTHBEARER":
            # RFC 7628: gs2 header with the user (',' and '=' escaped),
            # then ^A-separated fields; an error challenge wants ^A back.
            m = re.fullmatch(rb"n,a=([^,]*),\x01(?:[a-z]+=[^\x01]*\x01)*?auth=Bearer "
                             rb"([^\x01]*)\x01(?:[a-z]+=[^\x01]*\x01)*\x01", raw, re.S)
            name = m.group(1).replace(b"=2C", b",").replace(b"=3D", b"=") if m else None
            if m is not None and name == user and m.group(2) == token:
                return await self.login_ok(tag, b"Logged in")
            challenge = base64.b64encode(b'{"status":"invalid_token","scope":"mail"}')
            await self.send(b"+ " + challenge + b"\r\n")
            if await self.read_sasl_line() != b"AQ==":
                await self.send(tag + b" BAD Expected ^A after the error challenge\r\n")
                return True
            await self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid token\r\n")
            return True
        m = re.fullmatch(rb"user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01", raw, re.S)
        if m is not None and m.group(1) == user and m.group(2) == token:
            return await self.login_ok(tag, b"Logged in")
        challenge = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}')
        await self.send(b"+ " + challenge + b"\r\n")
        await self.read_sasl_line()
        await self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
        return True

    def folder_attrs(self, f, parents):
        attrs = [b"\\HasChildren" if f.name in parents else b"\\HasNoChildren"]
        if f.special:
            attrs.append(f.special)
        if f.noselect:
            attrs.append(b"\\Noselect")
        return b"(" + b" ".join(attrs) + b")"

    async def list(self, tag, name, args):
        if args and isinstance(args[0], list):
            args = args[1:]  # LIST (selection options)
        ref, pattern = sval(args[0]), sval(args[1])
        rx = re.compile(re.escape(ref + pattern).replace(b"\\*", b".*").replace(b"%", b"[^/]*"),
                        re.S)
        parents = {n.rsplit(b"/", 1)[0] for n in self.mb.folders if b"/" in n}
        out = bytearray()
        for fname, f in self.mb.folders.items():
            if name == b"LSUB" and fname not in self.mb.subscribed:
                continue
            if rx.fullmatch(fname):
                out += b"* " + name + b" " + self.folder_attrs(f, parents) + b' "/" ' + \
                    quote(fname) + b"\r\n"
            if len(out) >= 1 << 16:
                await self.send(bytes(out))
                out = bytearray()
        await self.send(bytes(out) + tag + b" OK " + name + b" completed\r\n")

    def folder(self, args):
        name = sval(args[0])
        if name.upper() == b"INBOX":
            name = b"INBOX"
        return self.mb.folders.get(name)

    async def status(self, tag, args):
        self.statuses += 1
        if self.args.bye_on_status and self.statuses > self.args.bye_on_status:
            await self.send(b"* BYE Server shutting down\r\n")
            return False
        f = self.folder(args)
        asked = sval(args[0])
        if self.args.status_no and self.args.status_no.encode() in asked:
            f = None
        if self.args.status_throttle and self.args.status_throttle.encode() in asked:
            await self.send(tag + b" NO [THROTTLED] Too many STATUS commands\r\n")
            return True
        if f is None:
            await self.send(tag + b" NO [NONEXISTENT] Mailbox doesn't exist\r\n")
            return True
        items = []
        for item in args[1]:
            item = item.upper()
            if item == b"UIDVALIDITY":
                items.append(b"UIDVALIDITY %d" % self.uidvalidity(f))
            elif item == b"UIDNEXT":
                if not self.args.status_no_uidnext:
                    items.append(b"UIDNEXT %d" % self.uidnext(f))
            elif item == b"MESSAGES":
                items.append(b"MESSAGES %d" % len(f.messages))
            elif item == b"UNSEEN":
                items.append(b"UNSEEN %d" % sum(1 for m in f.messages if b"\\Seen" not in m.flags))
            elif item == b"HIGHESTMODSEQ" and not self.args.no_condstore:
                items.append(b"HIGHESTMODSEQ %d" % f.highestmodseq)
            elif item == b"RECENT":
                items.append(b"RECENT 0")
            else:
                raise Bad("unknown STATUS item")
        shown = f.name.upper() if self.args.status_name_upper else f.name
        shown = b"{%d}\r\n%s" % (len(shown), shown) if self.args.status_literal else quote(shown)
        await self.send(b"* STATUS " + shown + b" (" + b" ".join(items) + b")\r\n" +
                        tag + b" OK Status completed\r\n")
        return True

    async def select(self, tag, name, args):
        self.selected = None
        f = self.folder(args)
        if f is None or f.noselect:
            await self.send(tag + b" NO [NONEXISTENT] Mailbox doesn't exist\r\n")
            return
        self.selected = f
        self.read_only = name == b"EXAMINE"
        out = (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work $Label1)\r\n"
               b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
               b"Flags permitted.\r\n")
        out += b"* %d EXISTS\r\n* 0 RECENT\r\n" % len(f.messages)
        out += b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % self.uidvalidity(f)
        if not self.args.status_no_uidnext:
            out += b"* OK [UIDNEXT %d] Predicted next UID\r\n" % self.uidnext(f)
        if not self.args.no_condstore:
            out += b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % f.highestmodseq
        out += tag + (b" OK [READ-ONLY] Examine completed\r\n" if self.read_only
                      else b" OK [READ-WRITE] Select completed\r\n")
        await self.send(out)

    async def create(self, tag, args):
        name = sval(args[0]).rstrip(b"/")
        if self.args.refuse_create and self.args.refuse_create.encode() in name:
            await self.send(tag + b" NO [CANNOT] Invalid mailbox name\r\n")
        elif name in self.mb.folders or name.upper() == b"INBOX":
            await self.send(tag + b" NO [ALREADYEXISTS] Mailbox already exists\r\n")
        else:
            self.mb.create(name)
            await self.send(tag + b" OK Create completed\r\n")

    async def append(self, tag, args):
        f = self.folder(args)
        if f is None:
            await self.send(tag + b" NO [TRYCREATE] Mailbox doesn't exist\r\n")
            return
        rest = args[1:]
        new = []
        while rest:
            flags, date = [], None
            if isinstance(rest[0], list):
                flags = [bytes(x) for x in rest[0]]
                rest = rest[1:]
            if rest and isinstance(rest[0], bytes):
                date = rest[0].decode()
                datetime.datetime.strptime(date.strip(), "%d-%b-%Y %H:%M:%S %z")
                rest = rest[1:]
            if not rest or not isinstance(rest[0], tuple):
                raise Bad("APPEND needs a literal")
            body = rest[0][1]
            rest = rest[1:]
            new.append((body, flags, date or imap_date(datetime.datetime.now().timestamp())))
        if not new:
            raise Bad("APPEND needs a message")
        refused = self.args.refuse_append_flag
        if refused and any(refused.encode().lower() in [x.lower() for x in flags]
                           for _body, flags, _date in new):
            await self.send(tag + b" NO [LIMIT] Too many keywords\r\n")
            return
        uids = [f.add(body, flags, date).uid for body, flags, date in new]
        await self.send(tag + b" OK [APPENDUID %d %s] Append completed\r\n" %
                        (self.uidvalidity(f), format_set(uids)))

    def matching(self, uid_mode, settext):
        f = self.selected
        if uid_mode:
            maxuid = f.messages[-1].uid if f.messages else 0
            inset = parse_set(settext, maxuid)
            return [(i + 1, m) for i, m in enumerate(f.messages) if inset(m.uid)]
        inset = parse_set(settext, len(f.messages))
        return [(i + 1, m) for i, m in enumerate(f.messages) if inset(i + 1)]

    def shown_uid(self, m):
        if self.selected.messages and m is self.selected.messages[0]:
            if self.args.uid_zero:
                return b"0"
            if self.args.uid_negative:
                return b"-1"
        return b"%d" % m.uid

    async def fetch(self, tag, name, args):
        if self.selected is None:
            await self.send(tag + b" BAD No mailbox selected\r\n")
            return True
        uid_mode = name == b"UID FETCH"
        items = args[1] if isinstance(args[1], list) else [args[1]]
        items = [bytes(i).upper() for i in items]
        expanded = []
        for i in items:
            if i == b"FAST":
                expanded += [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]
            elif i == b"ALL":
                expanded += [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"]
            else:
                expanded.append(i)
        items = expanded
        if uid_mode and b"UID" not in items:
            items.insert(0, b"UID")
        changedsince = None
        if len(args) > 2 and isinstance(args[2], list):
            mods = args[2]
            if len(mods) >= 2 and bytes(mods[0]).upper() == b"CHANGEDSINCE":
                changedsince = int(mods[1])
                if b"MODSEQ" not in items:
                    items.append(b"MODSEQ")
        bodies = any(i.startswith(b"BODY") or i.startswith(b"RFC822") and i != b"RFC822.SIZE"
                     for i in items)
        out = bytearray()
        for seq, m in self.matching(uid_mode, bytes(args[0])):
            if changedsince is not None and m.modseq <= changedsince:
                continue
            parts = []
            for i in items:
                if i == b"UID":
                    parts.append(b"UID " + self.shown_uid(m))
                elif i == b"FLAGS":
                    parts.append(b"FLAGS (" + b" ".join(m.flags) + b")")
                elif i == b"INTERNALDATE":
                    parts.append(b'INTERNALDATE "%s"' % m.internaldate.encode())
                elif i == b"RFC822.SIZE":
                    parts.append(b"RFC822.SIZE !!" if self.args.garbage_fetch
                                 else b"RFC822.SIZE %d" % len(m.body))
                elif i == b"MODSEQ":
                    if not self.args.no_condstore:
                        parts.append(b"MODSEQ (%d)" % m.modseq)
                elif i == b"ENVELOPE":
                    pass
                elif i.startswith(b"BODY") or i == b"RFC822":
                    mm = re.fullmatch(rb"BODY(?:\.PEEK)?\[\](?:<(\d+)\.(\d+)>)?", i)
                    if mm is None and i != b"RFC822":
                        raise Bad("only BODY[] and BODY[]<o.n> are served")
                    data = m.body + b"X" * self.args.bytes_beyond_size
                    label = b"BODY[]"
                    if mm is not None and mm.group(1) is not None:
                        o, n = int(mm.group(1)), int(mm.group(2))
                        data = data[o:o + n]
                        label = b"BODY[]<%d>" % o
                    parts.append(("body", label, data))
                else:
                    raise Bad("unknown FETCH item")
            line = bytearray(b"* %d FETCH (" % seq)
            first = True
            for p in parts:
                if not first:
                    line += b" "
                first = False
                if isinstance(p, tuple):
                    _, label, data = p
                    if bodies and (self.args.huge_literal or self.args.close_mid_literal or
                                   self.args.stall_mid_literal):
                        return await self.body_fault(out + line + label, data)
                    line += label + b" {%d}\r\n" % len(data) + data
                else:
                    line += p
            out += line + b")\r\n"
        if not (bodies and self.args.drip):
            await self.send(bytes(out) + tag + b" OK Fetch completed\r\n")
            return True
        data = bytes(out) + tag + b" OK Fetch completed\r\n"
        for i in range(len(data)):
            await self.send(data[i:i + 1])
            await asyncio.sleep(self.args.drip)
        return True

    async def body_fault(self, head, data):
        if self.args.huge_literal:
            await self.send(bytes(head) + b" {4294967295}\r\n")
            chunk = b"y" * 65536
            while True:
                await self.send(chunk)
        await self.send(bytes(head) + b" {%d}\r\n" % len(data) + data[:len(data) // 2])
        if self.args.close_mid_literal:
            return False
        await asyncio.Event().wait()

    async def search(self, tag, name, args):
        if self.selected is None:
            await self.send(tag + b" BAD No mailbox selected\r\n")
            return
        uid_mode = name == b"UID SEARCH"
        ret = None
        if args and isinstance(args[0], bytes) and args[0].upper() == b"RETURN":
            ret = [bytes(x).upper() for x in args[1]] or [b"ALL"]
            args = args[2:]
        msgs = list(enumerate(self.selected.messages, 1))
        i = 0
        while i < len(args):
            a = bytes(args[i]).upper()
            if a == b"ALL":
                i += 1
            elif a == b"UID":
                maxuid = self.selected.messages[-1].uid if self.selected.messages else 0
                inset = parse_set(bytes(args[i + 1]), maxuid)
                msgs = [(s, m) for s, m in msgs if inset(m.uid)]
                i += 2
            elif re.fullmatch(rb"[0-9*:,]+", a):
                inset = parse_set(a, len(self.selected.messages))
                msgs = [(s, m) for s, m in msgs if inset(s)]
                i += 1
            else:
                raise Bad("unsupported search criterion")
        values = [m.uid if uid_mode else s for s, m in msgs]
        if ret is None:
            await self.send(b"* SEARCH" + b"".join(b" %d" % v for v in values) + b"\r\n" +
                            tag + b" OK Search completed\r\n")
            return
        out = b'* ESEARCH (TAG "' + tag + b'")' + (b" UID" if uid_mode else b"")
        if values and b"MIN" in ret:
            out += b" MIN %d" % min(values)
        if values and b"MAX" in ret:
            out += b" MAX %d" % max(values)
        if b"COUNT" in ret:
            out += b" COUNT %d" % len(values)
        if values and b"ALL" in ret:
            out += b" ALL " + format_set(values)
        await self.send(out + b"\r\n" + tag + b" OK Search completed\r\n")

    async def store(self, tag, name, args):
        if self.selected is None or self.read_only:
            await self.send(tag + b" NO Mailbox is read-only or not selected\r\n")
            return
        uid_mode = name == b"UID STORE"
        op = bytes(args[1]).upper()
        flags = args[2] if isinstance(args[2], list) else [args[2]]
        flags = [bytes(x) for x in flags]
        silent = op.endswith(b".SILENT")
        op = op.replace(b".SILENT", b"")
        if self.args.store_no and any(self.args.store_no.encode() in x for x in flags):
            await self.send(tag + b" NO [CANNOT] Flag not permitted\r\n")
            return
        f = self.selected
        out = bytearray()
        for seq, m in self.matching(uid_mode, bytes(args[0])):
            if op == b"FLAGS":
                m.flags = list(flags)
            elif op == b"+FLAGS":
                m.flags += [x for x in flags if x not in m.flags]
            elif op == b"-FLAGS":
                m.flags = [x for x in m.flags if x not in flags]
            else:
                raise Bad("unknown STORE operation")
            f.highestmodseq += 1
            m.modseq = f.highestmodseq
            if not silent:
                out += b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (seq, m.uid, b" ".join(m.flags))
        await self.send(bytes(out) + tag + b" OK Store completed\r\n")


async def serve(args):
    server = Server(args)
    implicit = server.ssl_ctx if not args.starttls else None
    srv = await asyncio.start_server(server.handle, "127.0.0.1", args.port, limit=LINE_MAX,
                                     ssl=implicit)
    print("listening on 127.0.0.1:%d" % srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


def main():
    p = argparse.ArgumentParser(description="Scripted IMAP server for tests (plain TCP).")
    p.add_argument("--port", type=int, required=True, help="port to listen on, 0 for any")
    p.add_argument("--user", default="u")
    p.add_argument("--password", default="p")
    p.add_argument("--xoauth2-token", default=None)
    p.add_argument("--messages-dir", default=None)
    p.add_argument("--log", default=None)
    p.add_argument("--tls-cert", default=None, metavar="FILE")
    p.add_argument("--tls-key", default=None, metavar="FILE")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--no-condstore", action="store_true")
    p.add_argument("--no-sasl-ir", action="store_true")
    p.add_argument("--no-greeting", action="store_true")
    p.add_argument("--endless-greeting", action="store_true")
    p.add_argument("--huge-literal", action="store_true")
    p.add_argument("--close-mid-literal", action="store_true")
    p.add_argument("--stall-mid-literal", action="store_true")
    p.add_argument("--drip", type=float, default=0.0, metavar="SECS")
    p.add_argument("--folders", type=int, default=0, metavar="N")
    p.add_argument("--uidnext", type=int, default=0, metavar="N")
    p.add_argument("--folder-name-crlf", action="store_true")
    p.add_argument("--status-no-uidnext", action="store_true")
    p.add_argument("--uid-zero", action="store_true")
    p.add_argument("--uid-negative", action="store_true")
    p.add_argument("--uidvalidity-seq", default=None, metavar="LIST")
    p.add_argument("--refuse-create", default=None, metavar="SUBSTR")
    p.add_argument("--refuse-append-flag", default=None, metavar="FLAG")
    p.add_argument("--garbage-fetch", action="store_true")
    p.add_argument("--bytes-beyond-size", type=int, default=0, metavar="N")
    p.add_argument("--slow-read", type=float, default=0.0, metavar="SECS")
    p.add_argument("--drop-after-login", type=int, default=0, metavar="N")
    p.add_argument("--odd-names", action="store_true")
    p.add_argument("--status-out-of-order", action="store_true")
    p.add_argument("--status-no", default=None, metavar="SUBSTR")
    p.add_argument("--status-throttle", default=None, metavar="SUBSTR")
    p.add_argument("--status-name-upper", action="store_true")
    p.add_argument("--status-literal", action="store_true")
    p.add_argument("--bye-on-status", type=int, default=0, metavar="N")
    p.add_argument("--store-no", default=None, metavar="SUBSTR")
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
