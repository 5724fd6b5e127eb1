#!/usr/bin/env python3
"""Change a source account the way a user would between two copy passes.

mutate.py HOST:PORT:USER:PASS append FOLDER COUNT --corpus DIR [--seed S]
    APPEND COUNT corpus messages (seeded choice) to FOLDER, with seeded flags
    and each message's own date as INTERNALDATE.
mutate.py HOST:PORT:USER:PASS flags FOLDER COUNT [--seed S]
    On COUNT existing messages (seeded choice) toggle \\Seen, toggle \\Flagged
    or add $Work, with UID STORE.
Prints what it did, one line per message.
"""
import argparse
import imaplib
import os
import random
import sys

import imaptool
from fill_maildir import message_date


def append(conn, args, rng):
    if not args.corpus:
        raise imaptool.Usage("append needs --corpus DIR")
    names = sorted(n for n in os.listdir(args.corpus) if n.endswith(".txt"))
    for fname in rng.sample(names, args.count):
        with open(os.path.join(args.corpus, fname), "rb") as f:
            data = f.read()
        flags = [f for f, share in (("\\Seen", 0.6), ("\\Flagged", 0.1), ("$Work", 0.1))
                 if rng.random() < share]
        when = message_date(data)
        # imaplib sends the message with CRLF line ends, as a mail client would.
        typ, resp = conn.append(imaptool.quote(args.folder), "(%s)" % " ".join(flags),
                                imaplib.Time2Internaldate(when), data)
        if typ != "OK":
            raise imaplib.IMAP4.error("APPEND to %s failed: %r" % (args.folder, resp))
        print("append %s: %s flags=(%s) date=%d %s"
              % (args.folder, fname, " ".join(flags), when, resp[0].decode(errors="replace")))


def change_flags(conn, args, rng):
    typ, data = conn.select(imaptool.quote(args.folder))
    if typ != "OK":
        raise imaplib.IMAP4.error("SELECT %s failed: %r" % (args.folder, data))
    typ, data = conn.uid("SEARCH", "ALL")
    uids = [int(u) for u in data[0].split()]
    if args.count > len(uids):
        raise imaptool.Usage("%s has only %d messages" % (args.folder, len(uids)))
    for uid in sorted(rng.sample(uids, args.count)):
        typ, data = conn.uid("FETCH", str(uid), "(FLAGS)")
        flags = imaptool.normalize_flags(imaptool.FLAGS_RE.search(data[0]).group(1))
        action = rng.choice(["\\Seen", "\\Flagged", "$Work"])
        op = "-FLAGS" if action in flags and action != "$Work" else "+FLAGS"
        typ, data = conn.uid("STORE", str(uid), op, "(%s)" % action)
        if typ != "OK":
            raise imaplib.IMAP4.error("UID STORE %d failed: %r" % (uid, data))
        print("flags %s: uid %d %s %s" % (args.folder, uid, op, action))
    conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("account", help="HOST:PORT:USER:PASS")
    ap.add_argument("action", choices=["append", "flags"])
    ap.add_argument("folder")
    ap.add_argument("count", type=int)
    ap.add_argument("--corpus")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    try:
        conn = imaptool.Account(args.account).connect()
        (append if args.action == "append" else change_flags)(conn, args, rng)
        conn.logout()
    except imaptool.Usage as e:
        print("mutate: %s" % e, file=sys.stderr)
        sys.exit(2)
    except (imaplib.IMAP4.error, OSError) as e:
        print("mutate: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
