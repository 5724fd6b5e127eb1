#!/usr/bin/env python3
"""refcopy: a pipelined reference IMAP copier for the benchmark.

    refcopy.py --src HOST:PORT:USER:PASS --dst HOST:PORT:USER:PASS --state FILE
               [--tls none|implicit|starttls] [--ca-file PEM] [--parallel 4]
               [--batch 100] [--fetch-chunk 100] [--fetch-depth 4]

What a client that spends round trips carefully does, to compare mailshift
with (issue 12): Python 3 standard library only, raw sockets (+ ssl).

- Logs in to the source, LISTs its folders and asks STATUS (MESSAGES UIDNEXT
  UIDVALIDITY HIGHESTMODSEQ) of all of them in one pipelined burst. A folder
  whose STATUS equals what FILE recorded after the last run is done.
- Each changed folder gets its own connection pair (--parallel at a time,
  default 4): the source EXAMINEd (CONDSTORE), the new UIDs found with one
  UID SEARCH, their FLAGS, INTERNALDATE and BODY.PEEK[] fetched in pipelined
  UID FETCH chunks (--fetch-chunk UIDs, --fetch-depth commands in flight) by a
  reader thread, while the folder's thread APPENDs them to the destination:
  MULTIAPPEND (RFC 3502) batches of --batch messages where the destination
  offers it, with non-synchronizing literals {N+} (LITERAL+) where offered
  (then two batches in flight), synchronizing literals otherwise.
- Destination folders: a source folder with a special-use attribute goes to
  the destination's folder with the same attribute, the others keep their
  path with the destination's delimiter; missing ones are CREATEd.
- Later runs: new messages as above; flag changes from UID FETCH (FLAGS)
  (CHANGEDSINCE the recorded HIGHESTMODSEQ) where the source has CONDSTORE
  (all flags otherwise), compared with the flags recorded per message, sent
  as one pipelined UID STORE FLAGS.SILENT per distinct flag list, to the
  destination UIDs APPENDUID (UIDPLUS) returned.
FILE (JSON) keeps per folder UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the
source UID -> (destination UID, flags) map; it is written at the end.
Prints one summary line; exit 0 when all folders were copied, 1 otherwise.
"""

import argparse
import json
import os
import queue
import re
import socket
import ssl
import sys
import threading
import time

LITERAL_RE = re.compile(rb"\{(\d+)\}\r\n\Z")
FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
DATE_RE = re.compile(rb'INTERNALDATE "([^"]+)"')
UID_RE = re.compile(rb"\bUID (\d+)")
MODSEQ_RE = re.compile(rb"MODSEQ \((\d+)\)")
CAPS_RE = re.compile(rb"\[CAPABILITY ([^\]]*)\]|^\* CAPABILITY (.*)$", re.I)
LIST_RE = re.compile(rb'^\* LIST \(([^)]*)\) (NIL|"(?:\\.|[^"\\])*") (.*)$', re.I | re.S)
STATUS_RE = re.compile(rb"^\* STATUS (.*) \(([^)]*)\)$", re.I | re.S)
APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]", re.I)
SPECIAL_USE = (b"\\sent", b"\\drafts", b"\\trash", b"\\junk", b"\\archive")


class Fail(Exception):
    pass


def parse_account(spec):
    host, port, user, pw = spec.split(":", 3)
    return host, int(port), user, pw


def qstr(s):
    """An IMAP quoted string of s (str or bytes); CR, LF and NUL refused."""
    if isinstance(s, str):
        s = s.encode()
    if any(c in s for c in b"\r\n\0"):
        raise Fail("refusing to send %r" % s)
    return b'"' + s.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def uid_set(uids):
    """1,2,3,7 -> b"1:3,7" (uids ascending)."""
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(b"%d" % uids[i] if i == j else b"%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return b",".join(out)


def expand_set(s):
    out = []
    for part in s.split(b","):
        if b":" in part:
            a, b = (int(x) for x in part.split(b":"))
            out.extend(range(a, b + 1) if a <= b else range(a, b - 1, -1))
        else:
            out.append(int(part))
    return out


def flag_key(raw):
    """Flags as a sorted space-joined str, without \\Recent."""
    return " ".join(sorted(f for f in raw.decode("utf-8", "replace").split()
                           if f.lower() != "\\recent"))


class Conn:
    """One IMAP connection: buffered reads, tagged commands, literal framing."""

    def __init__(self, spec, args, name):
        self.host, self.port, self.user, self.pw = parse_account(spec)
        self.name = name
        self.buf = bytearray()
        self.tagn = 0
        self.caps = set()
        sock = socket.create_connection((self.host, self.port), timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = None
        if args.tls != "none":
            ctx = ssl.create_default_context(cafile=args.ca_file)
        if args.tls == "implicit":
            sock = ctx.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock
        greeting = self.read_response()
        self.note_caps(greeting[0])
        if args.tls == "starttls":
            self.simple(b"STARTTLS")
            self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)
            self.caps = set()
        text = self.simple(b"LOGIN " + qstr(self.user) + b" " + qstr(self.pw), what="LOGIN")
        self.note_caps(text)
        if not self.caps:
            for line in self.command_lines(b"CAPABILITY"):
                self.note_caps(line[0])

    def note_caps(self, text):
        for line in text.split(b"\r\n"):
            m = CAPS_RE.search(line)
            if m:
                self.caps = {c.upper() for c in (m.group(1) or m.group(2)).split()}

    # --- reading
    def fill(self):
        data = self.sock.recv(1 << 18)
        if not data:
            raise Fail("%s:%d closed the connection" % (self.host, self.port))
        self.buf += data

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            self.fill()

    def readexact(self, n):
        while len(self.buf) < n:
            self.fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self):
        """(text with literals replaced by '{}', [literals])."""
        parts, lits = [], []
        while True:
            line = self.readline()
            m = LITERAL_RE.search(line)
            if m is None:
                parts.append(line[:-2])
                return b"".join(parts), lits
            parts.append(line[:m.start()] + b"{}")
            lits.append(self.readexact(int(m.group(1))))

    # --- writing
    def send(self, data):
        self.sock.sendall(data)

    def next_tag(self):
        self.tagn += 1
        return b"r%d" % self.tagn

    def start(self, cmd):
        tag = self.next_tag()
        self.send(tag + b" " + cmd + b"\r\n")
        return tag

    def wait(self, tag, untagged=None, what=None):
        """Reads responses until TAG completes; untagged ones go to
        untagged(text, lits). Returns the completion's text (raises on NO/BAD)."""
        while True:
            text, lits = self.read_response()
            if text.startswith(b"* ") or text.startswith(b"+"):
                if untagged is not None and text.startswith(b"* "):
                    untagged(text, lits)
                continue
            t, _, rest = text.partition(b" ")
            if t != tag:
                raise Fail("%s: unexpected completion %r" % (self.name, text[:200]))
            if not rest.upper().startswith(b"OK"):
                raise Fail("%s: %s failed: %s" % (self.name, (what or b"command"),
                                                   rest.decode("utf-8", "replace")))
            return text

    def simple(self, cmd, what=None):
        return self.wait(self.start(cmd), what=what or cmd.split(b" ")[0].decode())

    def command_lines(self, cmd):
        out = []
        self.wait(self.start(cmd), lambda t, l: out.append((t, l)), cmd.split(b" ")[0].decode())
        return out

    def logout(self):
        try:
            self.send(self.next_tag() + b" LOGOUT\r\n")
            self.sock.close()
        except OSError:
            pass


def parse_astring(raw, lits, li=0):
    """A name at the start of raw: quoted, {} literal placeholder or atom."""
    raw = raw.strip()
    if raw.startswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    if raw.startswith(b"{}"):
        return lits[li]
    return raw


def list_folders(conn):
    """[(wire name bytes, delimiter bytes or None, set of lower-case attributes)]."""
    out = []
    for text, lits in conn.command_lines(b'LIST "" "*"'):
        m = LIST_RE.match(text)
        if not m:
            continue
        delim = None if m.group(2).upper() == b"NIL" else re.sub(rb"\\(.)", rb"\1", m.group(2)[1:-1])
        attrs = {a.lower() for a in m.group(1).split()}
        out.append((parse_astring(m.group(3), lits), delim, attrs))
    return out


def status_items(raw):
    words = raw.split()
    return {words[i].upper().decode(): int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


class Folder:
    def __init__(self, src_name, dst_name, status, state):
        self.src, self.dst, self.status, self.state = src_name, dst_name, status, state
        self.copied = self.flag_updates = 0
        self.error = None


def fetch_thread(conn, uids, args, out):
    """Fetches UIDs in pipelined chunks; puts (uid, flags, date, body) lists on
    out, then None (or an exception)."""
    try:
        chunks = [uids[i:i + args.fetch_chunk] for i in range(0, len(uids), args.fetch_chunk)]
        inflight = []
        pending = []

        def untagged(text, lits):
            if b" FETCH " not in text[:40] or not lits:
                return
            meta = text
            uid = UID_RE.search(meta)
            flags = FLAGS_RE.search(meta)
            date = DATE_RE.search(meta)
            if not (uid and flags and date):
                raise Fail("%s: unexpected FETCH answer %r" % (conn.name, meta[:200]))
            pending.append((int(uid.group(1)), flags.group(1), date.group(1), lits[0]))

        ci = 0
        while ci < len(chunks) or inflight:
            while ci < len(chunks) and len(inflight) < args.fetch_depth:
                inflight.append(conn.start(b"UID FETCH " + uid_set(chunks[ci]) +
                                           b" (UID FLAGS INTERNALDATE BODY.PEEK[])"))
                ci += 1
            conn.wait(inflight.pop(0), untagged, "UID FETCH")
            if pending:
                out.put(list(pending))
                pending.clear()
        out.put(None)
    except Exception as e:  # noqa: BLE001 - handed to the folder thread
        out.put(e)


def append_batches(dst, folder, msgs_iter, args):
    """APPENDs (uid, flags, date, body) to the destination folder; returns
    [(src uid, dst uid or None, flag key)]."""
    multi = b"MULTIAPPEND" in dst.caps
    litplus = b"LITERAL+" in dst.caps
    batch = args.batch if multi else 1
    mbox = qstr(folder.dst)
    results = []
    inflight = []  # (tag, [msgs])

    def complete(tag, msgs):
        text = dst.wait(tag, what="APPEND")
        m = APPENDUID_RE.search(text)
        duids = expand_set(m.group(2)) if m else [None] * len(msgs)
        if len(duids) != len(msgs):
            duids = [None] * len(msgs)
        for (uid, flags, _, _), du in zip(msgs, duids):
            results.append((uid, du, flag_key(flags)))

    def one(msg):
        _, flags, date, body = msg
        fl = b" ".join(f for f in flags.split() if f.lower() != b"\\recent")
        return b" (" + fl + b') "' + date + b'" {%d%s}\r\n' % (len(body), b"+" if litplus else b"")

    pending = []
    for msgs in msgs_iter:
        pending.extend(msgs)
        while len(pending) >= batch:
            send_batch(dst, mbox, pending[:batch], one, litplus, inflight, complete)
            del pending[:batch]
    while pending:
        send_batch(dst, mbox, pending[:batch], one, litplus, inflight, complete)
        del pending[:batch]
    while inflight:
        complete(*inflight.pop(0))
    return results


def send_batch(dst, mbox, msgs, one, litplus, inflight, complete):
    tag = dst.next_tag()
    head = tag + b" APPEND " + mbox
    if litplus:
        parts = []
        for m in msgs:
            parts.append(one(m))
            parts.append(m[3])
        dst.send(head + b"".join(parts) + b"\r\n")
        inflight.append((tag, msgs))
        if len(inflight) > 2:
            complete(*inflight.pop(0))
        return
    # Synchronizing literals: wait for "+" before each message's bytes.
    while inflight:
        complete(*inflight.pop(0))
    for i, m in enumerate(msgs):
        dst.send((head if i == 0 else b"") + one(m))
        text, _ = dst.read_response()
        if not text.startswith(b"+"):
            raise Fail("%s: APPEND refused: %s" % (dst.name, text.decode("utf-8", "replace")))
        dst.send(m[3])
    dst.send(b"\r\n")
    complete(tag, msgs)


def copy_folder(folder, args):
    st = folder.state
    src = Conn(args.src, args, "source")
    dst = None
    try:
        condstore = b"CONDSTORE" in src.caps
        ex = src.command_lines(b"EXAMINE " + qstr(folder.src) + (b" (CONDSTORE)" if condstore else b""))
        exists = 0
        for text, _ in ex:
            m = re.match(rb"\* (\d+) EXISTS", text)
            if m:
                exists = int(m.group(1))
        old_next = st.get("uidnext", 1)
        # New UIDs and, on a later run, the changed flags: one burst.
        tags = []
        new_uids, flag_rows = [], []

        # Pipelined: the untagged answers of both may arrive while the
        # first one's completion is awaited, so one handler takes both.
        def answer(text, lits):
            if text.upper().startswith(b"* SEARCH"):
                new_uids.extend(int(x) for x in text.split()[2:])
            elif b" FETCH " in text[:40]:
                u, f = UID_RE.search(text), FLAGS_RE.search(text)
                if u and f:
                    flag_rows.append((int(u.group(1)), flag_key(f.group(1))))

        if exists:
            tags.append((src.start(b"UID SEARCH UID %d:*" % old_next), "UID SEARCH"))
        if st.get("map") and exists:
            since = st.get("highestmodseq") if condstore else None
            cmd = b"UID FETCH 1:%d (UID FLAGS)" % (old_next - 1)
            if since:
                cmd += b" (CHANGEDSINCE %d)" % since
            tags.append((src.start(cmd), "UID FETCH"))
        for tag, what in tags:
            src.wait(tag, answer, what)
        new_uids = sorted(u for u in new_uids if u >= old_next)
        changes = {}
        smap = st.setdefault("map", {})
        for uid, fk in flag_rows:
            rec = smap.get(str(uid))
            if rec is not None and rec[1] != fk and rec[0] is not None:
                changes.setdefault(fk, []).append((uid, rec[0]))
        if new_uids or changes:
            dst = Conn(args.dst, args, "destination")
        if new_uids:
            q = queue.Queue(maxsize=4)
            th = threading.Thread(target=fetch_thread, args=(src, new_uids, args, q), daemon=True)
            th.start()

            def batches():
                while True:
                    item = q.get()
                    if item is None:
                        return
                    if isinstance(item, Exception):
                        raise item
                    yield item

            for uid, duid, fk in append_batches(dst, folder, batches(), args):
                smap[str(uid)] = [duid, fk]
                folder.copied += 1
            th.join()
        if changes:
            tags = [dst.start(b"SELECT " + qstr(folder.dst))]
            for fk, pairs in sorted(changes.items()):
                duids = sorted(d for _, d in pairs)
                tags.append(dst.start(b"UID STORE " + uid_set(duids) + b" FLAGS.SILENT (" +
                                      fk.encode() + b")"))
            for tag in tags:
                dst.wait(tag, what="SELECT/UID STORE")
            for fk, pairs in changes.items():
                for uid, d in pairs:
                    smap[str(uid)] = [d, fk]
                    folder.flag_updates += 1
        st.update(uidvalidity=folder.status["UIDVALIDITY"], uidnext=folder.status["UIDNEXT"],
                  highestmodseq=folder.status.get("HIGHESTMODSEQ"), messages=folder.status["MESSAGES"],
                  dst=folder.dst.decode("utf-8", "replace"))
    finally:
        src.logout()
        if dst is not None:
            dst.logout()


def dst_name(name, delim, attrs, dst_folders):
    dst_delim = next((d for _, d, _ in dst_folders if d), b"/")
    for use in SPECIAL_USE:
        if use in attrs:
            for dn, _, dattrs in dst_folders:
                if use in dattrs:
                    return dn
    parts = name.split(delim) if delim else [name]
    if parts[0].upper() == b"INBOX":
        parts[0] = b"INBOX"
    return dst_delim.join(parts)


def run(args):
    t0 = time.monotonic()
    try:
        with open(args.state) as f:
            state = json.load(f)
    except FileNotFoundError:
        state = {}
    folders_state = state.setdefault("folders", {})
    src = Conn(args.src, args, "source")
    folders = [(n, d, a) for n, d, a in list_folders(src) if not a & {b"\\noselect", b"\\nonexistent"}]
    # STATUS of every folder, pipelined.
    statuses = {}

    def got(text, lits):
        m = STATUS_RE.match(text)
        if m:
            statuses[parse_astring(m.group(1), lits)] = status_items(m.group(2))

    items = b"(MESSAGES UIDNEXT UIDVALIDITY" + (b" HIGHESTMODSEQ)" if b"CONDSTORE" in src.caps else b")")
    tags = [src.start(b"STATUS " + qstr(n) + b" " + items) for n, _, _ in folders]
    for tag in tags:
        src.wait(tag, got, "STATUS")
    src.logout()
    work, dst_folders = [], None
    for n, d, a in folders:
        key = n.decode("utf-8", "surrogateescape")
        st = folders_state.get(key, {})
        s = statuses[n]
        if st and st.get("uidvalidity") != s["UIDVALIDITY"]:
            raise Fail("%s: source UIDVALIDITY changed; refcopy does not handle that" % key)
        if st and st.get("uidnext") == s["UIDNEXT"] and st.get("messages") == s["MESSAGES"] and \
                st.get("highestmodseq") == s.get("HIGHESTMODSEQ"):
            continue
        if "dst" in st:
            dn = st["dst"].encode()
        else:
            if dst_folders is None:
                dconn = Conn(args.dst, args, "destination")
                dst_folders = list_folders(dconn)
                existing = {x for x, _, _ in dst_folders}
                for n2, d2, a2 in folders:
                    if folders_state.get(n2.decode("utf-8", "surrogateescape"), {}).get("dst"):
                        continue
                    target = dst_name(n2, d2, a2, dst_folders)
                    if target not in existing:
                        dconn.simple(b"CREATE " + qstr(target), what="CREATE")
                        existing.add(target)
                dconn.logout()
            dn = dst_name(n, d, a, dst_folders)
        work.append(Folder(n, dn, s, folders_state.setdefault(key, st)))
    # Largest first, --parallel folders at a time, one connection pair each.
    work.sort(key=lambda f: -f.status["MESSAGES"])
    todo = queue.Queue()
    for f in work:
        todo.put(f)

    def worker():
        while True:
            try:
                f = todo.get_nowait()
            except queue.Empty:
                return
            try:
                copy_folder(f, args)
            except (Fail, OSError, ssl.SSLError) as e:
                f.error = str(e)

    threads = [threading.Thread(target=worker) for _ in range(min(args.parallel, len(work)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tmp = args.state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, args.state)
    errors = [f for f in work if f.error]
    print("refcopy: %d folders, %d changed, %d messages copied, %d flag updates, %d errors, %.2f s"
          % (len(folders), len(work), sum(f.copied for f in work),
             sum(f.flag_updates for f in work), len(errors), time.monotonic() - t0))
    for f in errors:
        print("refcopy: %s: %s" % (f.src.decode("utf-8", "replace"), f.error), file=sys.stderr)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True, help="HOST:PORT:USER:PASS")
    ap.add_argument("--dst", required=True, help="HOST:PORT:USER:PASS")
    ap.add_argument("--state", required=True, help="JSON state file (created)")
    ap.add_argument("--tls", choices=["none", "implicit", "starttls"], default="none")
    ap.add_argument("--ca-file")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--fetch-chunk", type=int, default=100)
    ap.add_argument("--fetch-depth", type=int, default=4)
    args = ap.parse_args()
    try:
        sys.exit(run(args))
    except (Fail, OSError, ssl.SSLError) as e:
        print("refcopy: %s" % e, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
