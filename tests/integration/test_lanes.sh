#!/usr/bin/env bash
# A large folder's first copy in two streams (worker/lanes.c, issue 12), end
# to end against real Dovecot servers and PostgreSQL: the corpus INBOX split
# and copied exactly; SIGKILLs while both streams run, each resumed from the
# two cursors; a folder whose two halves hold the same messages (same bytes,
# same INTERNALDATE) killed while split, so that re-matching could mistake one
# stream's message for the other's; the pass after a split; and --split-min 0
# keeping the source's order in the destination.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-lanes.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19800}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

suite_start

# plan_for NAME: a migration of source user NAME to destination user NAME.
plan_for() {
  make_plan "$1" "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
    "$1,$1pw,$1,$1pw"
}
# map_twice M: destination messages the migration's UID map names for more
# than one source message (a later flag change would go to the wrong one).
map_twice() { sql "SELECT count(*) - count(DISTINCT (f.id, m.dst_start + g)) FROM uid_map m
                   JOIN folders f ON f.id = m.folder_id JOIN accounts a ON a.id = f.account_id,
                   generate_series(0, m.len - 1) g WHERE a.migration_id = $1"; }
lanes_open() { sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
                    WHERE a.migration_id = $1 AND f.lane_lo <> 0"; }

# uid_order PORT USER PASS FOLDER: the Message-ID of each message in UID order.
uid_order() {
  python3 - "$@" <<'PY'
import imaplib, re, sys
port, user, pw, folder = sys.argv[1:]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, pw)
c.select('"%s"' % folder, readonly=True)
typ, data = c.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
rows = []
for item in data:
    if isinstance(item, tuple):
        uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
        rows.append((uid, item[1].strip()))
for _, mid in sorted(rows):
    print(mid.decode("ascii", "replace"))
PY
}

# kill_during_split M ROUNDS WORKER-OPTIONS...: starts a worker, kills it with
# SIGKILL at a random moment once the migration's folder is split, ROUNDS
# times (fewer if the pass ends first); sets kills and open_at_kill (kills
# that left a lane open with both cursors moved).
kill_during_split() {
  local m=$1 rounds=$2 round
  shift 2
  kills=0
  open_at_kill=0
  for round in $(seq 1 "$rounds"); do
    LEASE_TTL=2 worker_start "$@" || break
    for _ in $(seq 1 200); do grep -q "pass 1 started" "$worker_log" && break; sleep 0.05; done
    for _ in $(seq 1 100); do [[ $(lanes_open "$m") -gt 0 ]] && break; sleep 0.05; done
    sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
    if kill -KILL "$worker_pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$worker_pid" 2>/dev/null
    worker_pid=
    [[ $(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
              WHERE a.migration_id = $m AND f.lane_lo <> 0 AND f.lane_high_water >= f.lane_lo
              AND f.high_water > 0") -gt 0 ]] && open_at_kill=$((open_at_kill + 1))
    [[ $(sql "SELECT pass_done FROM accounts WHERE migration_id = $m") == 1 ]] && break
  done
}

# --- the corpus INBOX in two streams ------------------------------------------
add_users split 1 SRC DST >/dev/null
add_user SRC big bigpw
add_user DST big bigpw
fill_corpus big
m_big=$(import_plan "$(plan_for big)")
worker_start || { echo "0 passed, 1 failed"; exit 1; }
check "split: pass 1 of the corpus account ends synced" run_pass "$m_big" 1
check "split: the worker copied the 3,017-message INBOX in two streams (default --split-min 1000)" \
  grep -q "folder INBOX: 3017 messages, copied in two streams" "$worker_log"
check "split: the destination is exact (0 missing, 0 duplicated, flags and dates)" \
  verify big:bigpw "$DST_PORT" big:bigpw --account big
check "split: no lane left open, INBOX's high water at its last UID" \
  test "$(lanes_open "$m_big"):$(sql "SELECT f.high_water FROM folders f JOIN accounts a
          ON a.id = f.account_id WHERE a.migration_id = $m_big AND f.src_name = 'INBOX'")" \
  = "0:$(state "$SRC_PORT" big:bigpw | python3 -c '
import json, sys
print(max(map(int, json.load(sys.stdin)["INBOX"]["messages"])))' 2>/dev/null)"
check "split: the UID map holds every message once ($(sql "SELECT coalesce(sum(m.len), 0)
          FROM uid_map m JOIN folders f ON f.id = m.folder_id JOIN accounts a
          ON a.id = f.account_id WHERE a.migration_id = $m_big") of 6046)" \
  test "$(sql "SELECT coalesce(sum(m.len), 0) FROM uid_map m JOIN folders f ON f.id = m.folder_id
               JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_big")" = 6046
# The next pass copies what arrived since, in order, on one stream.
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:big:bigpw" append INBOX 200 --corpus "$corpus" \
  >"$work/mutate.log" 2>&1
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:big:bigpw" flags INBOX 100 --seed 3 \
  >>"$work/mutate.log" 2>&1
streams_before=$(grep -c "copied in two streams" "$worker_log")
check "split: the delta pass after it ends synced" run_pass "$m_big" 2
check "split: the delta pass copied on one stream (no new split)" \
  test "$(grep -c "copied in two streams" "$worker_log")" = "$streams_before"
check "split: after the delta pass the destination is exact" \
  verify big:bigpw "$DST_PORT" big:bigpw --account big
worker_stop

# --- SIGKILL while both streams run -----------------------------------------
add_user SRC kil kilpw
add_user DST kil kilpw
fill_corpus kil
m_kil=$(import_plan "$(plan_for kil)")
"$COORD" pass "$m_kil" 1 2>>"$work/coordinator.log"
kill_during_split "$m_kil" 8 --split-min 300 --batch-count 25
LEASE_TTL=2 worker_start --split-min 300 --batch-count 25
"$COORD" wait "$m_kil" 1 300 >/dev/null 2>>"$work/coordinator.log"
check "kills: worker killed with SIGKILL $kills times (at least 5)" test "$kills" -ge 5
check "kills: $open_at_kill kills left a folder split with both cursors moved (at least 1)" \
  test "$open_at_kill" -ge 1
check "kills: a resumed run re-matched an interrupted batch of the second stream" \
  grep -q "re-matching an interrupted batch .*(the folder's second stream)" "$work"/worker.*.log
check "kills: the account ends synced" \
  test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_kil")" = synced
check "kills: the destination is exact (0 missing, 0 duplicated)" \
  verify kil:kilpw "$DST_PORT" kil:kilpw --account kil
check "kills: no lane left open" test "$(lanes_open "$m_kil")" = 0
check "kills: no destination message mapped from two source messages" test "$(map_twice "$m_kil")" = 0
worker_stop

# --- the same messages in both halves, killed while split ---------------------
# 1,500 distinct messages, each twice (same bytes, same INTERNALDATE): copy k
# in the first half of the folder's UIDs and copy k+1500 in the second, so each
# stream's re-matching sees the other's identical messages above its bound.
add_user SRC twin twinpw
add_user DST twin twinpw
python3 - "$SRC_DIR/mail/twin/Maildir" <<'PY'
import os, sys, time
root = sys.argv[1]
for d in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
base = int(time.time()) - 86400 * 30
body = "x" * 3000
for copy in range(2):
    for k in range(1500):
        # Names sort copy 0 before copy 1 (the mtime, INTERNALDATE, is
        # the same for both copies).
        name = "%d.M%dP%d.twin:2,S" % (base + copy * 100000 + k, copy, k)
        path = os.path.join(root, "cur", name)
        with open(path, "w") as f:
            f.write("From: a@example.org\r\nTo: b@example.org\r\nSubject: twin %d\r\n"
                    "Message-ID: <twin-%d@example.org>\r\n\r\n%s %d\r\n" % (k, k, body, k))
        os.utime(path, (base + k, base + k))
PY
chown -R --reference="$SRC_DIR/mail" "$SRC_DIR/mail/twin"
m_twin=$(import_plan "$(plan_for twin)")
"$COORD" pass "$m_twin" 1 2>>"$work/coordinator.log"
kill_during_split "$m_twin" 8 --split-min 100 --batch-count 5
LEASE_TTL=2 worker_start --split-min 100 --batch-count 5
"$COORD" wait "$m_twin" 1 300 >/dev/null 2>>"$work/coordinator.log"
check "twins: killed $kills times while the folder was split, $open_at_kill with both cursors moved (at least 3 and 1)" \
  test "$kills" -ge 3 -a "$open_at_kill" -ge 1
check "twins: every copy of every message once (3,000 of 3,000: 0 missing, 0 duplicated)" \
  verify twin:twinpw "$DST_PORT" twin:twinpw --account twin
check "twins: each source message mapped to a destination message of its own ($(map_twice "$m_twin") shared)" \
  test "$(map_twice "$m_twin")" = 0
worker_stop

# --- a MULTIAPPEND refused whole while the folder is split -------------------
# 450 messages; the 300th (in the second stream's half) carries $Rejected,
# which the fake destination (tests/infra/fake_imap.py) refuses with the whole
# MULTIAPPEND holding it.  The stream stops, the intent stays open, and once
# both streams stopped the next attempt re-matches it: the message goes
# again without the keyword (worker/keywords.c), nothing is lost or doubled.
add_user SRC rejs rejspw
python3 - "$SRC_PORT" <<'PY'
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("rejs", "rejspw")
for n in range(1, 451):
    msg = ("From: s%d@example.org\r\nTo: rejs@example.com\r\nSubject: split refusal %d\r\n"
           "Message-ID: <rejs-%d@example.org>\r\n\r\nbody %d\r\n" % (n, n, n, n)).encode()
    typ, data = c.append("INBOX", "($Rejected)" if n == 300 else None,
                         '"01-Feb-2020 10:00:00 +0000"', msg)
    if typ != "OK":
        sys.exit("source refused: %r" % data)
PY
mkdir -p "$work/rejs-empty"
serve fake-rejs python3 "$infra/fake_imap.py" --port 0 --log "$work/fake-rejs.log" \
  --user rejs --password rejspw --messages-dir "$work/rejs-empty" --refuse-append-flag "\$Rejected"
rejs_port=$served_port
plan=$(make_plan rejs "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$rejs_port" none)" \
  "rejs,rejspw,rejs,rejspw")
m_rejs=$(import_plan "$plan")
worker_start --split-min 100 --batch-count 20
check "refused while split: pass 1 ends synced" run_pass "$m_rejs" 1
check "refused while split: the folder went in two streams" \
  grep -q "folder INBOX: 450 messages, copied in two streams" "$worker_log"
check "refused while split: the refused batch waited for both streams, then was matched again" \
  grep -q "Too many keywords; copied in two streams: matched again once both have stopped" \
  "$worker_log"
python3 - "$rejs_port" >"$work/rejs.ids" <<'PY'
import imaplib, re, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("rejs", "rejspw")
typ, data = c.select("INBOX", readonly=True)
typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
for item in data:
    if isinstance(item, tuple):
        m = re.search(rb"^Message-ID: (<[^>]*>)", item[1], re.M | re.I)
        print(m.group(1).decode() if m else "(none)")
PY
check "refused while split: all 450 in the destination once each, by Message-ID ($(wc -l <"$work/rejs.ids") held, $(sort "$work/rejs.ids" | uniq -d | wc -l) duplicated)" \
  test "$(sort -u "$work/rejs.ids" | grep -c '^<rejs-')" = 450 -a "$(wc -l <"$work/rejs.ids")" = 450
check "refused while split: no message error, the keyword dropped recorded for UID 300" \
  test "$(sql "SELECT (SELECT count(*) FROM message_errors e JOIN accounts a ON a.id = e.account_id
                       WHERE a.migration_id = $m_rejs) || ' ' || string_agg(k.src_uid::text, ',')
               FROM keywords_dropped k JOIN folders f ON f.id = k.folder_id
               JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_rejs")" = "0 300"
check "refused while split: no lane left open" test "$(lanes_open "$m_rejs")" = 0
worker_stop

# --- a budget of one connection per server: no room for the lane ------------
# The folder is still split (its cursors recorded), and the folder's thread
# copies the lane's range itself after its own half.
add_user DST tight tightpw
one_conn() { server_json "$1" "$2" none | sed 's/"max_connections": 10/"max_connections": 1/'; }
plan=$(make_plan tight "$(one_conn src "$SRC_PORT")" "$(one_conn dst "$DST_PORT")" \
  "big,bigpw,tight,tightpw")
m_tight=$(import_plan "$plan")
worker_start
# The destination's IMAP connections of that user, counted by Dovecot.
( while :; do doveadm -c "$DST_CONF" who -1 2>/dev/null | grep -c '^tight ' ; sleep 0.05; done ) \
  >"$work/tight.samples" &
sampler=$!
check "budget of 1: pass 1 ends synced" run_pass "$m_tight" 1
kill "$sampler"; wait "$sampler" 2>/dev/null
peak=$(sort -n "$work/tight.samples" | tail -n 1)
check "budget of 1: INBOX split, its second half copied after the first on the one connection pair" \
  grep -q "folder INBOX: no connection for the second stream" "$worker_log"
check "budget of 1: one destination connection at any time, counted by Dovecot (peak $peak)" \
  test "${peak:-99}" = 1
check "budget of 1: the destination is exact" \
  verify big:bigpw "$DST_PORT" tight:tightpw --account tight
check "budget of 1: no lane left open" test "$(lanes_open "$m_tight")" = 0
worker_stop

# --- --split-min 0: the destination keeps the source's order ----------------
add_user DST ordered orderedpw
plan=$(make_plan ordered "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "big,bigpw,ordered,orderedpw")
m_ord=$(import_plan "$plan")
worker_start --split-min 0
check "order: pass 1 with --split-min 0 ends synced" run_pass "$m_ord" 1
check "order: copied on one stream per folder" \
  test "$(grep -c "copied in two streams" "$worker_log")" = 0
uid_order "$SRC_PORT" big bigpw INBOX >"$work/src-order"
uid_order "$DST_PORT" ordered orderedpw INBOX >"$work/dst-order"
check "order: INBOX's messages in the destination's UID order are the source's ($(wc -l <"$work/src-order") messages)" \
  cmp -s "$work/src-order" "$work/dst-order"
check "order: the destination is exact" verify big:bigpw "$DST_PORT" ordered:orderedpw --account ordered
worker_stop

suite_end
