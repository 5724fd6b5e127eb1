#!/usr/bin/env bash
# Proof of completeness, estimate and empty-destination against real servers
# started here (PostgreSQL, Dovecot, the Kafka-protocol broker):
#   - after a real migration the proof is exact, and its report says so;
#   - a destination changed behind mailshift's back (a message deleted, one's
#     flags changed, one appended, one copied twice, one whose internal date
#     was replaced) is named per message;
#   - a destination that refuses a keyword (Dovecot's mail_max_keyword_length)
#     gets the message without it, on both APPEND paths (MULTIAPPEND and
#     APPEND), recorded, shown by status and named by the proof;
#   - a final pass ends with a proof made by the coordinator's scheduler;
#   - the estimate's counts and bytes are the source's (read with imaplib);
#   - empty-destination refuses without the right confirmation or while the
#     account runs, empties with it, and a new pass copies everything again,
#     exactly once.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-proof-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19100}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

suite_start
# Both destinations refuse keywords longer than 20 characters (Dovecot's
# default is 50): a real server's refusal for the keyword fallback.
for conf in "$DST_CONF" "$DST2_CONF"; do
  echo "mail_max_keyword_length = 20" >>"$conf"
  kill -HUP "$(cat "$(dirname "$conf")/dovecot.pid")"
done
sleep 1
worker_start --id proof-w1 || { echo "0 passed, 1 failed"; exit 1; }

# imap PORT USER PASS ACTION [ARGS]: changes or reads a mailbox with imaplib,
# behind mailshift's back.
imap() {
  python3 - "$@" <<'PY'
import imaplib, re, sys, time
port, user, pw, action = sys.argv[1:5]
args = sys.argv[5:]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, pw)

def uids(folder):
    c.select('"%s"' % folder)
    typ, data = c.uid("SEARCH", None, "ALL")
    return [int(x) for x in data[0].split()]

def fetch(folder, uid, what):
    c.select('"%s"' % folder)
    typ, data = c.uid("FETCH", str(uid), what)
    return data

if action == "totals":
    # messages and bytes of every selectable folder but those named
    skip = set(args)
    msgs = size = 0
    typ, lines = c.list()
    for line in lines:
        line = line.decode()
        name = re.match(r'\((.*?)\) "(.*?)" (.*)$', line)
        flags, name = name.group(1), name.group(3).strip('"')
        if "\\Noselect" in flags or any(name == s or name.startswith(s + "/") for s in skip):
            continue
        typ, data = c.select('"%s"' % name, readonly=True)
        n = int(data[0])
        if n == 0:
            continue
        typ, data = c.fetch("1:*", "(RFC822.SIZE)")
        for d in data:
            m = re.search(rb"RFC822\.SIZE (\d+)", d if isinstance(d, bytes) else d[0])
            msgs += 1
            size += int(m.group(1))
    print(msgs, size)
elif action == "count":
    print(len(uids(args[0])))
elif action == "total":
    n = 0
    typ, lines = c.list()
    for line in lines:
        line = line.decode()
        if "\\Noselect" in line:
            continue
        name = re.match(r'\((.*?)\) "(.*?)" (.*)$', line).group(3).strip('"')
        typ, data = c.select('"%s"' % name, readonly=True)
        n += int(data[0])
    print(n)
elif action == "delete":  # FOLDER INDEX: the INDEX-th message (0-based)
    u = uids(args[0])[int(args[1])]
    c.uid("STORE", str(u), "+FLAGS.SILENT", "(\\Deleted)")
    c.expunge()
    print(u)
elif action == "flags":  # FOLDER INDEX FLAGS: replaces its flags
    u = uids(args[0])[int(args[1])]
    c.uid("STORE", str(u), "FLAGS.SILENT", "(%s)" % args[2])
    print(u)
elif action == "append":  # FOLDER TEXT
    c.append('"%s"' % args[0], None, imaplib.Time2Internaldate(time.time()),
             ("From: x@example.org\r\nSubject: %s\r\n\r\n%s\r\n" % (args[1], args[1])).encode())
elif action == "copy":  # FOLDER INDEX: a second copy of it (same flags and date)
    u = uids(args[0])[int(args[1])]
    data = fetch(args[0], u, "(FLAGS INTERNALDATE BODY.PEEK[])")
    meta = data[0][0].decode()
    flags = re.search(r"FLAGS \((.*?)\)", meta).group(1).replace("\\Recent", "").strip()
    date = re.search(r'INTERNALDATE "(.*?)"', meta).group(1)
    c.append('"%s"' % args[0], "(%s)" % flags, '"%s"' % date, data[0][1])
    print(u)
elif action == "redate":  # FOLDER INDEX: the message replaced by a copy dated now
    u = uids(args[0])[int(args[1])]
    data = fetch(args[0], u, "(FLAGS BODY.PEEK[])")
    meta = data[0][0].decode()
    flags = re.search(r"FLAGS \((.*?)\)", meta).group(1).replace("\\Recent", "").strip()
    c.append('"%s"' % args[0], "(%s)" % flags,
             imaplib.Time2Internaldate(time.time()), data[0][1])
    c.select('"%s"' % args[0])
    c.uid("STORE", str(u), "+FLAGS.SILENT", "(\\Deleted)")
    c.expunge()
    print(u)
elif action == "put":  # FOLDER FLAGS DATE SUBJECT: a message with these flags and date
    c.append('"%s"' % args[0], "(%s)" % args[1], '"%s"' % args[2],
             ("From: kw@example.org\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (args[3], args[3])).encode())
elif action == "mkfolder":  # NAME N: a new folder with N messages
    c.create('"%s"' % args[0])
    for n in range(int(args[1])):
        c.append('"%s"' % args[0], None, imaplib.Time2Internaldate(time.time()),
                 ("From: new@example.org\r\nSubject: new %d\r\n\r\nnew %d\r\n" % (n, n)).encode())
elif action == "addflag":  # FOLDER SUBJECT FLAG: adds FLAG to the message with that subject
    c.select('"%s"' % args[0])
    typ, data = c.uid("SEARCH", None, "SUBJECT", '"%s"' % args[1])
    for u in data[0].split():
        c.uid("STORE", u, "+FLAGS.SILENT", "(%s)" % args[2])
elif action == "flags_of":  # FOLDER SUBJECT: the flags of the message with that subject
    c.select('"%s"' % args[0], readonly=True)
    typ, data = c.uid("SEARCH", None, "SUBJECT", '"%s"' % args[1])
    for u in data[0].split():
        typ, f = c.uid("FETCH", u, "(FLAGS)")
        print(" ".join(sorted(re.search(rb"FLAGS \((.*?)\)", f[0]).group(1).decode().split())))
PY
}

# proof_has FILE KIND FOLDER SRCUID DSTUID: the JSON proof names that difference.
proof_has() {
  python3 - "$@" <<'PY'
import json, sys
path, kind, folder, su, du = sys.argv[1:]
p = json.load(open(path))
for a in p["accounts"]:
    for d in a["differences"]:
        if d["kind"] == kind and d["folder"] == folder and \
           (su == "-" or str(d["source_uid"]) == su) and (du == "-" or str(d["destination_uid"]) == du):
            sys.exit(0)
sys.exit(1)
PY
}
# proof_count FILE: the number of differences.
# wait_for SECS CMD...: until CMD succeeds.
wait_for() {
  local t=$(($1 * 5)); shift
  while ((t-- > 0)); do "$@" && return 0; sleep 0.2; done
  return 1
}
proof_count() {
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(sum(len(a["differences"]) for a in p["accounts"]))' "$1"
}

# --- a real migration, proven exact ------------------------------------------
add_users pf 1 SRC DST2
fill_corpus pf1 80
plan=$(make_plan proof "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"exclude\": [\"Junk\"]}" "$(server_json dst "$DST2_PORT" none)" \
  "pf1,pfpw1,pf1,pfpw1")
m=$(import_plan "$plan")

# The estimate before any pass: the source's own numbers.
"$COORD" estimate "$m" --json >"$work/estimate.json" 2>"$work/estimate.err"
check "estimate exits 0" test $? -eq 0
read -r want_msgs want_bytes < <(imap "$SRC_PORT" pf1 pfpw1 totals Junk)
got=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["messages"], e["bytes"])' "$work/estimate.json")
check "estimate: messages and bytes equal the source's without Junk ($want_msgs $want_bytes; got $got)" \
  test "$got" = "$want_msgs $want_bytes"
check "estimate: Junk is listed as excluded" python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
f = [f for f in e["accounts"][0]["folders"] if f["name"] == "Junk"]
sys.exit(0 if f and f[0]["excluded"] else 1)' "$work/estimate.json"
check "estimate: Dovecot offers STATUS=SIZE, so no folder was counted by FETCH" python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
sys.exit(0 if all(f["counted_by"] == "STATUS SIZE" for f in e["accounts"][0]["folders"]) else 1)' "$work/estimate.json"
# With a rate budget on the destination (100 kB/s), the ETA is its bytes at that rate.
sql "UPDATE servers SET rate_bytes = 100000 WHERE migration_id = $m AND role = 'destination'" >/dev/null
"$COORD" estimate "$m" --json >"$work/estimate-budget.json" 2>>"$work/estimate.err"
sql "UPDATE servers SET rate_bytes = 0 WHERE migration_id = $m" >/dev/null
check "estimate before any pass: the ETA from the budget ($((want_bytes / 100000)) s)" python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
sys.exit(0 if e["rate_source"] == "budget" and e["eta_seconds"] == int(int(sys.argv[2]) / 100000 + 0.5) else 1)' \
  "$work/estimate-budget.json" "$want_bytes"
"$COORD" estimate "$m" >"$work/estimate.txt" 2>&1
check "estimate in text names the total and Junk (excluded)" \
  bash -c "grep -q '^total: $want_msgs messages' '$work/estimate.txt' && grep -q 'Junk.*(excluded)' '$work/estimate.txt'"

check "pass 1 ends synced" run_pass "$m" 1
"$COORD" proof "$m" --out "$work/report" --json >"$work/proof1.json" 2>"$work/proof1.err"
check "proof after a real migration: exit 0 (exact)" test $? -eq 0
check "proof after a real migration: no difference" test "$(proof_count "$work/proof1.json")" = 0
check "the report file says complete" grep -q "Verdict: complete" "$work/report/proof-migration-$m.md"
check "the stored proof is exact" test "$(sql "SELECT exact FROM proofs p JOIN accounts a ON a.id = p.account_id WHERE a.migration_id = $m")" = t
check "estimate after a pass has a measured rate and an ETA" bash -c \
  "'$COORD' estimate '$m' --json | python3 -c 'import json,sys; e=json.load(sys.stdin); sys.exit(0 if e[\"rate_source\"] == \"measured\" and e[\"eta_seconds\"] is not None else 1)'"

# --- the destination changed behind mailshift's back ---------------------------
gone=$(imap "$DST2_PORT" pf1 pfpw1 delete INBOX 0)
gone_src=$(sql "SELECT u.src_start + ($gone - u.dst_start) FROM uid_map u JOIN folders f ON f.id = u.folder_id
  JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m AND f.dst_name = 'INBOX'
  AND $gone BETWEEN u.dst_start AND u.dst_start + u.len - 1")
reflagged=$(imap "$DST2_PORT" pf1 pfpw1 flags INBOX 1 '\Answered $Changed')
imap "$DST2_PORT" pf1 pfpw1 append INBOX "an extra message" >/dev/null
doubled=$(imap "$DST2_PORT" pf1 pfpw1 copy INBOX 2)
redated=$(imap "$DST2_PORT" pf1 pfpw1 redate INBOX 3)
"$COORD" proof "$m" --out "$work/report" --json >"$work/proof2.json" 2>"$work/proof2.err"
check "proof of a changed destination: exit 1 (not exact)" test $? -eq 1
check "the deleted message is missing (source UID $gone_src)" proof_has "$work/proof2.json" missing INBOX "$gone_src" -
check "the reflagged message has its flags named (destination UID $reflagged)" proof_has "$work/proof2.json" flags INBOX - "$reflagged"
check "the appended message is extra" proof_has "$work/proof2.json" extra INBOX - -
check "the second copy is a duplicate" proof_has "$work/proof2.json" duplicate INBOX - -
check "the redated message is internal_date_replaced" proof_has "$work/proof2.json" internal_date_replaced INBOX - -
check "exactly those five differences" test "$(proof_count "$work/proof2.json")" = 5
check "the report file says not exact and lists them" bash -c \
  "grep -q 'not exact' '$work/report/proof-migration-$m.md' && grep -q 'internal_date_replaced' '$work/report/proof-migration-$m.md'"
check "the CSV has a row per difference" test "$(($(wc -l <"$work/report/proof-migration-$m.csv") - 1))" = 5

# --- empty-destination ---------------------------------------------------------
"$COORD" empty-destination "$m" pf1 >"$work/empty0.out" 2>&1
check "empty-destination without --confirm is refused" test $? -ne 0
"$COORD" empty-destination "$m" pf1 --confirm someone-else >"$work/empty1.out" 2>&1
check "empty-destination with a wrong confirmation is refused" test $? -ne 0
check "... and nothing was deleted" test "$(imap "$DST2_PORT" pf1 pfpw1 total)" -gt 0
sql "UPDATE accounts SET state = 'running' WHERE migration_id = $m" >/dev/null
"$COORD" empty-destination "$m" pf1 --confirm pf1 >"$work/empty2.out" 2>&1
rc=$?
sql "UPDATE accounts SET state = 'synced' WHERE migration_id = $m" >/dev/null
check "empty-destination while the account runs is refused" test $rc -ne 0
check "... saying it runs" grep -q "running" "$work/empty2.out"
"$COORD" empty-destination "$m" pf1 --confirm pf1 >"$work/empty3.out" 2>&1
check "empty-destination with the destination login: exit 0" test $? -eq 0
check "the destination holds no message" test "$(imap "$DST2_PORT" pf1 pfpw1 total)" = 0
check "the account's checkpoints are gone" test "$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m")" = 0
check "the account history records it" bash -c \
  "test \"\$(psql '$MAILSHIFT_DB' -qAt -c \"SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id WHERE a.migration_id = $m AND l.reason LIKE 'destination emptied by cli%'\")\" = 1"
check "pass 2 after emptying ends synced" run_pass "$m" 2
check "the destination is exact again, no duplicates" \
  verify pf1:pfpw1 "$DST2_PORT" pf1:pfpw1 --account emptied --exclude Junk --strict
check "the proof is exact again" "$COORD" proof "$m"
# A folder created on the source since the last pass is not on the
# destination: the proof says so, message by message.
imap "$SRC_PORT" pf1 pfpw1 mkfolder Later 2
"$COORD" proof "$m" --json >"$work/proof3.json" 2>"$work/proof3.err"
check "a source folder not copied yet: not exact" test $? -eq 1
check "... its two messages named missing" bash -c \
  "test \"\$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(sum(1 for d in p[\"accounts\"][0][\"differences\"] if d[\"kind\"] == \"missing\" and d[\"folder\"] == \"Later\"))' '$work/proof3.json')\" = 2"
check "pass 3 copies it" run_pass "$m" 3
check "the proof is exact after pass 3" "$COORD" proof "$m"

# --- folders merged by rule, date and size filters ----------------------------
# Old Projects is merged into INBOX (the account's folder_map); only mail from
# 2002-08-01 on and none over 20000 bytes is copied: none of it is a difference.
add_users rf 1 SRC DST2
fill_corpus rf1 400
plan=$(make_plan rules "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"since\": \"2002-08-01\", \"max_message_size\": 20000}" \
  "$(server_json dst "$DST2_PORT" none)")
printf 'source_login,source_password,destination_login,destination_password,folder_map\n%s\n' \
  'rf1,rfpw1,rf1,rfpw1,Old Projects=INBOX' >"$work/rules/accounts.csv"
m_rf=$(import_plan "$plan")
"$COORD" estimate "$m_rf" --json >"$work/rf-estimate.json" 2>>"$work/estimate.err"
check "rules and filters: pass 1 ends synced" run_pass "$m_rf" 1
"$COORD" proof "$m_rf" --json >"$work/rf-proof.json" 2>"$work/rf-proof.err"
check "rules and filters: the proof is exact (exit 0)" test $? -eq 0
check "rules and filters: the merged folders and the filtered messages are accounted for" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["accounts"][0]
names = {f["name"]: f for f in a["folders"]}
ok = names["Old Projects"]["destination_name"] == "INBOX" and names["INBOX"]["destination_name"] == "INBOX" and names["Old Projects"]["source"] > 0
ok = ok and sum(f.get("filtered", 0) for f in a["folders"]) > 0 and not a["differences"]
sys.exit(0 if ok else 1)' "$work/rf-proof.json"
rf_copied=$(sql "SELECT sum(f.copied_messages + f.matched_messages) FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_rf")
check "rules and filters: the estimate counts what the filters let through ($rf_copied copied)" \
  test "${rf_copied:-0}" -gt 0 -a "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"])' "$work/rf-estimate.json")" = "$rf_copied"

# --- a destination that replaces an internal date it does not like -----------
# Dovecot stores a far-future INTERNALDATE given in an APPEND as the time of
# the copy; the source (a maildir: the file's mtime) keeps 2040.
add_users dt 1 SRC DST2
python3 - "$SRC_DIR/mail/dt1/Maildir" <<'PY'
import calendar, os, sys, time
root = sys.argv[1]
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
owner = os.stat(os.path.dirname(os.path.dirname(root)))
for d in (os.path.dirname(root), root, *(os.path.join(root, s) for s in ("cur", "new", "tmp"))):
    os.chown(d, owner.st_uid, owner.st_gid)
for n, (subject, year) in enumerate((("dated now", 2020), ("dated 2040", 2040))):
    p = os.path.join(root, "cur", "%d.dt%d.test:2,S" % (int(time.time()), n))
    with open(p, "wb") as f:
        f.write(b"From: dt@example.org\r\nSubject: %s\r\n\r\nbody %d\r\n" % (subject.encode(), n))
    os.chown(p, owner.st_uid, owner.st_gid)
    t = calendar.timegm((year, 6, 1, 12, 0, 0))
    os.utime(p, (t, t))
PY
plan=$(make_plan dates "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "dt1,dtpw1,dt1,dtpw1")
m_dt=$(import_plan "$plan")
check "dates: pass 1 ends synced" run_pass "$m_dt" 1
"$COORD" proof "$m_dt" --json >"$work/dtproof.json" 2>/dev/null
check "dates: the proof is not exact" test "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exact"])' "$work/dtproof.json")" = False
check "dates: exactly one difference, the 2040 message's internal_date_replaced" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["accounts"][0]
d = a["differences"]
sys.exit(0 if len(d) == 1 and d[0]["kind"] == "internal_date_replaced" and
         d[0]["source"] == "01-Jun-2040 12:00:00 +0000" and "2040" not in d[0]["destination"] and
         a["folders"][0]["source"] == 2 and a["folders"][0]["destination"] == 2 else 1)' "$work/dtproof.json"

# --- keywords the destination refuses, on both APPEND paths -------------------
long_kw=ThisKeywordIsFarTooLongForIt
add_users kw 2 SRC DST DST2
for u in kw1 kw2; do
  imap "$SRC_PORT" "$u" "${u/kw/kwpw}" put INBOX '\Seen' "01-Jan-2020 10:00:00 +0000" plain
  imap "$SRC_PORT" "$u" "${u/kw/kwpw}" put INBOX "\\Flagged \$Short $long_kw" "02-Jan-2020 10:00:00 +0000" kwlong
  imap "$SRC_PORT" "$u" "${u/kw/kwpw}" put INBOX '$Label1' "03-Jan-2020 10:00:00 +0000" kwok
done
# kw1: Dovecot with MULTIAPPEND (pipelined MULTIAPPENDs, piped.c); kw2: without
# (APPENDs, batch.c).
plan=$(make_plan kwmulti "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "kw1,kwpw1,kw1,kwpw1")
m_kw1=$(import_plan "$plan")
plan=$(make_plan kwplain "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "kw2,kwpw2,kw2,kwpw2")
m_kw2=$(import_plan "$plan")
for n in 1 2; do
  port_var=$([[ $n == 1 ]] && echo DST_PORT || echo DST2_PORT)
  mk=m_kw$n
  check "kw$n: pass 1 ends synced" run_pass "${!mk}" 1
  check "kw$n: the refused message is on the destination without the long keyword" \
    test "$(imap "${!port_var}" "kw$n" "kwpw$n" flags_of INBOX kwlong)" = '$Short \Flagged'
  check "kw$n: all three messages are on the destination" \
    test "$(imap "${!port_var}" "kw$n" "kwpw$n" count INBOX)" = 3
  check "kw$n: no message error" test "$(sql "SELECT count(*) FROM message_errors e JOIN accounts a ON a.id = e.account_id WHERE a.migration_id = ${!mk}")" = 0
  check "kw$n: the dropped keyword is recorded with the server's words" \
    test "$(sql "SELECT k.keywords FROM keywords_dropped k JOIN folders f ON f.id = k.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = ${!mk} AND k.error <> ''")" = "$long_kw"
  "$COORD" status "${!mk}" "kw$n" >"$work/kwstatus$n.out" 2>&1
  check "kw$n: status shows it" grep -q "copied without the keywords $long_kw" "$work/kwstatus$n.out"
  # The final pass ends with a proof made by the scheduler ('final').
  "$COORD" delta "${!mk}" --final >>"$work/coordinator.log" 2>&1
  check "kw$n: the final pass ends synced" "$COORD" wait "${!mk}" 2 120
  final_proof() { test "$(sql "SELECT p.trigger FROM proofs p JOIN accounts a ON a.id = p.account_id WHERE a.migration_id = ${!mk}")" = final; }
  check "kw$n: the end of the final pass made a proof" wait_for 60 final_proof
  check "kw$n: that proof names the message as keywords_dropped and only that" \
    test "$(sql "SELECT exact, changed, missing, extra, report->'differences'->0->>'kind' FROM proofs p JOIN accounts a ON a.id = p.account_id WHERE a.migration_id = ${!mk}")" = "f|1|0|0|keywords_dropped"
  "$COORD" proof "${!mk}" --json >"$work/kwproof$n.json" 2>/dev/null
  check "kw$n: proof on demand names it too" proof_has "$work/kwproof$n.json" keywords_dropped INBOX - -
  # Later flag changes are carried without asking for the refused keyword
  # again (the destination would refuse the whole STORE).
  imap "$SRC_PORT" "kw$n" "kwpw$n" addflag INBOX kwlong '\Seen'
  "$COORD" delta "${!mk}" >>"$work/coordinator.log" 2>&1
  check "kw$n: a delta pass after a flag change on the source ends synced" "$COORD" wait "${!mk}" 3 120
  check "kw$n: the new flag is carried, the refused keyword is not" \
    test "$(imap "${!port_var}" "kw$n" "kwpw$n" flags_of INBOX kwlong)" = '$Short \Flagged \Seen'
  check "kw$n: no folder error" test "$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = ${!mk} AND f.error IS NOT NULL")" = 0
done
check "kw1 went through MULTIAPPEND refused whole, then one by one" \
  grep -q "MULTIAPPEND of .* refused (.*Keyword length too long" "$work"/worker.*.log

suite_end
