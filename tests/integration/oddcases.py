#!/usr/bin/env python3
"""Put generated odd-case messages into a source account over IMAP.

oddcases.py HOST:PORT:USER:PASS folders   folders with odd names, 3 messages each
oddcases.py HOST:PORT:USER:PASS big SIZE_MB [FOLDER]   one message of SIZE_MB plus 2 small ones
oddcases.py HOST:PORT:USER:PASS messages [FOLDER]      no Message-ID, bare LF, 8-bit headers,
                                                      exact duplicates, an old date
Messages are appended with raw literals so their bytes are exactly as written.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
import imaptool  # noqa: E402

# Names as a user would type them (UTF-8); sent as modified UTF-7.
ODD_FOLDERS = ["Café/Ünïcode", "R&D", "Deep/Level2/Level3/Level4/Level5", "Name with spaces",
               "日本語", "Projects/Q&A 2002"]


def message(n, extra_headers=b"", body=None, msgid=True, eol=b"\r\n"):
    lines = [b"From: Odd Sender <odd@example.org>", b"To: alice@example.org",
             b"Subject: odd case %d" % n, b"Date: Mon, 1 Jul 2002 10:%02d:00 +0200" % (n % 60)]
    if msgid:
        lines.append(b"Message-ID: <odd-%d@example.org>" % n)
    head = eol.join(lines) + eol + extra_headers
    return head + eol + (body if body is not None else b"body of message %d" % n + eol)


def append(conn, folder, data, flags="", date='"01-Jul-2002 10:00:00 +0200"'):
    tag = conn._new_tag()
    conn.send(b"%s APPEND %s (%s) %s {%d+}\r\n" % (tag, imaptool.quote(folder).encode(),
                                                   flags.encode(), date.encode(), len(data)))
    conn.send(data + b"\r\n")
    while True:
        line = conn.readline()
        if line.startswith(tag):
            if b" OK" not in line[:len(tag) + 4]:
                raise SystemExit("APPEND to %s refused: %r" % (folder, line))
            return


def main():
    acct = imaptool.Account(sys.argv[1])
    conn = acct.connect()
    what = sys.argv[2]
    if what == "folders":
        for i, name in enumerate(ODD_FOLDERS):
            conn.create(imaptool.quote(name))
            for k in range(3):
                append(conn, name, message(100 * i + k), flags="\\Seen" if k == 0 else "$Work")
        print("created %d folders with 3 messages each" % len(ODD_FOLDERS))
    elif what == "big":
        size = int(float(sys.argv[3]) * 1024 * 1024)
        folder = sys.argv[4] if len(sys.argv) > 4 else "INBOX"
        line = b"x" * 76 + b"\r\n"
        body = line * (size // len(line) + 1)
        append(conn, folder, message(1), flags="\\Seen")
        append(conn, folder, message(2, body=body), flags="\\Flagged")
        append(conn, folder, message(3))
        print("appended a %d-byte message between two small ones to %s" % (len(body), folder))
    elif what == "messages":
        folder = sys.argv[3] if len(sys.argv) > 3 else "INBOX"
        append(conn, folder, message(10, msgid=False))
        append(conn, folder, message(11, eol=b"\n"))
        append(conn, folder, message(12, extra_headers=b"X-Note: caf\xc3\xa9 \xe9t\xe9\r\n"), flags="$Work")
        dup = message(13)
        append(conn, folder, dup, flags="\\Seen")
        append(conn, folder, dup, flags="\\Seen")
        append(conn, folder, message(14), date='"05-Jan-1998 23:59:59 -0800"')
        print("appended 6 odd messages to %s" % folder)
    else:
        raise SystemExit(__doc__)
    conn.logout()


if __name__ == "__main__":
    main()
