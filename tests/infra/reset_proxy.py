#!/usr/bin/env python3
"""A TCP forwarder for tests that resets connections in the middle of traffic.

    reset_proxy.py --port PORT --upstream PORT [--upstream-host HOST]
                   [--resets N] [--seed S] [--min-bytes B] [--max-bytes B]
                   [--log FILE]

Listens on 127.0.0.1:PORT (0: any free port) and forwards every connection,
byte for byte in both directions, to HOST:PORT (default 127.0.0.1).  Once
listening it prints "listening on 127.0.0.1:PORT" on stdout.

While resets are left (--resets N in all, over every connection), each new
connection draws a number of bytes uniformly in [--min-bytes, --max-bytes]
(default 20000..2000000; --seed makes the draws repeatable); once that many
bytes have crossed it (both directions counted), the bytes up to that point
are forwarded and both sides are closed with SO_LINGER 0: each peer gets a TCP
RST, as from a NAT box or a load balancer that drops the flow, in whatever
command was under way (a FETCH of bodies, an APPEND).  Connections made after
the last reset are forwarded untouched.

--log FILE gets one line per reset: "reset conn=N after B bytes during CMD",
CMD being the last command the client had sent (for instance "UID FETCH" or
"APPEND"), and "done resets=N" once all were used.
Python 3 standard library only.
"""

import argparse
import random
import re
import select
import socket
import struct
import sys
import threading

CHUNK = 1 << 16
# A command line of the client: a tag (an atom with a digit: libetpan's
# numbers, the raw path's "M<n>") and a known command, with UID as part of it.
# Message lines inside an APPEND's literal rarely look like that.
COMMAND_RE = re.compile(
    rb"(?m)^[A-Za-z]*[0-9][A-Za-z0-9.]* ((?:UID )?(?:FETCH|STORE|SEARCH|APPEND|SELECT|EXAMINE"
    rb"|STATUS|LIST|LSUB|LOGIN|AUTHENTICATE|CREATE|SUBSCRIBE|NOOP|LOGOUT|CAPABILITY|ENABLE"
    rb"|NAMESPACE|STARTTLS|ID|CHECK|CLOSE|EXPUNGE|IDLE))\b")


class Budget:
    def __init__(self, resets, seed, lo, hi, log):
        self.left = self.total = resets
        self.rng = random.Random(seed)
        self.lo, self.hi = lo, hi
        self.log = log
        self.lock = threading.Lock()
        self.conns = 0

    def draw(self):
        """The connection's number and its byte threshold (0: no reset)."""
        with self.lock:
            self.conns += 1
            if self.left <= 0:
                return self.conns, 0
            return self.conns, self.rng.randint(self.lo, self.hi)

    def take(self, conn, after, command):
        """Uses one reset; False when none is left (another connection took it)."""
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            self.write("reset conn=%d after %d bytes during %s" % (conn, after, command))
            if self.left == 0:
                self.write("done resets=%d" % self.total)
            return True

    def write(self, line):
        if self.log is None:
            return
        with open(self.log, "a") as f:
            f.write(line + "\n")


def rst_close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def forward(client, args, budget):
    conn, threshold = budget.draw()
    try:
        upstream = socket.create_connection((args.upstream_host, args.upstream))
    except OSError:
        client.close()
        return
    peer = {client: upstream, upstream: client}
    moved = 0
    command = "none"
    try:
        while True:
            ready, _, _ = select.select([client, upstream], [], [])
            for s in ready:
                data = s.recv(CHUNK)
                if not data:
                    client.close()
                    upstream.close()
                    return
                if s is client:
                    found = COMMAND_RE.findall(data)
                    if found:
                        command = found[-1].decode("ascii", "replace")
                if threshold and moved + len(data) >= threshold:
                    cut = threshold - moved
                    if budget.take(conn, threshold, command):
                        peer[s].sendall(data[:cut])
                        rst_close(client)
                        rst_close(upstream)
                        return
                    threshold = 0
                moved += len(data)
                peer[s].sendall(data)
    except OSError:
        client.close()
        upstream.close()


def main():
    p = argparse.ArgumentParser(description="TCP forwarder that resets connections mid-traffic.")
    p.add_argument("--port", type=int, required=True, help="port to listen on, 0 for any")
    p.add_argument("--upstream", type=int, required=True, help="the server's port")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--resets", type=int, default=3, metavar="N", help="resets in all")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-bytes", type=int, default=20000)
    p.add_argument("--max-bytes", type=int, default=2000000)
    p.add_argument("--log", metavar="FILE")
    args = p.parse_args()
    if args.min_bytes < 1 or args.max_bytes < args.min_bytes:
        sys.exit("reset_proxy.py: need 1 <= --min-bytes <= --max-bytes")
    budget = Budget(args.resets, args.seed, args.min_bytes, args.max_bytes, args.log)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(64)
    print("listening on 127.0.0.1:%d" % server.getsockname()[1], flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=forward, args=(client, args, budget), daemon=True).start()


if __name__ == "__main__":
    main()
