#!/usr/bin/env python3
"""Compare a copy while ignoring the X-TUID header mbsync inserts.

lenient_check.py SRC DST [SRCNAME=DSTNAME ...]    (HOST:PORT:USER:PASS each)

mbsync (isync 1.4) adds an "X-TUID: ..." header line to every message it
copies, so verify.py sees every message as missing. This check removes that
line from the destination's header before hashing and then compares bytes,
flags (without \\Recent) and INTERNALDATE, to tell what else differs.
Folders are mapped as verify.py maps them (the explicit SRCNAME=DSTNAME
pairs first, then special-use, then the path with the destination's
delimiter: mbsync writes Archive/2002 as Archive.2002 on a Maildir++ side).
Prints one line; exit 0 if equal after that, 1 if not.
"""
import collections
import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
import imaptool  # noqa: E402
import verify  # noqa: E402

TUID_RE = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.M)


def strip_tuid(body):
    end = body.find(b"\r\n\r\n")
    end = len(body) if end < 0 else end + 2
    return TUID_RE.sub(b"", body[:end], count=1) + body[end:]


def read(conn, name, strip):
    out = collections.Counter()
    count = imaptool.examine(conn, name)
    for meta, body in imaptool.fetch_chunks(conn, count, "(FLAGS INTERNALDATE BODY.PEEK[])"):
        if strip:
            body = strip_tuid(body)
        flags = tuple(imaptool.normalize_flags(imaptool.FLAGS_RE.search(meta).group(1)))
        date = imaptool.internaldate_epoch(imaptool.DATE_RE.search(meta).group(1))
        out[(hashlib.sha256(body).hexdigest(), flags, date)] += 1
    conn.close()
    return out


def main():
    src_acc, dst_acc = imaptool.Account(sys.argv[1]), imaptool.Account(sys.argv[2])
    explicit = dict(a.split("=", 1) for a in sys.argv[3:])
    src, dst = src_acc.connect(), dst_acc.connect()
    mapping = verify.map_folders(verify.selectable(imaptool.list_folders(src)),
                                 verify.selectable(imaptool.list_folders(dst)), explicit)
    total = same = body_only = 0
    lost_flags = collections.Counter()
    for name, target in sorted(mapping.items()):
        s, d = read(src, name, False), read(dst, target, True)
        d_by_hash = collections.defaultdict(list)
        for (h, flags, date), n in d.items():
            d_by_hash[h].extend([(flags, date)] * n)
        for (h, flags, date), n in s.items():
            for _ in range(n):
                total += 1
                cands = d_by_hash.get(h)
                if not cands:
                    continue
                if (flags, date) in cands:
                    cands.remove((flags, date))
                    same += 1
                else:
                    body_only += 1
                    dflags, _ = cands.pop(0)
                    for f in set(flags) - set(dflags):
                        lost_flags[f] += 1
    missing = total - same - body_only
    lost = ", ".join("%s on %d" % (f, n) for f, n in sorted(lost_flags.items())) or "none"
    print("ignoring X-TUID: %d of %d identical, %d with other flags/date (source flags absent: %s), "
          "%d missing" % (same, total, body_only, lost, missing))
    sys.exit(0 if same == total else 1)


if __name__ == "__main__":
    main()
