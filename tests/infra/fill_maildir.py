#!/usr/bin/env python3
"""Build a user's maildir directly from the corpus (far faster than APPEND).

fill_maildir.py --corpus DIR --maildir PATH --layout fs|maildirpp [--limit N] [--seed S]

Messages (sorted by file name, the first N with --limit) are spread with a
seeded RNG over INBOX (~50%), Archive/2002 (~20%), "Old Projects" (~15%) and
Junk (~15%). Flags: ~60% \\Seen, ~10% \\Flagged, ~10% \\Answered, ~5% $Work,
~3% $Personal. Each file holds the corpus bytes unchanged; its mtime, which
Dovecot's maildir uses as INTERNALDATE, is the message's own Date: header.
Dovecot indexes the files on first access and assigns UIDs then.

Layouts (as Dovecot 2.3 lays them out):
  fs         maildir:~/Maildir:LAYOUT=fs  INBOX is PATH, PATH/Archive/2002
  maildirpp  maildir:~/Maildir            INBOX is PATH, PATH/.Archive.2002
New files and directories get the owner of PATH's nearest existing ancestor
(the stack's mail directory belongs to the user Dovecot accesses mail as).
"""
import argparse
import datetime
import email.parser
import email.policy
import email.utils
import os
import time
import random
import sys

FOLDERS = [("INBOX", 0.50), ("Archive/2002", 0.20), ("Old Projects", 0.15), ("Junk", 0.15)]
# Maildir keywords are the letters a.. in the file name, numbered by the
# folder's dovecot-keywords file: a = 0 = $Work, b = 1 = $Personal.
KEYWORDS_FILE = "0 $Work\n1 $Personal\n"
FLAG_NAMES = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered", "a": "$Work", "b": "$Personal"}
FALLBACK_DATE = datetime.datetime(2002, 1, 1, tzinfo=datetime.timezone.utc)
HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def message_date(data):
    """The message's Date: header as a UTC epoch, or FALLBACK_DATE."""
    end = data.find(b"\n\n")
    try:
        value = HEADER_PARSER.parsebytes(data[: end if end >= 0 else 65536])["Date"]
        when = email.utils.parsedate_to_datetime(str(value))
        if when.tzinfo is None:  # "-0000": no zone information, take UTC
            when = when.replace(tzinfo=datetime.timezone.utc)
        epoch = int(when.timestamp())
        # Dovecot replaces an APPEND date in the future by the time of the
        # APPEND, so a spam's bogus future Date: could never survive any copy.
        if 0 < epoch < min(2**31, int(time.time())):
            return epoch
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    return int(FALLBACK_DATE.timestamp())


def choose_folder(rng):
    r, acc = rng.random(), 0.0
    for name, share in FOLDERS:
        acc += share
        if r < acc:
            return name
    return FOLDERS[-1][0]


def choose_flags(rng):
    """Maildir info letters, standard flags (upper case) first, both sorted."""
    flags = ""
    for letter, share in (("F", 0.10), ("R", 0.10), ("S", 0.60)):
        if rng.random() < share:
            flags += letter
    for letter, share in (("a", 0.05), ("b", 0.03)):
        if rng.random() < share:
            flags += letter
    return flags


def folder_dir(root, name, layout):
    if name == "INBOX":
        return root
    if layout == "fs":
        return os.path.join(root, *name.split("/"))
    return os.path.join(root, "." + name.replace("/", "."))


class Owner:
    """Gives new paths the owner of the maildir's nearest existing ancestor."""

    def __init__(self, path):
        probe = os.path.abspath(path)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        st = os.stat(probe)
        self.ids = (st.st_uid, st.st_gid)
        self.needed = os.geteuid() == 0 and self.ids != (0, 0)

    def apply(self, path):
        if self.needed:
            os.chown(path, *self.ids)


def make_dirs(path, owner):
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for d in reversed(missing):
        os.mkdir(d, 0o700)
        owner.apply(d)


def write_file(path, data, owner, mtime=None):
    with open(path, "xb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    owner.apply(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--layout", required=True, choices=["fs", "maildirpp"])
    ap.add_argument("--limit", type=int)
    ap.add_argument("--offset", type=int, default=0,
                    help="skip the first OFFSET messages (for accounts with distinct mail)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    names = sorted(n for n in os.listdir(args.corpus) if n.endswith(".txt"))
    names = names[args.offset:]
    if args.limit is not None:
        names = names[: args.limit]
    if not names:
        sys.exit("fill_maildir: no .txt messages in %s" % args.corpus)

    rng = random.Random(args.seed)
    owner = Owner(args.maildir)
    root = os.path.abspath(args.maildir)
    per_folder = {name: 0 for name, _ in FOLDERS}
    per_flag = {letter: 0 for letter in FLAG_NAMES}

    for name, _ in FOLDERS:
        d = folder_dir(root, name, args.layout)
        for sub in ("cur", "new", "tmp"):
            make_dirs(os.path.join(d, sub), owner)
        kw = os.path.join(d, "dovecot-keywords")
        if not os.path.exists(kw):
            write_file(kw, KEYWORDS_FILE.encode(), owner)
        if args.layout == "maildirpp" and name != "INBOX":
            mf = os.path.join(d, "maildirfolder")
            if not os.path.exists(mf):
                write_file(mf, b"", owner)

    for n, fname in enumerate(names):
        with open(os.path.join(args.corpus, fname), "rb") as f:
            data = f.read()
        folder = choose_folder(rng)
        flags = choose_flags(rng)
        when = message_date(data)
        base = "%d.M%dP%d.mailshift,S=%d:2,%s" % (when, n, args.seed, len(data), flags)
        path = os.path.join(folder_dir(root, folder, args.layout), "cur", base)
        write_file(path, data, owner, mtime=when)
        per_folder[folder] += 1
        for letter in flags:
            per_flag[letter] += 1

    # Dovecot 2.3 subscriptions file, version 2: hierarchy levels split by TAB.
    subs = os.path.join(root, "subscriptions")
    if os.path.exists(subs):
        os.unlink(subs)
    lines = "".join(name.replace("/", "\t") + "\n" for name, _ in FOLDERS)
    write_file(subs, ("V\t2\n\n" + lines).encode(), owner)

    folders = ", ".join("%s=%d" % kv for kv in per_folder.items())
    flags = ", ".join("%s=%d" % (FLAG_NAMES[k], v) for k, v in per_flag.items())
    print("fill_maildir: %d messages into %s (%s): %s; flags: %s"
          % (len(names), root, args.layout, folders, flags))


if __name__ == "__main__":
    main()
