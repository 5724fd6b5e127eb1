#!/usr/bin/env python3
"""A fault-injecting IMAP proxy for tests: answers some commands itself with a
throttling NO, greets some connections with a busy BYE, and can hide
capabilities the server has (to stand for a server without them).

    throttle_proxy.py --port PORT --upstream PORT [--upstream-host HOST]
                      [--throttle-every N] [--commands LIST] [--backoff-ms MS]
                      [--bye-every N] [--hide-caps LIST] [--log FILE]

Listens on 127.0.0.1:PORT (0: any free port) and forwards plain TCP to the
IMAP server at HOST:PORT (default host 127.0.0.1). No TLS: point it at a
server's plain port and do not use STARTTLS through it (the proxy could no
longer see the commands). Once listening it prints "listening on
127.0.0.1:PORT" on stdout.

--throttle-every N   every Nth command (counted over all connections) whose
                     name is in --commands is not forwarded: the proxy answers
                     "TAG NO [THROTTLED] Request is throttled. Suggested Backoff
                     Time: MS milliseconds" (Exchange's wording) itself. The
                     name is the word after the tag, or the two words for UID
                     commands ("UID FETCH"). A throttled command with literals
                     is consumed whole: for a synchronizing literal {N} the
                     proxy sends "+ go ahead" itself, for a non-synchronizing
                     one {N+} (LITERAL+) it just reads on; the N bytes and the
                     rest of the command are swallowed, then the NO is sent.
--commands LIST      comma-separated names, case-insensitive (default
                     "UID FETCH,FETCH,APPEND,SELECT,EXAMINE,STATUS"). Add LOGIN
                     or AUTHENTICATE to throttle authentication.
--backoff-ms MS      the suggested backoff in the NO (default 1000).
--bye-every N        every Nth new connection gets "* BYE [UNAVAILABLE] Server
                     busy, try again later" as its greeting and is closed
                     without reaching the server.
--hide-caps LIST     comma-separated capability names, case-insensitive (e.g.
                     "CONDSTORE,QRESYNC"), removed from every capability list
                     the server sends: "* CAPABILITY ..." lines and
                     "[CAPABILITY ...]" response codes (the greeting's and
                     LOGIN's).  The server itself is unchanged, so it behaves
                     as one without them for a client that only uses what is
                     advertised.
--log FILE           appends one line per injected fault: UTC time, kind
                     ("throttle", "bye" or "hide"), then the tag and command
                     name, the connection number, or the names hidden (never
                     arguments: they may hold passwords).

The proxy frames both directions by lines and literals ({N}, {N+}, ~{N} at the
end of a line), so its own replies are only ever put between two whole server
responses. A throttled command's NO may overtake the answers to commands
pipelined before it; clients match completions by tag (RFC 3501 5.5).
Python 3 standard library only.
"""

import argparse
import asyncio
import datetime
import re
import sys

LITERAL_RE = re.compile(rb"\{(\d+)(\+?)\}\r?\n\Z")
LINE_MAX = 1 << 20
CHUNK = 1 << 16
BYE_GREETING = b"* BYE [UNAVAILABLE] Server busy, try again later\r\n"
# "* CAPABILITY a b c" or a "[CAPABILITY a b c]" response code: group 2 is the list.
CAPS_RE = re.compile(rb"^(\* CAPABILITY |\S+ OK \[CAPABILITY )([^\]\r\n]*)", re.IGNORECASE)


class Proxy:
    def __init__(self, args):
        self.args = args
        self.commands = {" ".join(c.split()).upper() for c in args.commands.split(",") if c.strip()}
        self.hidden = {c.strip().upper().encode() for c in args.hide_caps.split(",") if c.strip()}
        self.matching = 0  # commands seen whose name is in self.commands
        self.connections = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def log_fault(self, kind, what):
        if self.log is None:
            return
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.log.write(f"{now} {kind} {what}\n")

    def should_throttle(self, name):
        if self.args.throttle_every <= 0 or name not in self.commands:
            return False
        self.matching += 1
        return self.matching % self.args.throttle_every == 0

    async def handle(self, creader, cwriter):
        self.connections += 1
        conn = self.connections
        uwriter = None
        try:
            if self.args.bye_every > 0 and conn % self.args.bye_every == 0:
                self.log_fault("bye", f"connection {conn}")
                cwriter.write(BYE_GREETING)
                await cwriter.drain()
                return
            try:
                ureader, uwriter = await asyncio.open_connection(
                    self.args.upstream_host, self.args.upstream, limit=LINE_MAX)
            except OSError as e:
                print(f"throttle_proxy: upstream: {e}", file=sys.stderr)
                return
            # Writes to the client: whole server responses or our own lines,
            # never one inside the other.
            lock = asyncio.Lock()
            down = asyncio.ensure_future(self.server_to_client(ureader, cwriter, lock))
            up = asyncio.ensure_future(self.client_to_server(creader, uwriter, cwriter, lock))
            await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
            for t in (down, up):
                t.cancel()
            await asyncio.gather(down, up, return_exceptions=True)
        finally:
            for w in (cwriter, uwriter):
                if w is not None:
                    w.close()

    def hide_caps(self, line):
        """The line without the hidden capability names, if it lists capabilities."""
        if not self.hidden:
            return line
        m = CAPS_RE.search(line)
        if m is None:
            return line
        words = m.group(2).split(b" ")
        kept = [w for w in words if w.upper() not in self.hidden]
        if len(kept) == len(words):
            return line
        self.log_fault("hide", b" ".join(sorted({w.upper() for w in words} - set(map(bytes.upper, kept))))
                       .decode("ascii", "replace"))
        return line[:m.start(2)] + b" ".join(kept) + line[m.end(2):]

    @staticmethod
    async def copy_exactly(reader, writer, n):
        while n > 0:
            data = await reader.readexactly(min(n, CHUNK))
            if writer is not None:
                writer.write(data)
                await writer.drain()
            n -= len(data)

    async def server_to_client(self, ureader, cwriter, lock):
        """Copies responses; a response line with literals is one unit."""
        try:
            while True:
                line = self.hide_caps(await ureader.readuntil(b"\n"))
                async with lock:
                    while True:
                        cwriter.write(line)
                        await cwriter.drain()
                        m = LITERAL_RE.search(line)
                        if m is None:
                            break
                        await self.copy_exactly(ureader, cwriter, int(m.group(1)))
                        line = await ureader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return

    @staticmethod
    def command_name(line):
        words = line.rstrip(b"\r\n").split(b" ")
        if len(words) < 2:
            return b"", ""
        name = words[1].upper()
        if name == b"UID" and len(words) > 2:
            name += b" " + words[2].upper()
        if name.startswith(b"{"):
            name = b""  # "a1 {5}": not a command we know
        return words[0], name.decode("ascii", "replace")

    async def client_to_server(self, creader, uwriter, cwriter, lock):
        try:
            while True:
                line = await creader.readuntil(b"\n")
                tag, name = self.command_name(line)
                throttle = self.should_throttle(name)
                # The command: its first line, then for each literal at a
                # line's end, the literal and the line that goes on after it.
                while True:
                    if not throttle:
                        uwriter.write(line)
                        await uwriter.drain()
                    m = LITERAL_RE.search(line)
                    if m is None:
                        break
                    if throttle and m.group(2) == b"":
                        async with lock:
                            cwriter.write(b"+ go ahead\r\n")
                            await cwriter.drain()
                    await self.copy_exactly(creader, None if throttle else uwriter,
                                            int(m.group(1)))
                    line = await creader.readuntil(b"\n")
                if throttle:
                    self.log_fault("throttle", f"{tag.decode('ascii', 'replace')} {name}")
                    reply = (b"%s NO [THROTTLED] Request is throttled. Suggested Backoff Time: "
                             b"%d milliseconds\r\n" % (tag, self.args.backoff_ms))
                    async with lock:
                        cwriter.write(reply)
                        await cwriter.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return


async def serve(args):
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port, limit=LINE_MAX)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(description="Fault-injecting IMAP proxy (plain TCP).")
    p.add_argument("--port", type=int, required=True, help="port to listen on, 0 for any")
    p.add_argument("--upstream", type=int, required=True, help="the IMAP server's port")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--throttle-every", type=int, default=0, metavar="N")
    p.add_argument("--commands", default="UID FETCH,FETCH,APPEND,SELECT,EXAMINE,STATUS")
    p.add_argument("--backoff-ms", type=int, default=1000, metavar="MS")
    p.add_argument("--bye-every", type=int, default=0, metavar="N")
    p.add_argument("--hide-caps", default="", metavar="LIST")
    p.add_argument("--log", metavar="FILE")
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
