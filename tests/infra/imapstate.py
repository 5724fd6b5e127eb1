#!/usr/bin/env python3
"""Print an account's state as JSON, for before/after comparisons.

imapstate.py HOST:PORT:USER:PASS

{folder: {uidvalidity, uidnext, highestmodseq, messages: {uid: [[flags], modseq]}}}
for every selectable folder, read with EXAMINE (CONDSTORE) only: nothing changes.
Flags are sorted, without \\Recent.
"""
import imaplib
import json
import sys

import imaptool


def folder_state(conn, name):
    count = imaptool.examine(conn, name, condstore=True)
    state = dict(uidvalidity=imaptool.untagged_value(conn, "UIDVALIDITY"),
                 uidnext=imaptool.untagged_value(conn, "UIDNEXT"),
                 highestmodseq=imaptool.untagged_value(conn, "HIGHESTMODSEQ"),
                 messages={})
    for meta, _ in imaptool.fetch_chunks(conn, count, "(UID FLAGS MODSEQ)"):
        uid, flags, modseq = (imaptool.UID_RE.search(meta), imaptool.FLAGS_RE.search(meta),
                              imaptool.MODSEQ_RE.search(meta))
        if not uid or not flags or not modseq:
            raise imaplib.IMAP4.error("%s: unexpected FETCH reply %r" % (name, meta[:200]))
        state["messages"][int(uid.group(1))] = [imaptool.normalize_flags(flags.group(1)),
                                                int(modseq.group(1))]
    conn.close()
    return state


def main():
    if len(sys.argv) != 2:
        print("usage: imapstate.py HOST:PORT:USER:PASS", file=sys.stderr)
        sys.exit(2)
    try:
        conn = imaptool.Account(sys.argv[1]).connect()
        state = {}
        for name, _, attrs in imaptool.list_folders(conn):
            if not attrs & {"\\noselect", "\\nonexistent"}:
                state[name] = folder_state(conn, name)
        conn.logout()
    except (imaptool.Usage, imaplib.IMAP4.error, OSError, ValueError) as e:
        print("imapstate: %s" % e, file=sys.stderr)
        sys.exit(2)
    json.dump(state, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
