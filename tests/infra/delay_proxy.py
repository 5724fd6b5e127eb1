#!/usr/bin/env python3
"""A TCP proxy that adds latency: every chunk in each direction is delayed.

    delay_proxy.py --port PORT --upstream PORT [--upstream-host HOST] --rtt-ms MS

Listens on 127.0.0.1:PORT (0: any free port) and forwards each connection to
HOST:PORT (default host 127.0.0.1). Every chunk read from either side is
written to the other side MS/2 milliseconds after it was read, so a request
and its answer take MS more than without the proxy (a round trip time of MS
on top of loopback's). Order is kept; bandwidth is not limited (reading goes
on while earlier chunks wait their turn, so a stream of bytes is only shifted
in time, not slowed). Bytes are not looked at: TLS (implicit or STARTTLS)
passes through, and certificates for 127.0.0.1 still match. This kernel has
no netem; this stands for a WAN link in the benchmark.

Once listening it prints "listening on 127.0.0.1:PORT" on stdout.
Python 3 standard library only.
"""

import argparse
import asyncio
import socket
import sys

CHUNK = 1 << 16


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk delay seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def reading():
        try:
            while True:
                data = await reader.read(CHUNK)
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


async def handle(creader, cwriter, args):
    delay = args.rtt_ms / 2000.0
    uwriter = None
    try:
        try:
            ureader, uwriter = await asyncio.open_connection(args.upstream_host, args.upstream)
        except OSError as e:
            print(f"delay_proxy: upstream: {e}", file=sys.stderr)
            return
        nodelay(cwriter)
        nodelay(uwriter)
        # Both directions until both have ended (a half close passes through).
        await asyncio.gather(pump(creader, uwriter, delay), pump(ureader, cwriter, delay))
    finally:
        for w in (cwriter, uwriter):
            if w is not None:
                w.close()


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
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
