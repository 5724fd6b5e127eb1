#!/usr/bin/env python3
"""A scripted POP3 server (RFC 1939) for the faults a real one will not make.

fake_pop3.py --port 0 [--messages N] [--dump DIR] [--user U --password P]
             [--err-retr K] [--drop-retr K] [--stall-retr K] [--no-top] [--log FILE]

Serves a maildrop of N generated messages (CRLF lines, one starting with a
dot, so byte-stuffing is exercised), each with a stable UIDL.  Prints
"listening on 127.0.0.1:PORT" once ready.  CAPA lists TOP unless --no-top.
Faults, by message number K, on every fetch of the whole message (RETR, or
TOP with all its lines):
  --err-retr K    every fetch of K is answered "-ERR [SYS/PERM] message K is
                  damaged on disk" (the client names those words);
  --drop-retr K   the first fetch of K sends half the message, then closes;
                  later ones are answered in full;
  --stall-retr K  every fetch of K sends half the message, then nothing more
                  (the connection stays open: the client's bound must end it).
--dump DIR writes each message's bytes to DIR/K.eml for the test to compare.
DELE and QUIT are answered but logged (the test checks that none came).
"""
import argparse
import os
import socketserver
import sys
import threading
import time

state = {"dropped": False}
lock = threading.Lock()


def make_messages(n):
    msgs = []
    for k in range(1, n + 1):
        body = (
            "From: Sender %d <sender%d@example.org>\r\n"
            "To: someone@example.com\r\n"
            "Subject: fake pop3 message %d\r\n"
            "Date: Tue, 0%d Mar 2021 10:%02d:00 +0100\r\n"
            "Message-ID: <fake%d@example.org>\r\n"
            "\r\n"
            "Line one of message %d.\r\n"
            ".A line that starts with a dot.\r\n"
            "..Two dots.\r\n"
            "%s"
            "The end.\r\n" % (k, k, k, 1 + k % 9, k % 60, k, k, "x" * 70 + "\r\n")
        )
        body += ("filler %d " % k) * (50 * (k % 7)) + "\r\n"
        msgs.append(body.encode())
    return msgs


class Handler(socketserver.StreamRequestHandler):
    def log(self, line):
        if self.server.logf:
            with lock:
                self.server.logf.write(line + "\n")
                self.server.logf.flush()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(data)
        self.wfile.flush()

    def handle(self):
        opts = self.server.opts
        msgs = self.server.msgs
        self.send("+OK fake POP3 ready\r\n")
        authed = False
        user = None
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd.split(" ")[0].upper()
            self.log(cmd if verb not in ("PASS", "AUTH") else verb + " ...")
            args = cmd.split(" ")[1:]
            if verb == "CAPA":
                self.send("+OK\r\nUSER\r\nUIDL\r\n%s.\r\n" % ("" if opts.no_top else "TOP\r\n"))
            elif verb == "USER":
                user = args[0] if args else ""
                self.send("+OK\r\n")
            elif verb == "PASS":
                if user == opts.user and " ".join(args) == opts.password:
                    authed = True
                    self.send("+OK logged in\r\n")
                else:
                    self.send("-ERR [AUTH] Authentication failed.\r\n")
            elif not authed:
                self.send("-ERR log in first\r\n")
            elif verb == "STAT":
                self.send("+OK %d %d\r\n" % (len(msgs), sum(len(m) for m in msgs)))
            elif verb in ("UIDL", "LIST"):
                out = ["+OK\r\n"]
                for k, m in enumerate(msgs, 1):
                    out.append("%d %s\r\n" % (k, ("fake-uidl-%04d" % k) if verb == "UIDL" else len(m)))
                out.append(".\r\n")
                self.send("".join(out))
            elif verb in ("RETR", "TOP"):
                try:
                    k = int(args[0])
                    m = msgs[k - 1]
                except (ValueError, IndexError):
                    self.send("-ERR no such message\r\n")
                    continue
                if verb == "TOP":
                    # The header, the blank line, then N lines of the body.
                    head_end = m.index(b"\r\n\r\n") + 4
                    lines = m[head_end:].splitlines(keepends=True)
                    m = m[:head_end] + b"".join(lines[: int(args[1])])
                    whole = int(args[1]) >= len(lines)
                else:
                    whole = True
                # The faults hit every fetch of the whole message.
                if whole and k == opts.err_retr:
                    self.send("-ERR [SYS/PERM] message %d is damaged on disk\r\n" % k)
                    continue
                stuffed = b"".join(
                    (b"." + l if l.startswith(b".") else l) for l in m.splitlines(keepends=True)
                )
                data = b"+OK %d octets\r\n" % len(m) + stuffed + b".\r\n"
                if whole and k == opts.drop_retr:
                    with lock:
                        first = not state["dropped"]
                        state["dropped"] = True
                    if first:
                        self.send(data[: len(data) // 2])
                        self.log("dropped mid-message %d" % k)
                        return
                if whole and k == opts.stall_retr:
                    self.send(data[: len(data) // 2])
                    self.log("stalled mid-message %d" % k)
                    time.sleep(3600)
                    return
                self.send(data)
            elif verb == "NOOP":
                self.send("+OK\r\n")
            elif verb == "QUIT":
                self.send("+OK bye\r\n")
                return
            elif verb == "DELE":
                self.send("+OK marked\r\n")
            else:
                self.send("-ERR unknown command\r\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("--dump", default=None)
    p.add_argument("--user", default="u")
    p.add_argument("--password", default="p")
    p.add_argument("--err-retr", type=int, default=0)
    p.add_argument("--drop-retr", type=int, default=0)
    p.add_argument("--stall-retr", type=int, default=0)
    p.add_argument("--log", default=None)
    p.add_argument("--no-top", action="store_true", help="no TOP in CAPA (RETR is used)")
    opts = p.parse_args()
    srv = Server(("127.0.0.1", opts.port), Handler)
    srv.opts = opts
    srv.msgs = make_messages(opts.messages)
    srv.logf = open(opts.log, "a") if opts.log else None
    if opts.dump:
        os.makedirs(opts.dump, exist_ok=True)
        for k, m in enumerate(srv.msgs, 1):
            with open(os.path.join(opts.dump, "%d.eml" % k), "wb") as f:
                f.write(m)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
