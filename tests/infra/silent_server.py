#!/usr/bin/env python3
"""A TCP server that accepts connections and never answers, for tests.

    silent_server.py [--port PORT]

Listens on 127.0.0.1:PORT (0, the default: any free port), prints
"listening on 127.0.0.1:PORT", then accepts every connection and holds it open
without reading or writing a byte, like a PostgreSQL that is hung or a
firewall that swallows packets after the handshake.  Python 3 standard
library only.
"""

import argparse
import socket


def main():
    p = argparse.ArgumentParser(description="Accepts and never answers.")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", args.port))
    s.listen(128)
    print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
    held = []
    while True:
        conn, _ = s.accept()
        held.append(conn)


if __name__ == "__main__":
    main()
