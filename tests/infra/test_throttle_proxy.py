#!/usr/bin/env python3
"""Self-test of throttle_proxy.py against the source Dovecot of a test stack.

    bash tests/infra/stack.sh start DIR && source DIR/env
    python3 tests/infra/test_throttle_proxy.py

Adds the user throttleproxy to the source instance (tests/infra/users.sh),
starts its own proxies on free ports and checks with imaplib and raw sockets
that commands pass through unchanged (literals both ways included), that
every Nth listed command gets the proxy's NO [THROTTLED] with the session
still usable afterwards (also an APPEND whose synchronizing or LITERAL+
literal the proxy must swallow), that every Nth connection gets the busy BYE,
that hidden capabilities are gone from every capability list the server
sends, and that each fault is logged. Ends with "N passed, N failed"; exit status 0
only if all passed.
"""

import imaplib
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
USER, PASSWORD = "throttleproxy", "throttle-pw"
THROTTLED = b"NO [THROTTLED] Request is throttled. Suggested Backoff Time: 1000 milliseconds"
MESSAGE = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: through the proxy\r\n\r\n"
           b"A line.\r\n{5}\r\nNot a literal: a body line that looks like one.\r\n")

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok - " if ok else "FAIL - ") + name + ("" if ok or not detail else ": " + detail))


class ProxyProcess:
    def __init__(self, *args):
        self.log = tempfile.NamedTemporaryFile(prefix="throttle-proxy-log.", delete=False).name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "throttle_proxy.py"), "--port", "0",
             "--upstream", os.environ["SRC_PORT"], "--upstream-host", os.environ["SRC_HOST"],
             "--log", self.log, *args],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError("proxy did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])

    def faults(self):
        with open(self.log) as f:
            return [line.split(" ", 1)[1].strip() for line in f]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        os.unlink(self.log)


def login(port):
    conn = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    conn.login(USER, PASSWORD)
    return conn


class Raw:
    """A socket speaking IMAP line by line, for what imaplib cannot send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                line, self.buf = self.buf, b""
                return line
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.sock.sendall(data)

    def until_tagged(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag + b" ") or line == b"":
                return line

    def close(self):
        self.sock.close()


def test_passthrough_and_throttle():
    # Listed commands here: SELECT, APPEND, UID FETCH; every 2nd is throttled.
    proxy = ProxyProcess("--throttle-every", "2", "--commands", "select, append,UID FETCH")
    try:
        conn = login(proxy.port)
        typ, _ = conn.select("INBOX")  # 1st: forwarded
        check("SELECT through the proxy", typ == "OK")
        typ, data = conn.select("INBOX")  # 2nd: throttled
        check("2nd SELECT throttled", typ == "NO" and data[0] == THROTTLED[3:], repr((typ, data)))
        typ, _ = conn.noop()
        check("session usable after a throttled NO", typ == "OK")
        typ, data = conn.select("INBOX")  # 3rd: forwarded
        exists = int(data[0])
        check("SELECT again after the throttled one", typ == "OK")
        # 4th: APPEND, throttled: imaplib waits for the proxy's "+ go ahead",
        # sends the literal, gets the NO.
        typ, data = conn.append("INBOX", None, None, MESSAGE)
        check("APPEND with a synchronizing literal throttled",
              typ == "NO" and data[0] == THROTTLED[3:], repr((typ, data)))
        typ, data = conn.noop()
        check("literal of the throttled APPEND swallowed", typ == "OK", repr((typ, data)))
        typ, data = conn.append("INBOX", None, None, MESSAGE)  # 5th: forwarded
        check("APPEND with a literal through the proxy", typ == "OK", repr((typ, data)))
        # 6th: UID FETCH, throttled; plain FETCH is not listed.
        typ, data = conn.uid("FETCH", "1:*", "(UID)")
        check("UID FETCH throttled", typ == "NO" and data[0] == THROTTLED[3:], repr((typ, data)))
        typ, data = conn.fetch(str(exists + 1), "(BODY.PEEK[])")
        body = data[0][1] if typ == "OK" and isinstance(data[0], tuple) else None
        check("unlisted FETCH forwarded; literal from the server intact", body == MESSAGE,
              repr((typ, data))[:200])
        typ, data = conn.uid("FETCH", "1:*", "(UID)")  # 7th: forwarded
        check("UID FETCH through the proxy", typ == "OK" and len(data) == exists + 1,
              repr((typ, data))[:200])
        conn.logout()

        # LITERAL+: the proxy swallows the bytes without a continuation.
        raw = Raw(proxy.port)
        raw.line()  # greeting
        raw.send(b"r1 LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        check("raw LOGIN", raw.until_tagged(b"r1").startswith(b"r1 OK"))
        raw.send(b"r2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))  # 8th
        reply = raw.until_tagged(b"r2")
        check("APPEND with LITERAL+ throttled", reply == b"r2 " + THROTTLED, repr(reply))
        raw.send(b"r3 NOOP\r\n")
        reply = raw.until_tagged(b"r3")
        check("LITERAL+ bytes of the throttled APPEND swallowed", reply.startswith(b"r3 OK"),
              repr(reply))
        raw.send(b"r4 LOGOUT\r\n")
        raw.until_tagged(b"r4")
        raw.close()

        time.sleep(0.2)
        faults = proxy.faults()  # "throttle TAG NAME"
        check("one log line per throttled command, with tag and name only",
              [f.split(" ", 2)[2] for f in faults] == ["SELECT", "APPEND", "UID FETCH", "APPEND"]
              and faults[3] == "throttle r2 APPEND", repr(faults))
    finally:
        proxy.stop()


def test_bye_every():
    proxy = ProxyProcess("--bye-every", "2")
    try:
        conn = login(proxy.port)  # connection 1
        check("1st connection reaches the server", conn.noop()[0] == "OK")
        raw = Raw(proxy.port)  # connection 2
        greeting = raw.line()
        check("2nd connection greeted with BYE",
              greeting == b"* BYE [UNAVAILABLE] Server busy, try again later", repr(greeting))
        check("then closed", raw.line() == b"")
        raw.close()
        conn3 = login(proxy.port)
        check("3rd connection reaches the server", conn3.noop()[0] == "OK")
        conn3.logout()
        conn.logout()
        time.sleep(0.2)
        check("BYE logged", proxy.faults() == ["bye connection 2"], repr(proxy.faults()))
    finally:
        proxy.stop()


def test_hide_caps():
    direct = login(int(os.environ["SRC_PORT"]))
    proxy = ProxyProcess("--hide-caps", "condstore,QRESYNC")
    try:
        caps = direct.capability()[1][0].decode().upper().split()
        check("the server itself has CONDSTORE and QRESYNC",
              {"CONDSTORE", "QRESYNC"} <= set(caps), repr(caps))
        raw = Raw(proxy.port)
        greeting = raw.line()
        check("greeting's [CAPABILITY] without them",
              b"[CAPABILITY " in greeting and b"CONDSTORE" not in greeting.upper()
              and b"QRESYNC" not in greeting.upper(), repr(greeting))
        raw.send(b"a1 LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        reply = raw.until_tagged(b"a1")
        check("LOGIN's [CAPABILITY] without them, the rest kept",
              b"[CAPABILITY " in reply and b"CONDSTORE" not in reply.upper()
              and b"IMAP4REV1" in reply.upper() and b"IDLE" in reply.upper(), repr(reply))
        raw.send(b"a2 CAPABILITY\r\n")
        caps = raw.line()
        check("* CAPABILITY without them",
              caps.startswith(b"* CAPABILITY ") and b"CONDSTORE" not in caps.upper()
              and b"ENABLE" in caps.upper(), repr(caps))
        raw.until_tagged(b"a2")
        raw.send(b"a3 LOGOUT\r\n")
        raw.close()
        time.sleep(0.2)
        check("hiding logged", proxy.faults() and
              all(f == "hide CONDSTORE QRESYNC" for f in proxy.faults()), repr(proxy.faults()))
    finally:
        direct.logout()
        proxy.stop()


def main():
    for var in ("SRC_HOST", "SRC_PORT", "SRC_DIR"):
        if var not in os.environ:
            print("test_throttle_proxy.py: source a test stack's env first (%s unset)" % var,
                  file=sys.stderr)
            return 2
    subprocess.run(["bash", os.path.join(HERE, "users.sh"), "add", os.environ["SRC_DIR"], USER,
                    PASSWORD], check=True)
    time.sleep(1.1)  # Dovecot sees a passwd-file change by its mtime, in seconds
    for test in (test_passthrough_and_throttle, test_bye_every, test_hide_caps):
        try:
            test()
        except Exception as e:  # one broken scenario must not hide the others
            check(test.__name__, False, "%s: %s" % (type(e).__name__, e))
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
