#!/usr/bin/env python3
"""Check that a destination account holds exactly the source's messages.

verify.py --src HOST:PORT:USER:PASS --dst HOST:PORT:USER:PASS
          [--map SRCNAME=DSTNAME ...] [--exclude SRCNAME ...]
          [--account LABEL] [--json] [--strict]
          [--since YYYY-MM-DD] [--max-size BYTES]

The independent check a user would do, with imaplib only: every selectable
source folder is mapped to a destination folder (--map first, then the same
special-use attribute, then the same path components split by each side's
delimiter) and both are read with EXAMINE and BODY.PEEK[], so nothing changes.
A message is (sha256 of its bytes, flags without \\Recent, INTERNALDATE as
UTC epoch). Counted per destination folder:
  missing     a source copy with no destination copy of the same bytes
  duplicated  more destination copies of some bytes than the source has
  changed     same bytes, but flags or internal date differ
  extra       bytes in the destination the source does not have (also in
              destination folders no source folder maps to); an error
              only with --strict
--since and --max-size apply a source profile's filters: source messages with
an INTERNALDATE before that UTC day, or larger than that, are not expected in
the destination (counted as filtered).
Exit 0 if exact, 1 if not, 2 on a usage or connection error.
"""
import argparse
import collections
import datetime
import hashlib
import imaplib
import json
import sys

import imaptool

SPECIAL_USE = ("\\sent", "\\drafts", "\\trash", "\\junk", "\\archive")
DETAILS_PER_FOLDER = 5


def read_folder(conn, name, keep=None):
    """{sha256: [(flags tuple, epoch, uid)]} of a folder's messages; keep(epoch,
    size) False leaves a message out (counted in read_folder.filtered)."""
    messages = collections.defaultdict(list)
    try:
        count = imaptool.examine(conn, name)
    except imaplib.IMAP4.error as e:
        # A listed parent that holds no mailbox of its own (a Maildir++
        # hierarchy shown with another separator) has no messages.
        if "doesn't exist" not in str(e):
            raise
        return messages
    for meta, body in imaptool.fetch_chunks(conn, count, "(UID FLAGS INTERNALDATE BODY.PEEK[])"):
        flags, date, uid = (imaptool.FLAGS_RE.search(meta), imaptool.DATE_RE.search(meta),
                            imaptool.UID_RE.search(meta))
        if body is None or not flags or not date or not uid:
            raise imaplib.IMAP4.error("%s: unexpected FETCH reply %r" % (name, meta[:200]))
        digest = hashlib.sha256(body).hexdigest()
        epoch = imaptool.internaldate_epoch(date.group(1))
        if keep is not None and not keep(epoch, len(body)):
            read_folder.filtered += 1
            continue
        messages[digest].append((tuple(imaptool.normalize_flags(flags.group(1))),
                                 epoch, int(uid.group(1))))
    conn.close()
    return messages


read_folder.filtered = 0


def selectable(folders):
    return {name: (delim, attrs) for name, delim, attrs in folders
            if not attrs & {"\\noselect", "\\nonexistent"}}


def map_folders(src, dst, explicit):
    """{source name: destination name} for the selectable source folders."""
    dst_by_use = {}
    for name, (_, attrs) in dst.items():
        for use in SPECIAL_USE:
            if use in attrs:
                dst_by_use.setdefault(use, name)
    dst_delim = next((d for d, _ in dst.values() if d), "/")
    mapping = {}
    for name, (delim, attrs) in src.items():
        if name in explicit:
            mapping[name] = explicit[name]
            continue
        use = next((u for u in SPECIAL_USE if u in attrs and u in dst_by_use), None)
        if use:
            mapping[name] = dst_by_use[use]
            continue
        parts = name.split(delim) if delim else [name]
        if parts[0].upper() == "INBOX":
            parts[0] = "INBOX"
        mapping[name] = dst_delim.join(parts)
    return mapping


def compare(src_msgs, dst_msgs):
    """Counts and a few examples of differences between two message multisets."""
    counts = dict(missing=0, duplicated=0, changed=0, extra=0)
    examples = []
    for digest in set(src_msgs) | set(dst_msgs):
        s, d = src_msgs.get(digest, []), dst_msgs.get(digest, [])
        if not s:
            counts["extra"] += len(d)
            examples.append((d[0][2], "extra: dst uid %d sha256 %s" % (d[0][2], digest[:16])))
            continue
        if len(s) > len(d):
            counts["missing"] += len(s) - len(d)
            examples.append((s[0][2], "missing: src uid %d sha256 %s" % (s[0][2], digest[:16])))
        elif d and len(d) > len(s):
            counts["duplicated"] += len(d) - len(s)
            examples.append((s[0][2], "duplicated: dst uids %s sha256 %s"
                             % (",".join(str(x[2]) for x in d), digest[:16])))
        src_attrs = collections.Counter((f, t) for f, t, _ in s)
        dst_attrs = collections.Counter((f, t) for f, t, _ in d)
        changed = min(len(s), len(d)) - sum((src_attrs & dst_attrs).values())
        if changed:
            counts["changed"] += changed
            examples.append((s[0][2], "changed: src uid %d (%s) %d, dst uid %d (%s) %d"
                             % (s[0][2], " ".join(s[0][0]), s[0][1], d[0][2], " ".join(d[0][0]),
                                d[0][1])))
    return counts, [text for _, text in sorted(examples)]


def run(args):
    explicit = {}
    for item in args.map:
        if "=" not in item:
            raise imaptool.Usage("bad --map %r: want SRCNAME=DSTNAME" % item)
        a, b = item.split("=", 1)
        explicit[a] = b
    keep = None
    if args.since or args.max_size:
        since = 0
        if args.since:
            since = datetime.datetime.strptime(args.since, "%Y-%m-%d").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        keep = lambda epoch, size: (epoch >= since and
                                    (not args.max_size or size <= args.max_size))
    src_acc, dst_acc = imaptool.Account(args.src), imaptool.Account(args.dst)
    label = args.account or src_acc.user

    src_conn, dst_conn = src_acc.connect(), dst_acc.connect()
    src = selectable(imaptool.list_folders(src_conn))
    dst = selectable(imaptool.list_folders(dst_conn))
    mapping = map_folders(src, dst, explicit)
    # An excluded source folder's destination is not read either.
    skipped = {mapping.pop(name) for name in args.exclude if name in mapping}

    by_target = collections.defaultdict(list)
    for name, target in mapping.items():
        by_target[target].append(name)
    totals = dict(missing=0, duplicated=0, changed=0, extra=0)
    folders, compared = [], 0
    for target in sorted(set(by_target) | (set(dst) - skipped)):
        src_msgs = collections.defaultdict(list)
        for name in by_target.get(target, []):
            for digest, items in read_folder(src_conn, name, keep).items():
                src_msgs[digest].extend(items)
        dst_msgs = read_folder(dst_conn, target) if target in dst else {}
        if not src_msgs and not dst_msgs:
            continue
        counts, examples = compare(src_msgs, dst_msgs)
        n = sum(len(v) for v in src_msgs.values())
        compared += n
        for k in totals:
            totals[k] += counts[k]
        folders.append(dict(source=by_target.get(target, []), destination=target,
                            exists=target in dst, messages=n, **counts,
                            examples=examples[:DETAILS_PER_FOLDER]))
    for conn in (src_conn, dst_conn):
        conn.logout()

    exact = not (totals["missing"] or totals["duplicated"] or totals["changed"]
                 or (args.strict and totals["extra"]))
    result = dict(account=label, folders=len(mapping), messages=compared, exact=exact,
                  filtered=read_folder.filtered,
                  **totals, details=folders)
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
    else:
        line = ("verify %s: %d folders, %d messages compared: %d missing, %d duplicated, %d changed"
                % (label, len(mapping), compared, totals["missing"], totals["duplicated"],
                   totals["changed"]))
        if totals["extra"]:
            line += ", %d extra in destination" % totals["extra"]
        if keep is not None:
            line += ", %d filtered" % read_folder.filtered
        print(line)
    if not exact or totals["extra"]:
        for f in folders:
            if f["examples"]:
                print("  %s -> %s%s: %d missing, %d duplicated, %d changed, %d extra"
                      % (",".join(f["source"]) or "(none)", f["destination"],
                         "" if f["exists"] else " (does not exist)", f["missing"],
                         f["duplicated"], f["changed"], f["extra"]), file=sys.stderr)
                for e in f["examples"]:
                    print("    " + e, file=sys.stderr)
    return 0 if exact else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True, help="HOST:PORT:USER:PASS")
    ap.add_argument("--dst", required=True, help="HOST:PORT:USER:PASS")
    ap.add_argument("--map", action="append", default=[], metavar="SRCNAME=DSTNAME")
    ap.add_argument("--exclude", action="append", default=[], metavar="SRCNAME")
    ap.add_argument("--account", metavar="LABEL")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--strict", action="store_true", help="extra messages are an error")
    ap.add_argument("--since", metavar="YYYY-MM-DD")
    ap.add_argument("--max-size", type=int, metavar="BYTES")
    args = ap.parse_args()
    try:
        sys.exit(run(args))
    except imaptool.Usage as e:
        print("verify: %s" % e, file=sys.stderr)
        sys.exit(2)
    except (imaplib.IMAP4.error, OSError, ValueError) as e:
        print("verify: %s" % e, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
