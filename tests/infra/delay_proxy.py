#!/usr/bin/env python3
"""A TCP proxy that adds latency: every chunk in each direction is delayed.

    delay_proxy.py --port PORT --upstream PORT [--upstream-host HOST] --rtt-ms MS
                   [--log FILE]

Listens on 127.0.0.1:PORT (0: any free port) and forwards each connection to
HOST:PORT (default host 127.0.0.1). Every chunk read from either side is
written to the other side MS/2 milliseconds after it was read, so a request
and its answer take MS more than without the proxy (a round trip time of MS
on top of loopback's). Order is kept; bandwidth is not limited (reading goes
on while earlier chunks wait their turn, so a stream of bytes is only shifted
in time, not slowed). Bytes are not looked at: TLS (implicit or STARTTLS)
passes through, and certificates for 127.0.0.1 still match. This kernel has
no netem; this stands for a WAN link in the benchmark.

--log FILE appends one line per connection when it ends:
  "conn N up BYTES CHUNKS down BYTES CHUNKS turns T secs S"
where turns counts the times the client sent after having received
something since it last sent: the round trips it waited for (a client that
pipelines has few turns; one that waits for each answer has one per
command, the greeting's included).

Once listening it prints "listening on 127.0.0.1:PORT" on stdout.
Python 3 standard library only.
"""

import argparse
import asyncio
import socket
import sys

CHUNK = 1 << 16


class Stats:
    def __init__(self, number):
        self.number = number
        self.bytes = {"up": 0, "down": 0}
        self.chunks = {"up": 0, "down": 0}
        self.turns = 0
        self.last = None

    def saw(self, direction, n):
        if direction == "up" and self.last == "down":
            self.turns += 1
        self.last = direction
        self.bytes[direction] += n
        self.chunks[direction] += 1


async def pump(reader, writer, delay, stats, direction):
    """Copies reader to writer, each chunk delay seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def reading():
        try:
            while True:
                data = await reader.read(CHUNK)
                if data:
                    stats.saw(direction, len(data))
                queue.put_nowait((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + delay, b""))

    task = asyncio.ensure_future(reading())
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                await writer.drain()
                return
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        return
    finally:
        task.cancel()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


CONNECTIONS = [0]


async def handle(creader, cwriter, args):
    delay = args.rtt_ms / 2000.0
    uwriter = None
    CONNECTIONS[0] += 1
    stats = Stats(CONNECTIONS[0])
    start = asyncio.get_running_loop().time()
    try:
        try:
            ureader, uwriter = await asyncio.open_connection(args.upstream_host, args.upstream)
        except OSError as e:
            print(f"delay_proxy: upstream: {e}", file=sys.stderr)
            return
        nodelay(cwriter)
        nodelay(uwriter)
        # Both directions until both have ended (a half close passes through).
        await asyncio.gather(pump(creader, uwriter, delay, stats, "up"),
                             pump(ureader, cwriter, delay, stats, "down"))
    finally:
        for w in (cwriter, uwriter):
            if w is not None:
                w.close()
        if args.log:
            with open(args.log, "a") as f:
                f.write("conn %d up %d %d down %d %d turns %d secs %.3f\n"
                        % (stats.number, stats.bytes["up"], stats.chunks["up"],
                           stats.bytes["down"], stats.chunks["down"], stats.turns,
                           asyncio.get_running_loop().time() - start))


async def serve(args):
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(description="TCP proxy adding a round trip time.")
    p.add_argument("--port", type=int, required=True, help="port to listen on, 0 for any")
    p.add_argument("--upstream", type=int, required=True, help="the server's port")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--rtt-ms", type=float, required=True, metavar="MS",
                   help="added round trip time; each direction gets half")
    p.add_argument("--log", metavar="FILE", help="one line per connection when it ends")
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
