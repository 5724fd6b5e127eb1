#!/usr/bin/env python3
"""Count the messages and sum RFC822.SIZE over every selectable folder of the
given accounts on one IMAP server (plain TCP, read-only).

sizes.py PORT USER:PASS [USER:PASS...]   prints "MESSAGES BYTES"
"""
import imaplib
import re
import sys


def account_sizes(port, user, password):
    n = total = 0
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, password)
    for line in c.list()[1]:
        m = re.match(rb'\((.*?)\) (?:"."|NIL) (.*)$', line)
        if b"\\Noselect" in m.group(1):
            continue
        name = m.group(2).decode()
        name = name if name.startswith('"') else '"%s"' % name
        typ, data = c.select(name, readonly=True)
        if typ != "OK" or int(data[0]) == 0:
            continue
        for item in c.fetch("1:*", "(RFC822.SIZE)")[1]:
            n += 1
            total += int(re.search(rb"RFC822\.SIZE (\d+)", item).group(1))
        c.close()
    c.logout()
    return n, total


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    n = total = 0
    for cred in sys.argv[2:]:
        user, password = cred.split(":", 1)
        a, b = account_sizes(int(sys.argv[1]), user, password)
        n += a
        total += b
    print(n, total)


if __name__ == "__main__":
    main()
