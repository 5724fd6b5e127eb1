#!/usr/bin/env python3
"""A plain TCP forwarder for tests: a process's only way to a server, to be cut.

    tcp_gate.py --port PORT --upstream PORT [--upstream-host HOST]

Listens on 127.0.0.1:PORT (0: any free port) and forwards every connection,
byte for byte in both directions, to HOST:PORT (default host 127.0.0.1).
Once listening it prints "listening on 127.0.0.1:PORT" on stdout.

Stopping it (SIGTERM) cuts the way: every forwarded connection is closed and
new ones are refused, as when a network partition or a server restart cuts a
client off.  Starting it again on the same port opens the way again.
Python 3 standard library only.
"""

import argparse
import asyncio
import signal

CHUNK = 1 << 16


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(args):
    async def handle(creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(args.upstream_host, args.upstream)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, uwriter), pipe(ureader, cwriter))

    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    print("listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Exiting closes every socket: forwarded connections are cut, not drained.


def main():
    p = argparse.ArgumentParser(description="Plain TCP forwarder, to be cut by stopping it.")
    p.add_argument("--port", type=int, required=True, help="port to listen on, 0 for any")
    p.add_argument("--upstream", type=int, required=True, help="the server's port")
    p.add_argument("--upstream-host", default="127.0.0.1")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
