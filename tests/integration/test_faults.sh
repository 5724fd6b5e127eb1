#!/usr/bin/env bash
# Faults injected into the worker's servers, end to end: connections reset in
# the middle of FETCH and APPEND (tests/infra/reset_proxy.py on both links),
# misbehaving IMAP servers (tests/infra/fake_imap.py: hangs, drops, endless or
# huge replies, invalid data, hostile folder names, a destination refusing a
# folder or a whole pipelined MULTIAPPEND), re-runs of a migration, and SIGTERM while an account is stuck.
# What a user would check: verify.py finds the destination exact (or exact
# but for the folders named as failed), status names every failed folder with
# the server's words, no account blocks another, the worker stays bounded in
# time, CPU and memory.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-faults.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-18500}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"
fake=$infra/fake_imap.py
t_suite=$(date +%s)

suite_start

# account_is M REGEX SECS: waits until "state|last_error" of the migration's
# (only) account matches REGEX (the first failure counts: the scheduler
# retries it later).
account_is() {
  local m=$1 re=$2 secs=$3 s=
  for _ in $(seq 1 $((secs * 5))); do
    s=$(sql "SELECT state || '|' || coalesce(last_error, '') FROM accounts WHERE migration_id = $m")
    [[ $s =~ $re ]] && return 0
    sleep 0.2
  done
  echo "migration $m: $s" >&2
  return 1
}

# fake_start NAME [fake_imap.py options]: a fake server on a port of its own;
# sets fake_port (kept across restarts of the same NAME) and fake_pid.
declare -A fake_ports fake_pids
fake_start() {
  local name=$1; shift
  serve "fake-$name" python3 "$fake" --port "${fake_ports[$name]:-0}" \
    --log "$work/fake-$name.log" "$@"
  fake_ports[$name]=$served_port
  fake_pids[$name]=$served_pid
  fake_port=$served_port
}
fake_stop() {
  kill "${fake_pids[$1]}" 2>/dev/null
  wait "${fake_pids[$1]}" 2>/dev/null
}

# fake_account NAME FAULT-OPTIONS...: a migration whose source is a fake
# server (user u, password p) and whose destination is a new Dovecot user
# NAME on DST2.  The credentials are checked against a well-behaved fake, which
# then gives way to the misbehaving one on the same port (a fresh mailbox and
# connection count).  Sets fake_m to the migration id.
fake_account() {
  local name=$1 plan; shift
  fake_start "$name"
  add_user DST2 "$name" "${name}pw" >/dev/null
  plan=$(make_plan "$name" "$(server_json src "$fake_port" none)" \
    "$(server_json dst "$DST2_PORT" none)" "u,p,$name,${name}pw")
  fake_m=$(import_plan "$plan")
  fake_stop "$name"
  fake_start "$name" "$@"
}

# verify_fake NAME [verify.py options]: the destination user NAME against the
# fake source NAME.
verify_fake() {
  local name=$1; shift
  python3 "$infra/verify.py" --src "127.0.0.1:${fake_ports[$name]}:u:p" \
    --dst "127.0.0.1:$DST2_PORT:$name:${name}pw" --account "$name" "$@"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# --- resets on both links during pass 1 of the corpus account -----------------
add_user SRC rst rstpw
add_user DST rst rstpw
fill_corpus rst
serve src-resets python3 "$infra/reset_proxy.py" --port 0 --upstream "$SRC_PORT" --resets 4 \
  --seed 7 --min-bytes 300000 --max-bytes 4000000 --log "$work/src-resets.log"
src_proxy=$served_port
serve dst-resets python3 "$infra/reset_proxy.py" --port 0 --upstream "$DST_PORT" --resets 4 \
  --seed 8 --min-bytes 300000 --max-bytes 4000000 --log "$work/dst-resets.log"
dst_proxy=$served_port
plan=$(make_plan resets "$(server_json src "$src_proxy" none)" "$(server_json dst "$dst_proxy" none)" \
  "rst,rstpw,rst,rstpw")
m_resets=$(import_plan "$plan")
worker_start --accounts 12 --io-timeout 3 --stall-timeout 8 --max-folders 1000 \
  --max-message-mb 2 || { echo "0 passed, 1 failed"; exit 1; }
t0=$(date +%s)
PASS_TIMEOUT=240 run_pass "$m_resets" 1 >"$work/resets.out" 2>&1
resets_rc=$?
resets_s=$(($(date +%s) - t0))
check "resets on both links: pass 1 of 6,046 messages ends synced in ${resets_s} s (bound 240 s)" \
  test "$resets_rc" = 0
check "resets on both links: destination exact (0 missing, 0 duplicated)" \
  verify rst:rstpw "$DST_PORT" rst:rstpw --account resets
resets_used() { grep -q "^done" "$work/src-resets.log" && grep -q "^done" "$work/dst-resets.log"; }
check "resets: every reset used ($(grep -c '^reset' "$work/src-resets.log") on the source link, $(grep -c '^reset' "$work/dst-resets.log") on the destination link)" \
  resets_used
check "resets: at least one in the middle of a FETCH of bodies ($(grep -o 'during .*' "$work/src-resets.log" | sort | uniq -c | tr '\n' ' '))" \
  grep -q "during UID FETCH" "$work/src-resets.log"
check "resets: at least one in the middle of an APPEND ($(grep -o 'during .*' "$work/dst-resets.log" | sort | uniq -c | tr '\n' ' '))" \
  grep -q "during APPEND" "$work/dst-resets.log"
resets_attempts=$(sql "SELECT attempts FROM accounts WHERE migration_id = $m_resets")
check "resets: the account was not counted as failed (attempts $resets_attempts)" \
  test "$resets_attempts" = 0
sleep 2
c1=$(cpu_ticks "$worker_pid")
sleep 5
c2=$(cpu_ticks "$worker_pid")
check "resets: no worker thread busy afterwards ($((c2 - c1)) CPU ticks in 5 s idle)" \
  test $((c2 - c1)) -lt 100

# --- a faulty source next to a healthy account on the same worker ------------
# One migration per fault, all run at once on the worker started above
# (--accounts 12 --io-timeout 3 --stall-timeout 8 --max-folders 1000
# --max-message-mb 2), with a Dovecot account of 1,500 messages beside them.
add_user SRC busy busypw
add_user DST busy busypw
fill_corpus busy 1500
plan=$(make_plan busy "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "busy,busypw,busy,busypw")
m_busy=$(import_plan "$plan")
declare -A fm
fake_account nogreet --no-greeting; fm[nogreet]=$fake_m
fake_account stall --stall-mid-literal; fm[stall]=$fake_m
fake_account closemid --close-mid-literal; fm[closemid]=$fake_m
fake_account drip --drip 0.0005; fm[drip]=$fake_m
fake_account huge --huge-literal; fm[huge]=$fake_m
fake_account beyond --bytes-beyond-size 100; fm[beyond]=$fake_m
fake_account many --folders 100000; fm[many]=$fake_m
fake_account uidnext --uidnext 4294967295; fm[uidnext]=$fake_m
t0=$(date +%s)
for name in "${!fm[@]}"; do "$COORD" pass "${fm[$name]}" 1 >/dev/null 2>>"$work/coordinator.log"; done
"$COORD" pass "$m_busy" 1 >/dev/null 2>>"$work/coordinator.log"
rss_max=0
sample_rss() { local r; r=$(rss_kb "$worker_pid"); [[ ${r:-0} -gt $rss_max ]] && rss_max=$r; true; }
check "beside the faulty sources, the healthy account ends synced" \
  account_is "$m_busy" '^synced' 180
busy_s=$(($(date +%s) - t0))
sample_rss
check "the healthy account is exact (synced after ${busy_s} s)" \
  verify busy:busypw "$DST_PORT" busy:busypw --account busy
check "no greeting: the account fails with a clear error (timeout bound 3 s, retried in place)" \
  account_is "${fm[nogreet]}" '^failed\|.*(greeting|timed out|timeout)' 90
sample_rss
check "stall mid-literal: the account ends with the stall named, the worker goes on" \
  account_is "${fm[stall]}" '^(failed|synced)\|?.*' 120
stall_named() {
  local id
  id=$(sql "SELECT id FROM accounts WHERE migration_id = ${fm[stall]}")
  sql "SELECT last_error FROM accounts WHERE id = $id" | grep -Eq 'no answer .* in 3 s' &&
    grep -Eq "account $id folder .*no answer .* in 3 s.*reconnecting" "$worker_log"
}
check "stall mid-literal: the error names the 3 s bound, after reconnecting" stall_named
check "close mid-literal: the account ends with the close named" \
  account_is "${fm[closemid]}" '^(failed|synced)' 120
check "huge literal (4294967295 announced): message errors or a clear error, memory bounded" \
  account_is "${fm[huge]}" '^(failed|synced)' 120
sample_rss
huge_errors=$(sql "SELECT count(*) || ' ' || coalesce(min(error), '') FROM message_errors e
                   JOIN accounts a ON a.id = e.account_id WHERE a.migration_id = ${fm[huge]}")
check "huge literal: each message refused by its own message error naming the bound ($huge_errors)" \
  test "${huge_errors%% *}" -ge 1
check "bytes beyond RFC822.SIZE: the account ends (synced with message errors, or a clear error)" \
  account_is "${fm[beyond]}" '^(failed|synced)' 120
check "100,000 folders: a clear account error naming the count and --max-folders" \
  account_is "${fm[many]}" '^failed\|.*100[0-9]{3} folders.*--max-folders' 120
check "UIDNEXT 4294967295: the account ends synced within the bound" \
  account_is "${fm[uidnext]}" '^synced' 60
check "UIDNEXT 4294967295: the copy is exact" verify_fake uidnext
uidnext_windows=$(grep -c "UID FETCH" "$work/fake-uidnext.log")
check "UIDNEXT 4294967295: walked by the messages held ($uidnext_windows UID FETCH commands)" \
  test "$uidnext_windows" -lt 200
check "drip-fed replies: the account ends, slowly but exact" \
  account_is "${fm[drip]}" '^synced' 180
sample_rss
check "worker alive through all of it" kill -0 "$worker_pid"
check "worker RSS bounded while serving the faulty sources (peak sampled ${rss_max} kB)" \
  test "$rss_max" -lt 1500000
"$COORD" status "${fm[many]}" >"$work/status-many.out" 2>&1
for name in "${!fm[@]}"; do "$COORD" cancel "${fm[$name]}" >/dev/null 2>&1; done

# --- a destination that refuses one folder's name -----------------------------
add_user SRC refuse refusepw
fill_corpus refuse 300
fake_start refusedst --user refuse --password refusepw --refuse-create Projects
plan=$(make_plan refuse "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$fake_port" none)" \
  "refuse,refusepw,refuse,refusepw")
m_refuse=$(import_plan "$plan")
check "destination refusing 'Old Projects': the pass still ends synced (with errors)" \
  run_pass "$m_refuse" 1
python3 "$infra/verify.py" --src "127.0.0.1:$SRC_PORT:refuse:refusepw" \
  --dst "127.0.0.1:$fake_port:refuse:refusepw" --account refuse --exclude "Old Projects" \
  >"$work/refuse.verify" 2>&1
check "every other folder copied exactly ($(head -1 "$work/refuse.verify"))" \
  grep -q "0 missing, 0 duplicated, 0 changed" "$work/refuse.verify"
"$COORD" status "$m_refuse" >"$work/refuse.status" 2>&1
check "status: '1 folders failed' and the folder with the server's words" \
  bash -c "grep -q '1 folders failed' '$work/refuse.status' &&
           grep -q 'folder \"Old Projects\" failed: CREATE.*Invalid mailbox name' '$work/refuse.status'"
"$COORD" passes "$m_refuse" >"$work/refuse.passes" 2>&1
check "passes: pass 1 counts the failed folder" grep -q "folders failed 1" "$work/refuse.passes"
check "the account's state reason says synced with errors" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m_refuse AND l.to_state = 'synced'
               AND l.reason LIKE '%1 folders failed: Old Projects: CREATE%Invalid mailbox name%'")" = 1

# --- a destination refusing a whole MULTIAPPEND (RFC 3502: nothing stored) ----
# 450 messages in INBOX, the 230th with the keyword $Rejected, which the fake
# destination refuses ("NO [LIMIT] Too many keywords"): the pipelined
# MULTIAPPENDs (MULTIAPPEND, LITERAL+ and UIDPLUS offered) lose a batch of 100
# whole, with the next one on the way; the recovery path completes both, and
# only that message ends as a message error.
add_user SRC rejkw rejkwpw
rej_uid=$(python3 - "$SRC_PORT" <<'PY'
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("rejkw", "rejkwpw")
for n in range(1, 451):
    msg = ("From: s%d@example.org\r\nTo: rejkw@example.com\r\nSubject: keyword test %d\r\n"
           "Message-ID: <rejkw-%d@example.org>\r\n\r\nbody %d\r\n" % (n, n, n, n)).encode()
    typ, data = c.append("INBOX", "($Rejected)" if n == 230 else None,
                         '"01-Feb-2020 10:00:00 +0000"', msg)
    if typ != "OK":
        sys.exit("source refused: %r" % data)
c.select("INBOX", readonly=True)
typ, data = c.uid("SEARCH", None, "KEYWORD", "$Rejected")
print(data[0].decode())
PY
)
mkdir -p "$work/rejkw-empty"
fake_start rejdst --user rejkw --password rejkwpw --messages-dir "$work/rejkw-empty" \
  --refuse-append-flag "\$Rejected"
plan=$(make_plan rejkw "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$fake_port" none)" \
  "rejkw,rejkwpw,rejkw,rejkwpw")
m_rejkw=$(import_plan "$plan")
check "MULTIAPPEND refused whole: the source holds 450 messages, the keyword on one (UID $rej_uid)" \
  test "$rej_uid" = 230
check "MULTIAPPEND refused whole: the pass ends synced" run_pass "$m_rejkw" 1
# The refused message is copied without the keyword (worker/keywords.c),
# the keyword recorded with the server's words: no message error.
rejkw_errors() {
  sql "SELECT k.src_uid || ' ' || k.keywords || ' ' || k.error FROM keywords_dropped k
       JOIN folders f ON f.id = k.folder_id JOIN accounts a ON a.id = f.account_id
       WHERE a.migration_id = $m_rejkw
       UNION ALL SELECT e.src_uid || ' message error ' || e.error FROM message_errors e
       JOIN accounts a ON a.id = e.account_id WHERE a.migration_id = $m_rejkw ORDER BY 1"
}
rejkw_errors >"$work/rejkw.errors"
check "MULTIAPPEND refused whole: UID $rej_uid copied without \$Rejected, with the server's words, no message error ($(head -3 "$work/rejkw.errors" | tr '\n' ' '))" \
  bash -c "test \"\$(wc -l <'$work/rejkw.errors')\" = 1 &&
           grep -Eq '^$rej_uid [$]Rejected .*Too many keywords' '$work/rejkw.errors'"
"$COORD" status "$m_rejkw" >"$work/rejkw.status" 2>&1
check "MULTIAPPEND refused whole: status counts no message error and shows the keyword dropped" \
  bash -c "grep -q 'message errors 0\b' '$work/rejkw.status' &&
           grep -q 'uid $rej_uid copied without the keywords [$]Rejected' '$work/rejkw.status'"
rejkw_pipelined() {
  grep -E '^conn=[0-9]+ [^ ]+ APPEND ' "$work/fake-rejdst.log" |
    awk '{ n = gsub(/\{[0-9]+\+?\}/, "&"); if (n > 1) multi++; else single++ }
         END { print multi + 0, single + 0 }'
}
read -r rejkw_multi rejkw_single < <(rejkw_pipelined)
check "MULTIAPPEND refused whole: the pipelined MULTIAPPENDs ran ($rejkw_multi of several messages, $rejkw_single of one)" \
  test "$rejkw_multi" -ge 2
# message_ids PORT USER PASS: one Message-ID a line, for every message in the
# account's INBOX (duplicates kept).
message_ids() {
  python3 - "$@" <<'PY'
import imaplib, re, sys
port, user, pw = sys.argv[1:]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, pw)
typ, data = c.select("INBOX", readonly=True)
if int(data[0]) > 0:
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    for item in data:
        if isinstance(item, tuple):
            m = re.search(rb"^Message-ID: (<[^>]*>)", item[1], re.M | re.I)
            print(m.group(1).decode() if m else "(none)")
c.logout()
PY
}
message_ids "$fake_port" rejkw rejkwpw | sort >"$work/rejkw.ids"
rejkw_ids_ok() {
  local want
  want=$(for n in $(seq 1 450); do echo "<rejkw-$n@example.org>"; done | sort)
  [[ $(sort -u "$work/rejkw.ids") == "$want" ]] && [[ $(wc -l <"$work/rejkw.ids") = 450 ]]
}
check "MULTIAPPEND refused whole: all 450 in the destination once each, by Message-ID ($(wc -l <"$work/rejkw.ids") held, $(sort "$work/rejkw.ids" | uniq -d | wc -l) duplicated, $(grep -c '<rejkw-230@' "$work/rejkw.ids") of UID 230)" \
  rejkw_ids_ok
python3 "$infra/verify.py" --src "127.0.0.1:$SRC_PORT:rejkw:rejkwpw" \
  --dst "127.0.0.1:$fake_port:rejkw:rejkwpw" --account rejkw --strict >"$work/rejkw.verify" 2>&1
check "MULTIAPPEND refused whole: verify finds only UID $rej_uid changed (its keyword), flags and dates kept ($(head -1 "$work/rejkw.verify"))" \
  bash -c "grep -q '450 messages compared: 0 missing, 0 duplicated, 1 changed$' '$work/rejkw.verify' &&
           grep -q 'changed: src uid $rej_uid ' '$work/rejkw.verify'"
rejkw_counts=$(sql "SELECT coalesce(sum(copied_messages), 0) || '/' || coalesce(sum(matched_messages), 0)
                   FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_rejkw")
check "MULTIAPPEND refused whole: copied and matched add up to 450 (copied/matched $rejkw_counts)" \
  test $((${rejkw_counts%/*} + ${rejkw_counts#*/})) = 450
state "$fake_port" rejkw:rejkwpw >"$work/rejkw.state1"
rejkw_appends=$(grep -c ' APPEND ' "$work/fake-rejdst.log")
check "MULTIAPPEND refused whole: pass 2 ends synced" run_pass "$m_rejkw" 2
state "$fake_port" rejkw:rejkwpw >"$work/rejkw.state2"
rejkw_copied2=$(sql "SELECT coalesce(sum(pf.messages), 0) FROM pass_folders pf JOIN folders f
                     ON f.id = pf.folder_id JOIN accounts a ON a.id = f.account_id
                     WHERE a.migration_id = $m_rejkw AND pf.number = 2")
check "MULTIAPPEND refused whole: pass 2 copies nothing ($rejkw_copied2 copied, $(($(grep -c ' APPEND ' "$work/fake-rejdst.log") - rejkw_appends)) APPEND commands)" \
  test "$rejkw_copied2" = 0
check "MULTIAPPEND refused whole: pass 2 changes nothing in the destination (same UIDs, flags, MODSEQs)" \
  cmp -s "$work/rejkw.state1" "$work/rejkw.state2"
rejkw_errors >"$work/rejkw.errors2"
check "MULTIAPPEND refused whole: still the one keyword dropped after pass 2" \
  cmp -s "$work/rejkw.errors" "$work/rejkw.errors2"

# --- a connection dropped right after login ----------------------------------
fake_account drop --drop-after-login 1; m_drop=$fake_m
check "connection dropped after login: the pass ends synced" run_pass "$m_drop" 1
check "connection dropped after login: exact" verify_fake drop
check "connection dropped after login: error budget untouched (attempts 0)" \
  test "$(sql "SELECT attempts FROM accounts WHERE migration_id = $m_drop")" = 0
check "connection dropped after login: retried in place" grep -q "trying again in 1 s" "$worker_log"

# --- invalid data from the source: named folder errors, nothing wrong copied --
fake_account crlf --folder-name-crlf; m_crlf=$fake_m
fake_account nonext --status-no-uidnext; m_nonext=$fake_m
fake_account uidzero --uid-zero; m_uid0=$fake_m
fake_account uidv --uidvalidity-seq 0,1; m_uidv=$fake_m
fake_account uidneg --uid-negative; m_uidneg=$fake_m
for m in "$m_crlf" "$m_nonext" "$m_uid0" "$m_uidv" "$m_uidneg"; do
  "$COORD" pass "$m" 1 >/dev/null 2>>"$work/coordinator.log"
done
for m in "$m_crlf" "$m_nonext" "$m_uid0" "$m_uidv" "$m_uidneg"; do
  "$COORD" wait "$m" 1 120 >/dev/null 2>>"$work/coordinator.log"
done
# exact_or_named NAME M: the account is synced and every folder not recorded as
# failed is exact (names NUL-separated: one holds CR LF).
exact_or_named() {
  local name=$1 m=$2 f excl=()
  while IFS= read -r -d "" f || [[ -n $f ]]; do excl+=(--exclude "$f"); f=; done < <(psql "$MAILSHIFT_DB" -qAt -0 -c \
    "SELECT f.src_name FROM folders f JOIN accounts a ON a.id = f.account_id
     WHERE a.migration_id = $m AND f.error IS NOT NULL")
  verify_fake "$name" "${excl[@]}" >"$work/$name.verify" 2>&1 || { cat "$work/$name.verify"; return 1; }
  test "$(sql "SELECT state FROM accounts WHERE migration_id = $m")" = synced
}
check "folder named with CR LF: every other folder exact, the CR LF one named as failed" \
  exact_or_named crlf "$m_crlf"
no_injected() { ! dst_has_folder "$DST2_PORT" crlf crlfpw INJECTED-BY-SOURCE; }
check "folder named with CR LF: nothing injected into the destination (no INJECTED-BY-SOURCE)" \
  no_injected
check "STATUS without UIDNEXT: each folder failed with the reason named, nothing silently synced" \
  test "$(sql "SELECT count(*) FILTER (WHERE f.error LIKE '%UIDNEXT%') || '/' || count(*)
               FROM folders f JOIN accounts a ON a.id = f.account_id
               WHERE a.migration_id = $m_nonext AND f.src_name <> 'Archive'")" = \
    "$(sql "SELECT count(*) || '/' || count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
            WHERE a.migration_id = $m_nonext AND f.src_name <> 'Archive'")"
check "UID 0 in FETCH: copied exactly or the folder named as failed" exact_or_named uidzero "$m_uid0"
uid0_named=$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
                  WHERE a.migration_id = $m_uid0 AND f.error IS NOT NULL")
uid0_msgs=$(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders f JOIN accounts a
                 ON a.id = f.account_id WHERE a.migration_id = $m_uid0")
check "UID 0 in FETCH: no silent loss (7 copied, or folders named: $uid0_msgs copied, $uid0_named named)" \
  test "$uid0_msgs" = 7 -o "$uid0_named" -ge 1
check "UID -1 in FETCH: copied exactly or the folder named as failed" \
  exact_or_named uidneg "$m_uidneg"
check "UID -1 in FETCH: no silent loss" \
  test "$(sql "SELECT coalesce(sum(copied_messages), 0) = 7 OR count(*) FILTER (WHERE f.error IS NOT NULL) > 0
               FROM folders f JOIN accounts a ON a.id = f.account_id
               WHERE a.migration_id = $m_uidneg")" = t
"$COORD" status "$m_crlf" >"$work/crlf.status" 2>&1
check "status shows the CR LF folder's name escaped, on one line" \
  grep -q 'folder "Evil\\r\\nX1 CREATE INJECTED-BY-SOURCE\\r\\nX2 NOOP" failed: ' "$work/crlf.status"
check "UIDVALIDITY 0 on pass 1: no checkpoint kept with it" \
  test "$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
               WHERE a.migration_id = $m_uidv AND f.src_uidvalidity = 0
               AND f.high_water > 0")" = 0
check "UIDVALIDITY 1 on pass 2: the pass ends synced" run_pass "$m_uidv" 2
check "UIDVALIDITY 0 then 1: destination exact, nothing copied twice" verify_fake uidv

# --- re-runs: the same plan imported twice, an account removed and added back --
add_user SRC rerun rerunpw
add_user DST2 rerun rerunpw
fill_corpus rerun 600
plan=$(make_plan rerun "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "rerun,rerunpw,rerun,rerunpw")
m_rerun1=$(import_plan "$plan")
m_rerun2=$(import_plan "$plan")
check "same plan imported twice: first run ends synced" run_pass "$m_rerun1" 1
check "same plan imported twice: second run ends synced" run_pass "$m_rerun2" 1
check "same plan imported twice: destination exact, 0 duplicates" \
  verify rerun:rerunpw "$DST2_PORT" rerun:rerunpw --account rerun
rerun_matched=$(sql "SELECT coalesce(sum(matched_messages), 0) || '/' || coalesce(sum(copied_messages), 0)
                     FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m_rerun2")
check "second run: all 600 matched, none copied (matched/copied $rerun_matched)" \
  test "$rerun_matched" = "600/0"
"$COORD" status "$m_rerun2" >"$work/rerun.status" 2>&1
check "status reports the matched count" grep -q "already in destination 600" "$work/rerun.status"

add_user SRC readd readdpw
add_user DST2 readd readdpw
fill_corpus readd 3000
plan=$(make_plan readd "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "readd,readdpw,readd,readdpw")
m_readd=$(import_plan "$plan")
"$COORD" pass "$m_readd" 1 >/dev/null 2>>"$work/coordinator.log"
for _ in $(seq 1 300); do
  [[ $(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders f JOIN accounts a
            ON a.id = f.account_id WHERE a.migration_id = $m_readd") -gt 300 ]] && break
  sleep 0.1
done
"$COORD" remove "$m_readd" readd >>"$work/coordinator.log" 2>&1
printf 'source_login,source_password,destination_login,destination_password\nreadd,readdpw,readd,readdpw\n' \
  >"$work/readd.csv"
"$COORD" add "$m_readd" "$work/readd.csv" >>"$work/coordinator.log" 2>&1
check "account removed mid-copy and added back: ends synced" \
  bash -c "'$COORD' wait $m_readd 1 240 >/dev/null 2>>'$work/coordinator.log'"
check "removed and added back: destination exact, 0 duplicates" \
  verify readd:readdpw "$DST2_PORT" readd:readdpw --account readd
readd_matched=$(sql "SELECT coalesce(sum(matched_messages), 0) FROM folders f JOIN accounts a
                     ON a.id = f.account_id WHERE a.migration_id = $m_readd")
check "removed and added back: what was there was matched, not appended ($readd_matched matched)" \
  test "$readd_matched" -gt 0
worker_stop

# --- a destination folder deleted and created again between passes -----------
# Its UIDVALIDITY changes and the UID map points at nothing: the folder is
# re-matched by content, and what is missing is copied again.
add_user SRC recreate recreatepw
add_user DST recreate recreatepw
fill_corpus recreate 300
p=$(make_plan recreate "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "recreate,recreatepw,recreate,recreatepw")
m_recreate=$(import_plan "$p")
worker_start || { echo "0 passed, 1 failed"; exit 1; }
check "recreated destination folder: pass 1 ends synced" run_pass "$m_recreate" 1
python3 - "$DST_PORT" <<'PY'
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("recreate", "recreatepw")
for cmd in (lambda: c.delete('"Old Projects"'), lambda: c.create('"Old Projects"')):
    typ, data = cmd()
    if typ != "OK":
        sys.exit("destination refused: %r" % data)
c.logout()
PY
check "recreated destination folder: pass 2 ends synced" run_pass "$m_recreate" 2
check "recreated destination folder: destination exact again (re-matched, copied again)" \
  verify recreate:recreatepw "$DST_PORT" recreate:recreatepw --account recreate
check "recreated destination folder: the change was seen and named in the log" \
  grep -q "destination UIDVALIDITY changed" "$worker_log"
worker_stop

# --- two source folders that map to one destination folder -------------------
# "a.b" (a dot inside a name, '/' delimiter) becomes "a_b" on the '.'-delimited
# destination, where the source's own "a_b" goes too: the second is refused by
# name, never merged into the first (matching by content would take its mail
# for copies of the other's).
add_user SRC twins twinspw
add_user DST twins twinspw
python3 - "$SRC_PORT" <<'PY'
import imaplib, sys, time
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("twins", "twinspw")
for i, name in enumerate(("a.b", "a_b")):
    c.create('"%s"' % name)
    msg = ("From: t@example.org\r\nSubject: twin %d\r\nMessage-ID: <twin%d@example.org>\r\n"
           "\r\nbody of %s\r\n" % (i, i, name)).encode()
    typ, data = c.append('"%s"' % name, None, imaplib.Time2Internaldate(time.time()), msg)
    if typ != "OK":
        sys.exit("source refused: %r" % data)
c.logout()
PY
p=$(make_plan twins "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "twins,twinspw,twins,twinspw")
m_twins=$(import_plan "$p")
worker_start || { echo "0 passed, 1 failed"; exit 1; }
"$COORD" pass "$m_twins" 1 >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_twins" 1 120 >/dev/null 2>>"$work/coordinator.log"
"$COORD" status "$m_twins" >"$work/twins-status.out" 2>&1
check "folders mapped to one destination folder: the second is named as failed in status" \
  grep -q "maps to the destination folder of source folder a[._]b" "$work/twins-status.out"
twins_n=$(python3 - "$DST_PORT" <<'PY'
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("twins", "twinspw")
typ, data = c.status('"a_b"', "(MESSAGES)")
print(data[0].decode().split("MESSAGES ")[1].rstrip(")"))
PY
)
check "folders mapped to one destination folder: it holds one folder's message, not both ($twins_n)" \
  test "$twins_n" = 1
worker_stop

# --- the watchdog: a thread stuck with no I/O timeout to save it --------------
fake_account watch --stall-mid-literal; m_watch=$fake_m
worker_start --io-timeout 120 --stall-timeout 4
t0=$(date +%s)
"$COORD" pass "$m_watch" 1 >/dev/null 2>>"$work/coordinator.log"
check "watchdog: a thread stuck mid-literal (I/O timeout 120 s) is cancelled; the account ends" \
  account_is "$m_watch" '^failed\|.*' 90
watch_s=$(($(date +%s) - t0))
check "watchdog: the stall is named in the log (--stall-timeout 4)" \
  grep -q "made no progress for [0-9]* s (worker option --stall-timeout 4)" "$worker_log"
check "watchdog: the account ended in ${watch_s} s, long before the 120 s I/O timeout" \
  test "$watch_s" -lt 60
worker_stop

# --- SIGTERM while an account is stuck: the worker ends within its bound ------
fake_account stuck --stall-mid-literal; m_stuck=$fake_m
worker_start --io-timeout 120 --stall-timeout 0 --shutdown-timeout 5
"$COORD" pass "$m_stuck" 1 >/dev/null 2>>"$work/coordinator.log"
for _ in $(seq 1 300); do grep -q "BODY.PEEK" "$work/fake-stuck.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
t0=$(date +%s%N)
kill -TERM "$worker_pid"
wait "$worker_pid"
term_rc=$?
worker_pid=
term_ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM with an account stuck mid-literal: exited ($term_rc) in ${term_ms} ms (bound 5 s)" \
  test "$term_ms" -lt 6000

echo "# suite wall time: $(($(date +%s) - t_suite)) s"
suite_end
