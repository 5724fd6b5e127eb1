#!/usr/bin/env python3
"""Self-test of fake_imap.py: starts it on free ports and checks with imaplib
and raw sockets that the default mailbox is served correctly (LOGIN,
AUTHENTICATE, LIST, STATUS, EXAMINE, UID FETCH whole and partial, CHANGEDSINCE,
UID SEARCH with and without ESEARCH, APPEND with MULTIAPPEND and LITERAL+,
UID STORE), that the log hides passwords, and that a few misbehaviours happen
as documented (among them --refuse-append-flag: a MULTIAPPEND refused whole).
Run by ctest; ends with "N passed, N failed"; exit status 0 only if all
passed.
"""

import base64
import imaplib
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok - " if ok else "FAIL - ") + name + ("" if ok or not detail else ": " + str(detail)))


class Fake:
    def __init__(self, *args):
        self.log = tempfile.NamedTemporaryFile(prefix="fake-imap-log.", delete=False).name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fake_imap.py"), "--port", "0", "--user", "u",
             "--password", "secret-pw", "--log", self.log, *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError("fake_imap did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])

    def logged(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        os.unlink(self.log)


class Raw:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def read_until(self, marker, limit=1 << 20):
        while marker not in self.buf and len(self.buf) < limit:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buf += data
        i = self.buf.find(marker)
        if i < 0:
            out, self.buf = self.buf, b""
            return out
        out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
        return out

    def cmd(self, text):
        self.sock.sendall(text)
        tag = text.split(b" ", 1)[0] + b" "
        out = b""
        while True:
            line = self.read_until(b"\r\n")
            out += line
            if not line or line.startswith(tag):
                return out


def test_default():
    fake = Fake("--xoauth2-token", "tok-123")
    try:
        c = imaplib.IMAP4("127.0.0.1", fake.port, timeout=10)
        caps = c.capabilities
        check("capabilities", all(x in caps for x in ("LITERAL+", "UIDPLUS", "SASL-IR", "ESEARCH",
                                                       "CONDSTORE", "AUTH=XOAUTH2")), caps)
        c.login("u", "secret-pw")
        typ, data = c.list('""', "*")
        names = [d.decode() for d in data]
        check("list", any('"Archive/2002"' in n for n in names) and
              any('"With Space"' in n for n in names) and any("\\Sent" in n for n in names), names)
        typ, data = c.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ UNSEEN)")
        check("status", typ == "OK" and b"UIDNEXT 4" in data[0] and b"MESSAGES 3" in data[0],
              data)
        typ, data = c.select('"With Space"', readonly=True)
        check("examine", typ == "OK" and data == [b"2"], data)
        c.select("INBOX")
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        bodies = [d for d in data if isinstance(d, tuple)]
        check("uid fetch bodies", len(bodies) == 3 and b"Subject: INBOX 1" in bodies[0][1] and
              b"$Work" in bodies[1][0], data)
        typ, data = c.uid("FETCH", "2", "(BODY.PEEK[]<5.10>)")
        check("partial fetch", data[0][1] == bodies[1][1][5:15] and b"BODY[]<5>" in data[0][0],
              data)
        typ, data = c.uid("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "UID", "2:*")
        data = c.untagged_responses.pop("ESEARCH", [b""])
        check("esearch", typ == "OK" and b"MIN 2 MAX 3 COUNT 2 ALL 2:3" in data[0], data)
        typ, data = c.uid("SEARCH", None, "ALL")
        check("search", data == [b"1 2 3"], data)
        typ, data = c.uid("STORE", "3", "+FLAGS.SILENT", "(\\Answered)")
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE 4)")
        check("changedsince", len(data) == 1 and b"UID 3" in data[0] and b"\\Answered" in data[0],
              data)
        c.logout()

        r = Raw(fake.port)
        r.read_until(b"\r\n")
        ir = base64.b64encode(b"user=u\x01auth=Bearer tok-123\x01\x01")
        out = r.cmd(b"a1 AUTHENTICATE XOAUTH2 " + ir + b"\r\n")
        check("xoauth2 sasl-ir", b"a1 OK" in out, out)
        out = r.cmd(b"a2 APPEND Sent (\\Seen $X) \"01-Feb-2003 04:05:06 +0100\" {5+}\r\nHello"
                    b" (\\Flagged) {3+}\r\nBye\r\n")
        check("multiappend literal+", b"a2 OK [APPENDUID" in out and b" 1:2]" in out, out)
        r.sock.sendall(b"a3 LOGIN {1}\r\n")
        out = r.read_until(b"\r\n")
        check("sync literal continuation", out.startswith(b"+"), out)
        r.sock.close()

        r = Raw(fake.port)
        r.read_until(b"\r\n")
        r.sock.sendall(b"b1 AUTHENTICATE PLAIN\r\n")
        out = r.read_until(b"\r\n")
        r.sock.sendall(base64.b64encode(b"\0u\0secret-pw") + b"\r\n")
        out = r.read_until(b"\r\n")
        check("plain after continuation", out.startswith(b"b1 OK"), out)
        out = r.cmd(b"b2 CREATE \"New \\\"one\\\"\"\r\n")
        check("create", b"b2 OK" in out, out)
        out = r.cmd(b"b3 CREATE \"New \\\"one\\\"\"\r\n")
        check("create existing", b"ALREADYEXISTS" in out, out)
        r.sock.close()
        time.sleep(0.2)
        log = fake.logged()
        check("log hides passwords", "secret-pw" not in log and "tok-123" not in log and
              "LOGIN ***" not in log and "***" in log and "APPEND Sent" in log, log)
    finally:
        fake.stop()


def test_faults():
    fake = Fake("--folder-name-crlf", "--status-no-uidnext", "--uid-zero", "--uidnext", "777",
                "--bytes-beyond-size", "10", "--drop-after-login", "2", "--refuse-create", "Bad")
    try:
        r = Raw(fake.port)
        r.read_until(b"\r\n")
        out = r.cmd(b"a1 LOGIN u secret-pw\r\n")
        out = r.cmd(b'a2 LIST "" "*"\r\n')
        check("crlf folder as literal", b"{43}\r\nEvil\r\nX1 CREATE INJECTED-BY-SOURCE\r\nX2 NOOP"
              in out, out)
        out = r.cmd(b"a3 STATUS INBOX (UIDVALIDITY UIDNEXT)\r\n")
        check("status without uidnext", b"UIDNEXT" not in out and b"UIDVALIDITY" in out, out)
        out = r.cmd(b"a4 SELECT INBOX\r\n")
        check("select without uidnext", b"UIDNEXT" not in out, out)
        out = r.cmd(b"a5 UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])\r\n")
        check("uid zero", b"* 1 FETCH (UID 0 " in out and b"* 2 FETCH (UID 2 " in out, out)
        i = out.find(b"RFC822.SIZE ")
        size = int(out[i + 12:].split(b" ", 1)[0])
        check("bytes beyond size", b"{%d}\r\n" % (size + 10) in out, out[:200])
        out = r.cmd(b"a6 CREATE BadName\r\n")
        check("refuse create", b"a6 NO [CANNOT] Invalid mailbox name" in out, out)
        r.sock.close()
        r = Raw(fake.port)
        r.read_until(b"\r\n")
        out = r.cmd(b"b1 LOGIN u secret-pw\r\n")
        rest = r.read_until(b"never")
        check("drop after second login", b"b1 OK" in out and rest == b"", (out, rest))
        r = Raw(fake.port)
        r.read_until(b"\r\n")
        out = r.cmd(b"c1 LOGIN u secret-pw\r\n") + r.cmd(b"c2 NOOP\r\n")
        check("drop only once", b"c2 OK" in out, out)
    finally:
        fake.stop()
    fake = Fake("--endless-greeting")
    try:
        r = Raw(fake.port)
        data = r.read_until(b"\r\n", limit=300000)
        check("endless greeting", len(data) >= 300000 and b"\r\n" not in data, len(data))
    finally:
        fake.stop()
    fake = Fake("--huge-literal", "--uidvalidity-seq", "5,0")
    try:
        validities = []
        for _ in range(3):
            r = Raw(fake.port)
            r.read_until(b"\r\n")
            r.cmd(b"a1 LOGIN u secret-pw\r\n")
            out = r.cmd(b"a2 STATUS INBOX (UIDVALIDITY)\r\n")
            validities.append(int(out.split(b"UIDVALIDITY ")[1].split(b")")[0]))
        check("uidvalidity sequence", validities == [5, 0, 0], validities)
        r.cmd(b"a3 EXAMINE INBOX\r\n")
        r.sock.sendall(b"a4 UID FETCH 1 (BODY.PEEK[])\r\n")
        out = r.read_until(b"}\r\n")
        check("huge literal", out.endswith(b"BODY[] {4294967295}\r\n"), out)
    finally:
        fake.stop()
    fake = Fake("--close-mid-literal")
    try:
        r = Raw(fake.port)
        r.read_until(b"\r\n")
        r.cmd(b"a1 LOGIN u secret-pw\r\n")
        r.cmd(b"a3 EXAMINE INBOX\r\n")
        r.sock.sendall(b"a4 UID FETCH 1 (BODY.PEEK[])\r\n")
        out = r.read_until(b"never")
        check("close mid literal", b"BODY[] {" in out and b"a4 " not in out, out)
    finally:
        fake.stop()


def test_pipelining():
    """The misbehaviours on pipelined STATUS and STORE."""
    fake = Fake("--status-out-of-order", "--status-no", "Drafts", "--status-name-upper",
                "--status-literal", "--odd-names", "--store-no", "$Bad", "--bye-on-status", "5")
    try:
        r = Raw(fake.port)
        r.read_until(b"\r\n")
        r.cmd(b"a1 LOGIN u secret-pw\r\n")
        r.sock.sendall(b"s1 STATUS INBOX (MESSAGES)\r\ns2 STATUS Drafts (MESSAGES)\r\n"
                       b's3 STATUS "Odd \\"q\\" \\\\ name" (MESSAGES)\r\n')
        out = r.read_until(b"s1 OK Status completed\r\n")
        check("out of order", out.startswith(b"* STATUS {14}\r\nODD \"Q\" \\ NAME (MESSAGES 1)"
                                             b"\r\ns3 OK Status completed\r\n"
                                             b"s2 NO [NONEXISTENT]"), out)
        check("upper literal name", b"* STATUS {5}\r\nINBOX (MESSAGES 3)\r\ns1 OK" in out, out)
        out = r.cmd(b"s4 STATUS Caf&AOk- (MESSAGES)\r\n")
        check("8-bit folder", b"CAF&AOK- (MESSAGES 1)" in out, out)
        out = r.cmd(b"a2 SELECT INBOX\r\n") + r.cmd(b"a3 UID STORE 1 FLAGS.SILENT ($Bad)\r\n")
        check("store refused", b"a3 NO [CANNOT] Flag not permitted" in out, out)
        out = r.cmd(b"a4 UID STORE 1 FLAGS ($Good)\r\n")
        check("store taken", b"FLAGS ($Good)" in out and b"a4 OK" in out, out)
        out = r.cmd(b"s5 STATUS INBOX (MESSAGES)\r\n")
        check("fifth status answered", b"s5 OK" in out, out)
        r.sock.sendall(b"s6 STATUS INBOX (MESSAGES)\r\n")
        out = r.read_until(b"never")
        check("bye on status", out == b"* BYE Server shutting down\r\n", out)
        check("reverse order logged", "(answered 3 in reverse order)" in fake.logged(),
              fake.logged())
    finally:
        fake.stop()


def test_refuse_append_flag():
    """--refuse-append-flag: an APPEND carrying the keyword is refused whole."""
    fake = Fake("--refuse-append-flag", "$Rejected")
    try:
        r = Raw(fake.port)
        r.read_until(b"\r\n")
        r.cmd(b"a1 LOGIN u secret-pw\r\n")
        before = r.cmd(b"a2 STATUS Sent (MESSAGES UIDNEXT)\r\n")
        out = r.cmd(b"a3 APPEND Sent (\\Seen) {5+}\r\nHello ($rejected \\Seen) {3+}\r\nBad"
                    b" () {4+}\r\nLast\r\n")
        check("multiappend with the flag refused", b"a3 NO [LIMIT] Too many keywords" in out, out)
        out = r.cmd(b"a4 STATUS Sent (MESSAGES UIDNEXT)\r\n")
        check("multiappend refused atomically (nothing stored)",
              b"MESSAGES 0 UIDNEXT 1" in before and b"MESSAGES 0 UIDNEXT 1" in out, (before, out))
        out = r.cmd(b"a5 APPEND Sent ($Rejected) {3+}\r\nBad\r\n")
        check("single append with the flag refused", b"a5 NO [LIMIT] Too many keywords" in out,
              out)
        out = r.cmd(b"a6 APPEND Sent ($Fine) {4+}\r\nGood (\\Seen) {4+}\r\nMore\r\n")
        check("appends without the flag stored", b"a6 OK [APPENDUID" in out and b" 1:2]" in out,
              out)
        out = r.cmd(b"a7 STATUS Sent (MESSAGES)\r\n")
        check("only those stored", b"MESSAGES 2" in out, out)
        out = r.cmd(b"a8 NOOP\r\n")
        check("connection usable after a refusal", b"a8 OK" in out, out)
        r.sock.close()
    finally:
        fake.stop()


def main():
    test_default()
    test_faults()
    test_pipelining()
    test_refuse_append_flag()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    sys.exit(0 if results["failed"] == 0 else 1)


if __name__ == "__main__":
    main()
