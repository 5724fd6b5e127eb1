"""Small imaplib helpers shared by verify.py, imapstate.py and mutate.py.

Account specs are HOST:PORT:USER:PASS (the password may contain ':').
Folder names are Unicode here and modified UTF-7 (RFC 3501 5.1.3) on the wire.
"""
import base64
import datetime
import imaplib
import re


class Usage(Exception):
    """A bad command line argument (exit status 2)."""


class Account:
    def __init__(self, spec):
        parts = spec.split(":", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            raise Usage("bad account %r: want HOST:PORT:USER:PASS" % spec)
        self.host, self.port, self.user, self.password = parts[0], int(parts[1]), parts[2], parts[3]

    def connect(self):
        conn = imaplib.IMAP4(self.host, self.port, timeout=60)
        conn.login(self.user, self.password)
        return conn


def utf7_decode(name):
    out, i = [], 0
    while i < len(name):
        j = name.find("&", i)
        if j < 0:
            out.append(name[i:])
            break
        out.append(name[i:j])
        k = name.index("-", j)
        if k == j + 1:
            out.append("&")
        else:
            b64 = name[j + 1 : k].replace(",", "/")
            out.append(base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be"))
        i = k + 1
    return "".join(out)


def utf7_encode(name):
    out, pending = [], []

    def flush():
        if pending:
            b64 = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + b64.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def quote(name):
    """A Unicode folder name as an IMAP quoted string."""
    wire = utf7_encode(name)
    return '"' + wire.replace("\\", "\\\\").replace('"', '\\"') + '"'


LIST_RE = re.compile(rb'\((?P<attrs>[^)]*)\) (?P<delim>"(?:\\.|[^"\\])"|NIL) ?(?P<name>.*)$', re.S)


def _unquote(raw):
    if raw.startswith(b'"') and raw.endswith(b'"'):
        raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return raw


def list_folders(conn):
    """[(name, delimiter, set of lower-case attributes)] from LIST "" "*"."""
    typ, data = conn.list('""', '"*"')
    if typ != "OK":
        raise imaplib.IMAP4.error("LIST failed: %r" % data)
    folders, items = [], iter(data)
    for item in items:
        if item is None or item == b"":  # b"": the line's end after a literal
            continue
        if isinstance(item, tuple):  # name sent as a literal
            head, name = item
            m = LIST_RE.match(head.rsplit(b"{", 1)[0])
            raw = name
        else:
            m = LIST_RE.match(item)
            raw = _unquote(m.group("name")) if m else b""
        if not m:
            raise imaplib.IMAP4.error("cannot parse LIST reply %r" % (item,))
        delim = m.group("delim")
        delim = None if delim == b"NIL" else _unquote(delim).decode()
        attrs = {a.lower() for a in m.group("attrs").decode().split()}
        folders.append((utf7_decode(raw.decode()), delim, attrs))
    return folders


def examine(conn, name, condstore=False):
    """EXAMINE (read-only) a folder; returns its message count."""
    typ, data = conn.select(quote(name) + (" (CONDSTORE)" if condstore else ""), readonly=True)
    if typ != "OK":
        raise imaplib.IMAP4.error("EXAMINE %s failed: %r" % (name, data))
    return int(data[0])


def untagged_value(conn, key):
    typ, data = conn.response(key)
    return int(data[-1]) if data and data[-1] is not None else None


FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
DATE_RE = re.compile(rb'INTERNALDATE "([^"]+)"')
UID_RE = re.compile(rb"UID (\d+)")
MODSEQ_RE = re.compile(rb"MODSEQ \((\d+)\)")
MSG_START_RE = re.compile(rb"\d+ \(")


def normalize_flags(raw):
    """Sorted flags without \\Recent; system flags in canonical case."""
    flags = []
    for f in raw.decode("utf-8", "replace").split():
        if f.startswith("\\"):
            f = "\\" + f[1:].capitalize()
            if f == "\\Recent":
                continue
        flags.append(f)
    return sorted(flags)


def internaldate_epoch(raw):
    when = datetime.datetime.strptime(raw.decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    return int(when.timestamp())


def fetch_chunks(conn, count, items, chunk=500):
    """FETCH items for sequence numbers 1..count in chunks; yields
    (metadata bytes, literal bytes or None) per message."""
    for first in range(1, count + 1, chunk):
        last = min(first + chunk - 1, count)
        typ, data = conn.fetch("%d:%d" % (first, last), items)
        if typ != "OK":
            raise imaplib.IMAP4.error("FETCH failed: %r" % data)
        pending = None
        for item in data:
            if item is None:
                continue
            if isinstance(item, tuple):
                if pending:
                    yield tuple(pending)
                pending = [item[0], item[1]]
            elif pending and pending[1] is not None and not MSG_START_RE.match(item):
                pending[0] += item  # the rest of a message's items, after its literal
            else:
                if pending:
                    yield tuple(pending)
                pending = [item, None]
        if pending:
            yield tuple(pending)
