#!/usr/bin/env bash
# End-to-end tests of the copy engine against real servers started here: two
# Dovecot destinations (with and without MULTIAPPEND, '.' and '/' delimiters),
# a Dovecot source filled from the SpamAssassin corpus, PostgreSQL and the
# Kafka-protocol broker.  Every result is checked by tests/infra/verify.py,
# which reads both servers over IMAP on its own: per folder the multiset of
# (message hash, flags, internal date): 0 missing, 0 duplicated, 0 changed.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-18300}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"
odd=$repo/tests/integration/oddcases.py

suite_start

# --- the corpus account: pass 1, no-op pass, delta pass --------------------
add_user SRC alice alicepw
add_user DST alice dstpw
fill_corpus alice
state "$SRC_PORT" alice:alicepw >"$work/src-before.json"

plan=$(make_plan corpus "$(server_json src "$SRC_PORT" starttls "$MAILSHIFT_CA_FILE")" \
  "$(server_json dst "$DST_TLS_PORT" implicit "$MAILSHIFT_CA_FILE")" "alice,alicepw,alice,dstpw")
m_corpus=$(import_plan "$plan")
worker_start || { echo "0 passed, 1 failed"; exit 1; }

check "pass 1 of the corpus account (STARTTLS source, TLS destination) ends synced" \
  run_pass "$m_corpus" 1
check "corpus copied exactly: 6,046 messages, flags and internal dates (MULTIAPPEND destination)" \
  verify alice:alicepw "$DST_PORT" alice:dstpw --account corpus-pass1

state "$SRC_PORT" alice:alicepw >"$work/src-after1.json"
state "$DST_PORT" alice:dstpw >"$work/dst-after1.json"
check "pass 2 with nothing new ends synced" run_pass "$m_corpus" 2
state "$SRC_PORT" alice:alicepw >"$work/src-after2.json"
state "$DST_PORT" alice:dstpw >"$work/dst-after2.json"
check "no-op pass touches nothing on the destination (flags, UIDs, HIGHESTMODSEQ unchanged)" \
  cmp -s "$work/dst-after1.json" "$work/dst-after2.json"
check "the source is unchanged by two passes (flags and modseqs before = after)" \
  cmp -s "$work/src-before.json" "$work/src-after2.json"
copied=$(sql "SELECT sum(copied_messages) FROM folders f JOIN accounts a ON a.id = f.account_id
              WHERE a.migration_id = $m_corpus")
check "no-op pass copied nothing (6046 messages copied in all, got $copied)" test "$copied" = 6046

python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:alice:alicepw" append INBOX 200 \
  --corpus "$corpus" --seed 11 >/dev/null
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:alice:alicepw" flags INBOX 500 --seed 11 >/dev/null
check "delta pass after 200 new messages and 500 flag changes ends synced" run_pass "$m_corpus" 3
check "delta pass: destination exact again (new messages and flag changes arrived)" \
  verify alice:alicepw "$DST_PORT" alice:dstpw --account corpus-delta
copied=$(sql "SELECT sum(copied_messages) FROM folders f JOIN accounts a ON a.id = f.account_id
              WHERE a.migration_id = $m_corpus")
check "delta pass copied exactly the 200 new messages (6246 in all, got $copied)" \
  test "$copied" = 6246

# --- UIDVALIDITY change on the source between passes ------------------------
doveadm -c "$SRC_CONF" mailbox update -u alice --uid-validity 4242 Archive/2002
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:alice:alicepw" append Archive/2002 5 \
  --corpus "$corpus" --seed 12 >/dev/null
check "pass after a source UIDVALIDITY change ends synced" run_pass "$m_corpus" 4
check "UIDVALIDITY change: re-matched by content, no duplicates, nothing lost" \
  verify alice:alicepw "$DST_PORT" alice:dstpw --account uidvalidity
copied=$(sql "SELECT copied_messages FROM folders f JOIN accounts a ON a.id = f.account_id
              WHERE a.migration_id = $m_corpus AND f.src_name = 'Archive/2002'")
check "UIDVALIDITY change: only the 5 new messages appended (1192 + 5 copied, got $copied)" \
  test "$copied" = 1197

# --- a source without CONDSTORE: flag changes found by a full compare -------
# The proxy hides CONDSTORE and QRESYNC from every capability list of the real
# source, as a server without them would: no HIGHESTMODSEQ, no CHANGEDSINCE, so
# every pass compares the flags of all copied messages with their copies.
add_user SRC nocs nocspw
add_user DST2 nocs nocspw
fill_corpus nocs 400
serve nocs-proxy python3 "$infra/throttle_proxy.py" --port 0 --upstream "$SRC_PORT" \
  --hide-caps CONDSTORE,QRESYNC --log "$work/nocs.faults"
nocs_proxy_pid=$served_pid nocs_port=$served_port
plan=$(make_plan nocs "$(server_json src "${nocs_port:-0}" none)" \
  "$(server_json dst "$DST2_PORT" none)" "nocs,nocspw,nocs,nocspw")
m_nocs=$(import_plan "$plan")
check "source without CONDSTORE: pass 1 ends synced" run_pass "$m_nocs" 1
check "source without CONDSTORE: pass 1 exact" \
  verify nocs:nocspw "$DST2_PORT" nocs:nocspw --account nocs-pass1
state "$SRC_PORT" nocs:nocspw >"$work/nocs-before.json"
for folder in INBOX Junk; do
  python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:nocs:nocspw" flags "$folder" 40 --seed 21 \
    >/dev/null
done
state "$SRC_PORT" nocs:nocspw >"$work/nocs-after.json"
# Messages whose flags really changed (adding $Work where it is already set
# changes nothing): exactly those must be updated on the destination.
changed=$(python3 -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
print(sum(m[0] != b[f]["messages"][u][0] for f in a for u, m in a[f]["messages"].items()))' \
  "$work/nocs-before.json" "$work/nocs-after.json")
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:nocs:nocspw" append INBOX 10 \
  --corpus "$corpus" --seed 21 >/dev/null
check "source without CONDSTORE: delta pass after 80 flag changes and 10 new messages ends synced" \
  run_pass "$m_nocs" 2
check "source without CONDSTORE: flag changes and new messages arrived, exact" \
  verify nocs:nocspw "$DST2_PORT" nocs:nocspw --account nocs-delta
updates=$(sql "SELECT substring(reason FROM ', ([0-9]+) flag updates') FROM account_log
               WHERE account_id = (SELECT id FROM accounts WHERE migration_id = $m_nocs)
               AND to_state = 'synced' ORDER BY id DESC LIMIT 1")
modseqs=$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
               WHERE a.migration_id = $m_nocs AND f.highest_modseq <> 0")
check "source without CONDSTORE: never seen by the worker (hidden $(grep -c hide "$work/nocs.faults") times, $modseqs modseqs kept)" \
  test "$(grep -c "hide CONDSTORE QRESYNC" "$work/nocs.faults")" -gt 0 -a "$modseqs" = 0
check "source without CONDSTORE: the full compare updated the $changed changed messages only (${updates:-no} flag updates)" \
  test "${updates:--1}" = "$changed" -a "$changed" -gt 0
kill "$nocs_proxy_pid" 2>/dev/null
wait "$nocs_proxy_pid" 2>/dev/null

# --- destination without MULTIAPPEND, '/' delimiter -------------------------
add_user DST2 alice2 dst2pw
plan=$(make_plan nomulti "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "alice,alicepw,alice2,dst2pw")
m_nomulti=$(import_plan "$plan")
check "destination without MULTIAPPEND does not advertise it" \
  bash -c "python3 -c \"import imaplib; c=imaplib.IMAP4('127.0.0.1', $DST2_PORT); c.login('alice2','dst2pw'); \
    import sys; sys.exit('MULTIAPPEND' in c.capabilities)\""
check "pass 1 to the destination without MULTIAPPEND ends synced" run_pass "$m_nomulti" 1
check "copied exactly through pipelined LITERAL+ APPENDs" \
  verify alice:alicepw "$DST2_PORT" alice2:dst2pw --account nomulti

# --- destination connections dropped in the middle of batches ---------------
add_user DST2 kick kickpw
plan=$(make_plan kick "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "alice,alicepw,kick,kickpw")
m_kick=$(import_plan "$plan")
kick_log_from=$(($(stat -c %s "$worker_log") + 1))
"$COORD" pass "$m_kick" 1 2>>"$work/coordinator.log"
kicked=0
for delay in 1.5 1.5; do
  sleep "$delay"
  # doveadm kick closes the user's IMAP connections at once, APPENDs in flight.
  out=$(doveadm -c "$DST2_CONF" kick kick 2>&1) && [[ $out == *kick* ]] && kicked=$((kicked + 1))
done
"$COORD" wait "$m_kick" 1 300 >/dev/null 2>>"$work/coordinator.log"
check "destination connections dropped $kicked times during pass 1; the pass still ends synced" \
  test "$kicked" -ge 1 -a "$(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_kick")" = 1
check "after reconnecting, interrupted batches were re-matched: copy exact, no duplicates" \
  verify alice:alicepw "$DST2_PORT" kick:kickpw --account kick
check "the worker saw the drops and reconnected" \
  bash -c "tail -c +$kick_log_from '$worker_log' | grep -q reconnecting"

# --- excluded folders --------------------------------------------------------
add_user DST2 excl exclpw
plan=$(make_plan excl "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"exclude\": [\"Junk\", \"Archive\"]}" "$(server_json dst "$DST2_PORT" none)" \
  "alice,alicepw,excl,exclpw")
m_excl=$(import_plan "$plan")
check "pass with excluded folders (Junk, and Archive with its children) ends synced" \
  run_pass "$m_excl" 1
check "the other folders are exact" verify alice:alicepw "$DST2_PORT" excl:exclpw --account excl \
  --exclude Junk --exclude Archive/2002
excluded_absent() { ! dst_has_folder "$DST2_PORT" excl exclpw Junk && ! dst_has_folder "$DST2_PORT" excl exclpw Archive/2002; }
check "excluded folders were neither created nor copied" excluded_absent

# --- folder renames and merges by rule --------------------------------------
# The profile renames by folder and by regular expression; the account's own
# folder_map (CSV) comes first and merges Old Projects into INBOX.
add_user DST2 rules rulespw
plan=$(make_plan rules "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"folder_rules\": [{\"folder\": \"Old Projects\", \"to\": \"Projects/Old\"},
  {\"regex\": \"Archive/([0-9]+)\", \"to\": \"Archives/Year \\\\1\"}]}" \
  "$(server_json dst "$DST2_PORT" none)")
printf 'source_login,source_password,destination_login,destination_password,folder_map\n%s\n' \
  'alice,alicepw,rules,rulespw,Junk=Spam;Old Projects=INBOX' >"$work/rules/accounts.csv"
m_rules=$(import_plan "$plan")
rules_map=(--map "Old Projects=INBOX" --map "Junk=Spam" --map "Archive/2002=Archives/Year 2002")
check "rules: pass ends synced" run_pass "$m_rules" 1
check "rules: renamed (Spam, Archives/Year 2002) and merged (Old Projects into INBOX), exact" \
  verify alice:alicepw "$DST2_PORT" rules:rulespw --account rules "${rules_map[@]}" --strict
rules_absent() { dst_has_folder "$DST2_PORT" rules rulespw Spam &&
  dst_has_folder "$DST2_PORT" rules rulespw "Archives/Year 2002" &&
  ! dst_has_folder "$DST2_PORT" rules rulespw Junk &&
  ! dst_has_folder "$DST2_PORT" rules rulespw "Old Projects" &&
  ! dst_has_folder "$DST2_PORT" rules rulespw "Projects/Old"; }
check "rules: the new names exist, the old ones not; the account's rule beat the profile's" \
  rules_absent
# A re-run that has lost its checkpoints matches by content; each merged
# folder finds only its own copies, not the other's.
sql "DELETE FROM folders f USING accounts a WHERE a.id = f.account_id AND a.migration_id = $m_rules"
check "rules: a re-run without checkpoints ends synced" run_pass "$m_rules" 2
check "rules: after the re-run, still exact, no duplicate in the merged INBOX" \
  verify alice:alicepw "$DST2_PORT" rules:rulespw --account rules "${rules_map[@]}" --strict
plan=$(make_plan badrule "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"folder_rules\": [{\"regex\": \"Archive/(\", \"to\": \"x\"}]}" \
  "$(server_json dst "$DST2_PORT" none)" "alice,alicepw,rules,rulespw")
out=$("$COORD" import "$plan" 2>&1); rc=$?
check "rules: a bad regular expression is refused at import, naming it (exit $rc)" \
  eval '[[ $rc -ne 0 && $out == *"source.folder_rules: folder rule 1: regular expression"* ]]'

# --- date and size filters -------------------------------------------------
# Only mail from 2002-10-01 on and none over 20000 bytes; the rest is counted
# as filtered, and what the size filter left out is named with the reason.
add_user DST2 filt filtpw
plan=$(make_plan filt "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"since\": \"2002-10-01\", \"max_message_size\": 20000}" \
  "$(server_json dst "$DST2_PORT" none)" "alice,alicepw,filt,filtpw")
m_filt=$(import_plan "$plan")
check "filters: pass ends synced" run_pass "$m_filt" 1
verify alice:alicepw "$DST2_PORT" filt:filtpw --account filt --since 2002-10-01 --max-size 20000 \
  --strict >"$work/filt.out" 2>&1
filt_expected=$(sed -n 's/.*, \([0-9]*\) filtered$/\1/p' "$work/filt.out")
filt_counted=$(sql "SELECT sum(f.filtered_messages) FROM folders f JOIN accounts a ON a.id = f.account_id
                    WHERE a.migration_id = $m_filt")
check "filters: exactly the messages in range copied ($(head -1 "$work/filt.out"))" \
  eval '[[ $(head -1 "$work/filt.out") == *" 0 missing, 0 duplicated, 0 changed, "[0-9]*" filtered" ]] &&
        [[ $(head -1 "$work/filt.out") != *" 0 messages compared"* && ${filt_expected:-0} -gt 0 ]]'
check "filters: the rest counted as filtered once each ($filt_counted of $filt_expected)" \
  test "$filt_counted" = "$filt_expected"
big_expected=$(python3 - "$SRC_PORT" <<'PY'
import imaplib, re, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); c.login("alice", "alicepw")
n = 0
for _, name in [(0, "INBOX"), (0, "Archive/2002"), (0, "Old Projects"), (0, "Junk")]:
    c.select('"%s"' % name, readonly=True)
    typ, data = c.uid("FETCH", "1:*", "(RFC822.SIZE)")
    n += sum(1 for d in data if d and int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) > 20000)
print(n)
PY
)
big_named=$(sql "SELECT count(*) FROM message_skips s JOIN accounts a ON a.id = s.account_id
                 WHERE a.migration_id = $m_filt AND s.reason LIKE '%larger than the source''s max_message_size of 20000 bytes'")
check "filters: each message over the size named with the reason ($big_named of $big_expected)" \
  eval '[[ $big_named == "$big_expected" && $big_expected -gt 0 ]]'
"$COORD" status "$m_filt" >"$work/filt-status.out" 2>&1
check "filters: status shows what the filters left out" \
  grep -q "left out by the source's filters $filt_expected" "$work/filt-status.out"
check "filters: a second pass copies nothing more and counts nothing twice" \
  eval 'run_pass "$m_filt" 2 && test "$(sql "SELECT sum(f.filtered_messages) FROM folders f
    JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_filt")" = "$filt_expected" &&
    verify alice:alicepw "$DST2_PORT" filt:filtpw --account filt --since 2002-10-01 --max-size 20000 --strict'
plan=$(make_plan badsince "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"since\": \"2002-02-30\"}" "$(server_json dst "$DST2_PORT" none)" \
  "alice,alicepw,filt,filtpw")
out=$("$COORD" import "$plan" 2>&1); rc=$?
check "filters: an impossible date is refused at import, naming it (exit $rc)" \
  eval '[[ $rc -ne 0 && $out == *"source.since: must be a date"* ]]'

# --- odd folder names and odd messages, both destinations -------------------
add_user SRC odd oddpw
add_user DST odd oddpw
add_user DST2 odd oddpw
python3 "$odd" "127.0.0.1:$SRC_PORT:odd:oddpw" folders >/dev/null
python3 "$odd" "127.0.0.1:$SRC_PORT:odd:oddpw" messages INBOX >/dev/null
plan=$(make_plan odd1 "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "odd,oddpw,odd,oddpw")
m_odd1=$(import_plan "$plan")
plan=$(make_plan odd2 "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "odd,oddpw,odd,oddpw")
m_odd2=$(import_plan "$plan")
run_odd() { run_pass "$m_odd1" 1 && run_pass "$m_odd2" 1; }
check "odd folder names and messages: both passes end synced" run_odd
check "non-ASCII, '&', spaces, deep nesting to a '.' destination: exact" \
  verify odd:oddpw "$DST_PORT" odd:oddpw --account odd-dot
check "same to a '/' destination: exact" verify odd:oddpw "$DST2_PORT" odd:oddpw --account odd-slash
check "'Café/Ünïcode' arrived as 'Café.Ünïcode' (modified UTF-7 kept)" \
  dst_has_folder "$DST_PORT" odd oddpw 'Caf&AOk-.&ANw-n&AO8-code'

# --- a message larger than the destination accepts --------------------------
add_user SRC big bigpw
add_user DST big bigpw
python3 "$odd" "127.0.0.1:$SRC_PORT:big:bigpw" big 6 >/dev/null
plan=$(make_plan big "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "big,bigpw,big,bigpw")
m_big=$(import_plan "$plan")
check "an account with one oversized message still ends synced" run_pass "$m_big" 1
verify big:bigpw "$DST_PORT" big:bigpw --account big >"$work/big.out" 2>&1
check "only the oversized message is missing ($(head -1 "$work/big.out"))" \
  grep -q "3 messages compared: 1 missing, 0 duplicated, 0 changed" "$work/big.out"
err=$(sql "SELECT src_uid || ': ' || error FROM message_errors e JOIN accounts a ON a.id = e.account_id
           WHERE a.migration_id = $m_big")
check "the refusal is recorded with the server's words ($err)" \
  grep -q "^2: .*Mail size is larger than the maximum size" <<<"$err"

# --- wrong password: that account only --------------------------------------
add_user SRC good goodpw
add_user DST good goodpw
fill_corpus good 300
plan=$(make_plan auth "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "good,goodpw,good,goodpw" "odd,WRONG-PASSWORD,odd,oddpw")
m_auth=$(import_plan "$plan")
PASS_TIMEOUT=120 run_pass "$m_auth" 1 >"$work/auth.out" 2>&1
check "wrong password: the credential check found it and the pass left it out" \
  grep -q "auth_failed .*source: AUTHENTICATE PLAIN refused.*Authentication failed" "$work/verify.log"
check "wrong password: that account is auth_failed with the server's answer" \
  test "$(sql "SELECT state || ' ' || (last_error LIKE '%Authentication failed%')
                FROM accounts WHERE migration_id = $m_auth AND src_login = 'odd'")" = "auth_failed true"
check "wrong password: the other account is synced and exact" \
  verify good:goodpw "$DST_PORT" good:goodpw --account good
check "the password appears in no log" \
  bash -c "! grep -rq WRONG-PASSWORD $work/*.log $work/auth.out"

# --- status of one account: by source login or by id -------------------------
status_one() { "$COORD" status "$m_auth" "$1" 2>>"$work/coordinator.log"; }
status_unknown_fails() { ! status_one nobody; }
good_id=$(sql "SELECT id FROM accounts WHERE migration_id = $m_auth AND src_login = 'good'")
check "status M LOGIN prints that account's line only (odd: auth_failed)" \
  test "$(status_one odd | awk '{ print NR, $3, $4 }')" = "1 odd auth_failed"
check "status M ID prints the account with that id (good: synced)" \
  test "$(status_one "$good_id" | awk '{ print NR, $3, $4 }')" = "1 good synced"
check "status M ACCOUNT fails for an account not in the migration" status_unknown_fails

# --- a bad CSV: every error with its line and column, nothing imported --------
before=$(sql "SELECT (SELECT count(*) FROM migrations) || '/' || (SELECT count(*) FROM accounts)")
plan=$(make_plan badcsv "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "good,goodpw,good,goodpw" "odd,,odd,oddpw" "good,pw2,good9,pw" "big,bigpw,big,bigpw,x")
printf 'source_login,source_password,destination_login,destination_password,priority\n%s\n%s\n%s\n%s\n%s\n' \
  "good,goodpw,good,goodpw,5" "odd,,odd,oddpw,5" "GOOD,pw2,good9,pw,5" "big,bigpw,big,bigpw,high" \
  '"unterminated,pw,x,y,1' >"$work/badcsv/accounts.csv"
"$COORD" import "$plan" >"$work/badcsv.out" 2>&1
badcsv_rc=$?
after=$(sql "SELECT (SELECT count(*) FROM migrations) || '/' || (SELECT count(*) FROM accounts)")
check "bad CSV refused (exit $badcsv_rc), database unchanged ($before -> $after)" \
  test "$badcsv_rc" != 0 -a "$before" = "$after"
check "bad CSV: empty password named by line and column" \
  grep -q "accounts.csv:3: column 2 (source_password): empty" "$work/badcsv.out"
check "bad CSV: duplicate login named with both lines" grep -q "accounts.csv:4:.*duplicate of line 2" "$work/badcsv.out"
check "bad CSV: bad priority named" grep -q "accounts.csv:5: column 5 (priority)" "$work/badcsv.out"
check "bad CSV: unterminated quote named" grep -qi "accounts.csv:6:.*quote" "$work/badcsv.out"
check "bad CSV: no password in the error text" bash -c "! grep -q 'goodpw\|bigpw\|pw2' $work/badcsv.out"

# --- five accounts with wrong credentials among eight ------------------------
add_users w 8 SRC DST
for i in 1 2 3 4 5 6 7 8; do
  fill_corpus "w$i" 40
done
plan=$(make_plan wrong5 "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "w1,nope,w1,wpw1" "w2,wpw2,w2,nope" "w3,nope,w3,wpw3" "w4,wpw4,w4,wpw4" "w5,nope,w5,nope" \
  "w6,wpw6,w6,wpw6" "w7,nope,w7,wpw7" "w8,wpw8,w8,wpw8")
m_wrong5=$(import_plan "$plan")
check "5 wrong credentials: those 5 auth_failed with the server's text" \
  test "$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m_wrong5 AND state = 'auth_failed'
               AND last_error LIKE '%Authentication failed%'")" = 5
check "5 wrong credentials: the other 3 migrate" run_pass "$m_wrong5" 1
wrong5_exact() {
  local u
  for u in w4 w6 w8; do verify "$u:wpw${u#w}" "$DST_PORT" "$u:wpw${u#w}" --account "$u" || return 1; done
}
check "5 wrong credentials: the 3 good accounts exact" wrong5_exact

# --- admin (master user) login and XOAUTH2 on the source --------------------
add_user DST good2 good2pw
add_user DST good3 good3pw
plan=$(make_plan master "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"master_user\": \"admin\", \"master_password\": \"adminpw\"}" \
  "$(server_json dst "$DST_PORT" none)" "good,not-the-user-password,good2,good2pw")
m_master=$(import_plan "$plan")
# Dovecot's test passdb takes the user's password as the bearer token.
plan=$(make_plan oauth "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"xoauth2\"}" "$(server_json dst "$DST_PORT" none)" "good,goodpw,good3,good3pw")
m_oauth=$(import_plan "$plan")
check "master user: PLAIN with admin credentials and the user as authorization identity" \
  run_pass "$m_master" 1
check "master user: copy exact" verify good:goodpw "$DST_PORT" good2:good2pw --account master
check "XOAUTH2 bearer token login ends synced" run_pass "$m_oauth" 1
check "XOAUTH2: copy exact" verify good:goodpw "$DST_PORT" good3:good3pw --account oauth

# --- TLS: a self-signed server certificate is refused without its CA --------
plan=$(make_plan tls "$(server_json src "$SRC_TLS_PORT" implicit)" "$(server_json dst "$DST_PORT" none)" \
  "good,goodpw,good,goodpw")
m_tls=$(import_plan "$plan")
check "self-signed certificate refused without its CA file (found by the credential check)" \
  test "$(sql "SELECT state || ' ' || (last_error LIKE '%certificate%refused%')
                FROM accounts WHERE migration_id = $m_tls")" = "verify_failed true"
worker_stop

# --- a 64 MB message with 1 MB batches: streamed, memory stays bounded ------
# Peak memory is read from the release build's worker: ASan's quarantine keeps
# freed chunks resident, so the sanitized worker's RSS says nothing here.
add_user SRC huge hugepw
add_user DST2 huge hugepw
python3 "$odd" "127.0.0.1:$SRC_PORT:huge:hugepw" big 64 >/dev/null
plan=$(make_plan huge "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "huge,hugepw,huge,hugepw")
m_huge=$(import_plan "$plan")
release_worker=${MAILSHIFT_RELEASE_BUILD:-$repo/build}/worker/mailshift-worker
if [[ -x $release_worker ]]; then
  WORKER=$release_worker worker_start --batch-mb 1
else
  worker_start --batch-mb 1
fi
check "64 MB message account ends synced" run_pass "$m_huge" 1
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$worker_pid/status")
worker_stop
check "64 MB message copied exactly" verify huge:hugepw "$DST2_PORT" huge:hugepw --account huge
check "worker peak memory while copying it: ${hwm} kB (bound 32 MB)" test "${hwm:-999999}" -lt 32768

# --- crash safety: SIGKILL at random moments during pass 1 ------------------
# The scheduler daemon re-queues an account whose lease expired and publishes
# its job again; nothing is re-published by hand.
add_user SRC crash crashpw
add_user DST2 crash crashpw
fill_corpus crash
plan=$(make_plan crash "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "crash,crashpw,crash,crashpw")
m_crash=$(import_plan "$plan")
"$COORD" pass "$m_crash" 1 2>>"$work/coordinator.log"
kills=0
for round in $(seq 1 30); do
  LEASE_TTL=2 worker_start --batch-count 50 || break
  # Kill at a random moment after the account started.
  for _ in $(seq 1 200); do grep -q "pass 1 started" "$worker_log" && break; sleep 0.05; done
  sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
  if kill -KILL "$worker_pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$worker_pid" 2>/dev/null
  worker_pid=
  [[ $(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_crash") == 1 ]] && break
  [[ $kills -ge 10 ]] && break
done
LEASE_TTL=2 worker_start
"$COORD" wait "$m_crash" 1 300 >/dev/null 2>>"$work/coordinator.log"
worker_stop
check "crash safety: worker killed with SIGKILL $kills times (at least 10)" test "$kills" -ge 10
check "crash safety: the scheduler re-queued the dead worker's account" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m_crash
               AND l.reason = 'lease expired: worker gone or frozen'")" -ge 1
check "crash safety: after the kills the copy is exact (0 missing, 0 duplicated)" \
  verify crash:crashpw "$DST2_PORT" crash:crashpw --account crash

# --- SIGTERM: checkpoint and release within 10 s ------------------------------
add_user DST2 term termpw
plan=$(make_plan term "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "crash,crashpw,term,termpw")
m_term=$(import_plan "$plan")
"$COORD" pass "$m_term" 1 2>>"$work/coordinator.log"
worker_start
for _ in $(seq 1 200); do grep -q "pass 1 started" "$worker_log" && break; sleep 0.05; done
sleep 1
t0=$(date +%s%N)
kill -TERM "$worker_pid"
wait "$worker_pid"
term_rc=$?
worker_pid=
term_ms=$((($(date +%s%N) - t0) / 1000000))
state=$(sql "SELECT state || ' ' || coalesce(lease_owner, 'none') FROM accounts WHERE migration_id = $m_term")
term_copied=$(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders f JOIN accounts a
                   ON a.id = f.account_id WHERE a.migration_id = $m_term")
check "SIGTERM: worker exited ($term_rc) in ${term_ms} ms (bound 10 s)" test "$term_ms" -lt 10000 -a "$term_rc" = 0
check "SIGTERM: the account was checkpointed mid-copy ($term_copied of 6046) and released ($state)" \
  test "$state" = "queued none" -a "$term_copied" -gt 0 -a "$term_copied" -lt 6046
worker_start
"$COORD" wait "$m_term" 1 300 >/dev/null 2>>"$work/coordinator.log"
worker_stop
check "SIGTERM: the next worker finished from the checkpoint; copy exact" \
  verify crash:crashpw "$DST2_PORT" term:termpw --account term
# --- a worker frozen (SIGSTOP) past its lease, then resumed ------------------
add_user DST2 frozen frozenpw
plan=$(make_plan frozen "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "crash,crashpw,frozen,frozenpw")
m_frozen=$(import_plan "$plan")
"$COORD" pass "$m_frozen" 1 2>>"$work/coordinator.log"
# Small batches: most of this worker's time is spent in checkpoint transactions.
PGAPPNAME=frozen-worker LEASE_TTL=3 worker_start --batch-count 5
frozen_pid=$worker_pid frozen_log=$worker_log
for _ in $(seq 1 200); do grep -q "pass 1 started" "$frozen_log" && break; sleep 0.05; done
# Frozen in the middle of a checkpoint transaction, holding the account row's
# share lock: PostgreSQL ends that session after 10 s idle, and the scheduler
# skips the locked row meanwhile, so neither it nor the next worker waits for
# the frozen one to wake.  Freezes at random moments until one lands inside.
in_tx=0
for _ in $(seq 1 300); do
  kill -STOP "$frozen_pid"
  sleep 0.1
  if [[ $(sql "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'
               AND application_name = 'frozen-worker'") -gt 0 ]]; then
    in_tx=1
    break
  fi
  kill -CONT "$frozen_pid"
  [[ $(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_frozen") == 1 ]] && break
  sleep "0.0$((RANDOM % 10))"
done
# A second worker gets the account once the lease expired and the scheduler
# re-published it (after the frozen member left the consumer group).
LEASE_TTL=3 worker_start
"$COORD" wait "$m_frozen" 1 300 >/dev/null 2>>"$work/coordinator.log"
frozen_done=$(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_frozen")
kill -CONT "$frozen_pid"
sleep 3
kill -TERM "$frozen_pid" 2>/dev/null
wait "$frozen_pid" 2>/dev/null
worker_stop
check "frozen worker: frozen inside a checkpoint transaction (holding a row lock)" \
  test "$in_tx" = 1
check "frozen worker: the account was finished by another worker while it was frozen" \
  test "$frozen_done" = 1
check "frozen worker: on waking it found its lease gone and stopped without writing" \
  grep -q "stopped without writing" "$frozen_log"
check "frozen worker: copy exact, nothing written twice" \
  verify crash:crashpw "$DST2_PORT" frozen:frozenpw --account frozen

# --- pause, resume, cancel ---------------------------------------------------
add_user DST2 pz pzpw
add_user DST2 cz czpw
plan=$(make_plan pause "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "crash,crashpw,pz,pzpw" "good,goodpw,cz,czpw")
m_pause=$(import_plan "$plan")
cz_id=$(sql "SELECT id FROM accounts WHERE migration_id = $m_pause AND dst_login = 'cz'")
pz_id=$(sql "SELECT id FROM accounts WHERE migration_id = $m_pause AND dst_login = 'pz'")
"$COORD" cancel "$m_pause" "$cz_id" 2>>"$work/coordinator.log"
"$COORD" pass "$m_pause" 1 2>>"$work/coordinator.log"
LEASE_TTL=2 worker_start --batch-count 50
for _ in $(seq 1 200); do grep -q "pass 1 started" "$worker_log" && break; sleep 0.05; done
sleep 1
"$COORD" pause "$m_pause" 2>>"$work/coordinator.log"
for _ in $(seq 1 100); do
  [[ $(sql "SELECT state || ' ' || coalesce(lease_owner, 'none') FROM accounts WHERE id = $pz_id") == "paused none" ]] && break
  sleep 0.1
done
paused_state=$(sql "SELECT state || ' ' || coalesce(lease_owner, 'none') || ' ' || pass_done FROM accounts WHERE id = $pz_id")
check "pause: the running account checkpointed and released its lease ($paused_state)" \
  test "$paused_state" = "paused none 0"
copied1=$(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders WHERE account_id = $pz_id")
sleep 3
copied2=$(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders WHERE account_id = $pz_id")
check "pause: nothing is copied while paused ($copied1 then $copied2 messages)" test "$copied1" = "$copied2"
"$COORD" resume "$m_pause" 2>>"$work/coordinator.log"
"$COORD" wait "$m_pause" 1 300 >/dev/null 2>>"$work/coordinator.log"
worker_stop
check "resume: the paused account finished from its checkpoint; copy exact" \
  verify crash:crashpw "$DST2_PORT" pz:pzpw --account pause
check "cancel: the cancelled account stayed cancelled and was never copied" \
  test "$(sql "SELECT state || ' ' || (SELECT count(*) FROM folders WHERE account_id = $cz_id)
               FROM accounts WHERE id = $cz_id")" = "cancelled 0"

# --- a source connection budget of 3, three workers that want more --------------
add_users b 6 SRC DST2
for i in 1 2 3 4 5 6; do
  python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/b$i/Maildir" \
    --layout fs --limit 600 --offset $((i * 700)) --seed "$i" >/dev/null
done
plan=$(make_plan budget "{\"host\": \"127.0.0.1\", \"port\": $SRC_PORT, \"tls\": \"none\",
  \"auth\": \"plain\", \"max_connections\": 3}" "$(server_json dst "$DST2_PORT" none)" \
  $(for i in 1 2 3 4 5 6; do echo "b$i,bpw$i,b$i,bpw$i"; done))
m_budget=$(import_plan "$plan")
budget_pids=()
for w in 1 2 3; do
  worker_start --id "budget-$w" --accounts 4 --folders 2 && budget_pids+=("$worker_pid")
done
# Count the source's IMAP connections of that user on the server side.
( while :; do doveadm -c "$SRC_CONF" who -1 2>/dev/null | grep -c '^b[1-6] ' ; sleep 0.1; done ) \
  >"$work/budget.samples" &
sampler=$!
budget_pass() { run_pass "$m_budget" 1 >"$work/budget.status"; }
check "budget: 6 accounts through a source budget of 3 end synced" budget_pass
kill "$sampler"; wait "$sampler" 2>/dev/null
for pid in "${budget_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
worker_pid=
peak=$(sort -n "$work/budget.samples" | tail -n 1)
check "budget: at most 3 source connections at any time, counted by Dovecot (peak $peak)" \
  test "${peak:-99}" -le 3 -a "${peak:-0}" -ge 2
budget_exact() {
  local i
  for i in 1 2 3 4 5 6; do verify "b$i:bpw$i" "$DST2_PORT" "b$i:bpw$i" --account "b$i" || return 1; done
}
check "budget: all 6 accounts exact" budget_exact

# --- PostgreSQL restarted mid-run ----------------------------------------------
add_user DST2 pgr pgrpw
plan=$(make_plan pgr "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "crash,crashpw,pgr,pgrpw")
m_pgr=$(import_plan "$plan")
"$COORD" pass "$m_pgr" 1 2>>"$work/coordinator.log"
LEASE_TTL=3 worker_start --batch-count 50
for _ in $(seq 1 200); do grep -q "pass 1 started" "$worker_log" && break; sleep 0.05; done
sleep 1
check "PostgreSQL restarted in the middle of the copy" \
  bash "$infra/stack.sh" pg-restart "$stack"
"$COORD" wait "$m_pgr" 1 300 >/dev/null 2>>"$work/coordinator.log"
worker_stop
check "after the PostgreSQL restart the migration completed" \
  test "$(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_pgr")" = 1
check "after the PostgreSQL restart: copy exact" \
  verify crash:crashpw "$DST2_PORT" pgr:pgrpw --account pgr

# --- the Kafka broker down for 10 s -----------------------------------------------
add_user DST2 kdown kdownpw
plan=$(make_plan kdown "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "crash,crashpw,kdown,kdownpw")
m_kdown=$(import_plan "$plan")
worker_start
# Every broker down (the mock cluster's fault injection) before the jobs are
# published: publishing waits, the worker's consumer loses the group, and all
# of it resumes when the brokers come back.
kill -USR1 "$(cat "$stack/broker.pid")"
"$COORD" pass "$m_kdown" 1 2>>"$work/coordinator.log" &
pass_pid=$!
sleep 10
kill -USR2 "$(cat "$stack/broker.pid")"
wait "$pass_pid"
pass_rc=$?
"$COORD" wait "$m_kdown" 1 300 >/dev/null 2>>"$work/coordinator.log"
worker_stop
check "broker down 10 s: the pass was published once it came back (exit $pass_rc)" test "$pass_rc" = 0
check "broker down 10 s: the migration completed" \
  test "$(sql "SELECT pass_done FROM accounts WHERE migration_id = $m_kdown")" = 1
check "broker down 10 s: copy exact" verify crash:crashpw "$DST2_PORT" kdown:kdownpw --account kdown

# --- 200 accounts of varied sizes, three workers --------------------------------
# Users are written to the passwd-files in one go; sizes from 2 to 120 messages,
# each account with its own slice of the corpus.
fleet=200
add_users f "$fleet" SRC DST2
for i in $(seq 1 "$fleet"); do
  echo "f$i $(((i * 37) % 119 + 2)) $(((i * 29) % 5900))"
done | while read -r user limit offset; do
  python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/$user/Maildir" \
    --layout fs --limit "$limit" --offset "$offset" --seed "${user#f}" >/dev/null
done
plan=$(make_plan fleet "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  $(for i in $(seq 1 "$fleet"); do echo "f$i,fpw$i,f$i,fpw$i"; done))
m_fleet=$(import_plan "$plan")
check "fleet: all $fleet accounts verified" \
  test "$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m_fleet AND state = 'verified'")" = "$fleet"
fleet_pids=()
for w in 1 2 3; do
  worker_start --id "fleet-$w" && fleet_pids+=("$worker_pid")
done
fleet_pass() { run_pass "$m_fleet" 1 >"$work/fleet.status"; }
check "fleet: pass 1 over 3 workers ends synced for every account" fleet_pass
for pid in "${fleet_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
worker_pid=
workers_used=$(sql "SELECT count(DISTINCT substring(reason from 'lease taken by (fleet-[0-9])'))
                    FROM account_log l JOIN accounts a ON a.id = l.account_id
                    WHERE a.migration_id = $m_fleet AND reason LIKE 'lease taken by fleet-%'")
check "fleet: the accounts were spread over the 3 workers ($workers_used used)" test "$workers_used" = 3
# Each check writes a file of its own: four processes sharing one output file
# interleave their writes (a line and its newline go separately).
mkdir -p "$work/fleet-verify"
seq 1 "$fleet" | xargs -P 4 -I{} sh -c 'python3 "$1/verify.py" --src "127.0.0.1:$2:f{}:fpw{}" \
  --dst "127.0.0.1:$3:f{}:fpw{}" --account "f{}" >"$4/f{}.out" 2>&1' sh "$infra" "$SRC_PORT" \
  "$DST2_PORT" "$work/fleet-verify"
cat "$work"/fleet-verify/*.out >"$work/fleet.verify"
exact=$(grep -c "0 missing, 0 duplicated, 0 changed" "$work/fleet.verify")
check "fleet: every account exact by the independent check ($exact of $fleet)" test "$exact" = "$fleet"

suite_end
