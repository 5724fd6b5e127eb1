#!/usr/bin/env bash
# End-to-end tests of the coordinator and the fleet against real servers
# started here (PostgreSQL, Dovecot, the Kafka-protocol broker): blackout
# windows, priorities under a connection budget of one, fleet-wide rate
# limits, daily byte caps that carry over, throttling servers, several source
# profiles, accounts added, repaired and removed while a migration runs, passes
# as objects, and live totals from the workers' events.  Results are checked
# by tests/infra/verify.py (per folder: message hash, flags, internal date).
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-fleet-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-18400}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

suite_start

# fill USER N OFFSET: N corpus messages into the source account USER.
fill() {
  python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/$1/Maildir" \
    --layout fs --limit "$2" --offset "$3" --seed "${#1}$3" >/dev/null
}
# plan NAME SRC_EXTRA DST_EXTRA CSV_HEADER ROWS...: a plan with the local
# source (plain IMAP) and dst2, extra JSON keys spliced into each server.
plan() {
  local name=$1 src=$2 dst=$3 header=$4; shift 4
  mkdir -p "$work/$name"
  cat >"$work/$name/plan.json" <<EOF
{"name": "$name",
 "source": {"host": "127.0.0.1", "port": $SRC_PORT, "tls": "none", "auth": "plain"$src},
 "destination": {"host": "127.0.0.1", "port": $DST2_PORT, "tls": "none", "auth": "plain"$dst},
 "accounts": "accounts.csv"}
EOF
  { echo "$header"; printf '%s\n' "$@"; } >"$work/$name/accounts.csv"
  echo "$work/$name/plan.json"
}
exact() { verify "$1:$2" "$DST2_PORT" "$1:$2" --account "$1" >>"$work/verify.log" 2>&1; }
# The password add_users gave USER (PREFIXn -> PREFIXpwn).
pw() { echo "${1%%[0-9]*}pw${1##*[!0-9]}"; }
all_exact() {
  local u
  for u in "$@"; do exact "$u" "$(pw "$u")" || { echo "not exact: $u" >&2; return 1; }; done
}
synced_count() { sql "SELECT count(*) FROM accounts WHERE migration_id = $1 AND state = 'synced'"; }
# wait_until SECS CMD...: polls CMD every 0.2 s.
wait_until() {
  local t=$(($1 * 5)); shift
  while ((t-- > 0)); do "$@" && return 0; sleep 0.2; done
  return 1
}
utc_clock() { date -u -d "@$1" +%H:%M:%S; }

workers=()
for w in 1 2; do
  LEASE_TTL=4 worker_start --id "fleet-$w" && workers+=("$worker_pid")
done
pids+=("${workers[@]}")
worker_pid=

# --- a blackout window covering now: nothing starts until it ends ------------
add_users bo 2 SRC DST2
fill bo1 300 0
fill bo2 300 400
now=$(date +%s)
bo_end=$((now + 20))
p=$(plan blackout ", \"blackout\": [{\"days\": \"daily\", \"from\": \"$(utc_clock $((now - 60)))\",
  \"to\": \"$(utc_clock $bo_end)\", \"time_zone\": \"UTC\"}]" "" \
  "source_login,source_password" "bo1,bopw1" "bo2,bopw2")
m_bo=$(import_plan "$p")
"$COORD" start "$m_bo" >/dev/null 2>>"$work/coordinator.log"
sleep $((bo_end - 6 - $(date +%s)))
started=$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m_bo AND l.reason LIKE 'lease taken%'")
folders=$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
               WHERE a.migration_id = $m_bo")
check "blackout: 6 s before the window ends nothing started ($started leases, $folders folders)" \
  test "$started $folders" = "0 0"
"$COORD" wait "$m_bo" 1 120 >/dev/null 2>>"$work/coordinator.log"
check "blackout: after the window both accounts synced" test "$(synced_count "$m_bo")" = 2
first_start=$(sql "SELECT floor(extract(epoch FROM min(pa.started_at))) FROM pass_accounts pa
                   JOIN accounts a ON a.id = pa.account_id WHERE a.migration_id = $m_bo")
check "blackout: the first account started after the window ended ($((first_start - bo_end)) s after)" \
  test "$first_start" -ge "$bo_end"
check "blackout: both accounts exact" all_exact bo1 bo2

# --- a blackout window that begins while an account runs ------------------------
# A source rate limit of 100 messages/s makes 1,600 messages take 16 s; the
# window begins 10 s after the import and lasts 10 s.  Samples: when it begins
# (some copied), once the account is back in the queue, and 2 s before it ends.
add_users br 1 SRC DST2
fill br1 1600 1000
now=$(date +%s)
br_from=$((now + 10))
br_to=$((br_from + 10))
p=$(plan blackrun ", \"max_messages_per_second\": 100,
  \"blackout\": [{\"from\": \"$(utc_clock $br_from)\", \"to\": \"$(utc_clock $br_to)\"}]" "" \
  "source_login,source_password" "br1,brpw1")
m_br=$(import_plan "$p")
"$COORD" start "$m_br" >/dev/null 2>>"$work/coordinator.log"
copied() { sql "SELECT coalesce(sum(copied_messages), 0) FROM folders f JOIN accounts a
                ON a.id = f.account_id WHERE a.migration_id = $1"; }
# sleep_until EPOCH: sleeps until that second has begun.
sleep_until() { local d; d=$(($1 * 1000 - $(date +%s%3N))); ((d > 0)) && sleep "$((d / 1000)).$(printf %03d $((d % 1000)))"; return 0; }
sleep_until "$br_from"
at_window=$(copied "$m_br")
back_in_queue() { test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_br")" = queued; }
wait_until 8 back_in_queue
state_in_window=$(sql "SELECT state FROM accounts WHERE migration_id = $m_br")
in_window_1=$(copied "$m_br")
sleep_until $((br_to - 2))
in_window_2=$(copied "$m_br")
"$COORD" wait "$m_br" 1 120 >/dev/null 2>>"$work/coordinator.log"
check "blackout begins mid-run: the account stopped at a checkpoint (state $state_in_window; $at_window copied when the window began, $in_window_1 at the stop)" \
  test "$state_in_window" = queued -a "$at_window" -gt 0 -a "$in_window_1" -lt 1600
check "blackout begins mid-run: nothing copied inside the window ($in_window_1 then $in_window_2)" \
  test "$in_window_1" = "$in_window_2"
check "blackout begins mid-run: the state log says why" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m_br AND l.reason LIKE 'a blackout window began%'")" -ge 1
check "blackout begins mid-run: continued after the window and ended synced" \
  test "$(synced_count "$m_br")" = 1
check "blackout begins mid-run: exact" all_exact br1

# --- capacity 1: priority 1 accounts finish before priority 9 start ----------
add_users pr 6 SRC DST2
for i in 1 2 3 4 5 6; do fill "pr$i" 120 $((i * 150)); done
p=$(plan priority ", \"max_connections\": 1" "" "source_login,source_password,priority" \
  "pr1,prpw1,9" "pr2,prpw2,9" "pr3,prpw3,9" "pr4,prpw4,1" "pr5,prpw5,1" "pr6,prpw6,1")
m_pr=$(import_plan "$p")
"$COORD" start "$m_pr" >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_pr" 1 120 >/dev/null 2>>"$work/coordinator.log"
order=$(sql "SELECT string_agg(a.priority::text, ' ' ORDER BY pa.started_at) FROM pass_accounts pa
             JOIN accounts a ON a.id = pa.account_id WHERE a.migration_id = $m_pr")
check "capacity 1: accounts ran in priority order ($order)" test "$order" = "1 1 1 9 9 9"
check "capacity 1: every priority-1 account finished before any priority-9 one started" \
  test "$(sql "SELECT (SELECT max(pa.finished_at) FROM pass_accounts pa JOIN accounts a
                  ON a.id = pa.account_id WHERE a.migration_id = $m_pr AND a.priority = 1)
               < (SELECT min(pa.started_at) FROM pass_accounts pa JOIN accounts a
                  ON a.id = pa.account_id WHERE a.migration_id = $m_pr AND a.priority = 9)")" = t
check "capacity 1: all 6 exact" all_exact pr1 pr2 pr3 pr4 pr5 pr6

# --- a fleet-wide rate limit ----------------------------------------------------
add_users rl 2 SRC DST2
fill rl1 300 2000
fill rl2 300 2400
p=$(plan ratelimit "" ", \"max_messages_per_second\": 150" "source_login,source_password" \
  "rl1,rlpw1" "rl2,rlpw2")
m_rl=$(import_plan "$p")
"$COORD" start "$m_rl" >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_rl" 1 120 >/dev/null 2>>"$work/coordinator.log"
rate=$(sql "SELECT round(600 / extract(epoch FROM max(pa.finished_at) - min(pa.started_at)))
            FROM pass_accounts pa JOIN accounts a ON a.id = pa.account_id
            WHERE a.migration_id = $m_rl")
check "rate limit: 600 messages over 2 workers at $rate messages/s (limit 150)" \
  test "${rate:-999}" -le 165 -a "${rate:-0}" -ge 30
check "rate limit: both accounts exact" all_exact rl1 rl2

# --- a daily byte cap that carries over ----------------------------------------
# 1 MB a day for an account of about 2 MB: it stops at the cap, waits for the
# next UTC day, and goes on from its checkpoint.  The next day is simulated
# by moving the account's day back and its wake-up time to now.
add_users cap 1 SRC DST2
fill cap1 300 3000
p=$(plan cap "" ", \"account_daily_bytes\": \"1MB\"" "source_login,source_password" "cap1,cappw1")
m_cap=$(import_plan "$p")
"$COORD" start "$m_cap" >/dev/null 2>>"$work/coordinator.log"
waiting() { test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_cap")" = waiting; }
wait_until 60 waiting
retry=$(sql "SELECT retry_at = (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day')
             AT TIME ZONE 'UTC' FROM accounts WHERE migration_id = $m_cap")
day_bytes() { sql "SELECT d.bytes FROM account_days d JOIN accounts a ON a.id = d.account_id
                  WHERE a.migration_id = $m_cap"; }
day1=$(day_bytes)
check "daily cap: the account waits for the next UTC midnight after $day1 bytes (cap 1000000)" \
  test "$retry" = t -a "${day1:-0}" -le 1000000 -a "${day1:-0}" -gt 500000
days=1
max_day=$day1
while [[ $(sql "SELECT state FROM accounts WHERE migration_id = $m_cap") == waiting && $days -lt 6 ]]; do
  sql "UPDATE account_days SET day = day - 1 WHERE account_id IN (SELECT id FROM accounts
       WHERE migration_id = $m_cap); UPDATE accounts SET retry_at = now()
       WHERE migration_id = $m_cap" >/dev/null
  days=$((days + 1))
  wait_until 60 bash -c "[[ \$(psql '$MAILSHIFT_DB' -qAt -c \"SELECT state = 'synced' OR (state
    = 'waiting' AND retry_at > now()) FROM accounts WHERE migration_id = $m_cap\") == t ]]"
  b=$(day_bytes)
  [[ $b -gt $max_day ]] && max_day=$b
done
check "daily cap: synced after $days days, at most $max_day bytes on any day" \
  test "$(synced_count "$m_cap")" = 1 -a "$days" -ge 2 -a "$max_day" -le 1000000
check "daily cap: not an error (no failed state, no attempts)" \
  test "$(sql "SELECT attempts || ' ' || (SELECT count(*) FROM account_log WHERE account_id = a.id
               AND to_state = 'failed') FROM accounts a WHERE migration_id = $m_cap")" = "0 0"
check "daily cap: exact after the carry-over" all_exact cap1

# --- several source profiles ------------------------------------------------------
# Profile "old" is the source server; profile "legacy" is another server (dst,
# used here as a second source).
add_users mp 2 SRC DST2
add_user DST mp2 mppw2
fill mp1 100 3500
python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$DST_DIR/mail/mp2/Maildir" \
  --layout maildirpp --limit 100 --offset 3700 --seed 7 >/dev/null
mkdir -p "$work/profiles"
cat >"$work/profiles/plan.json" <<EOF
{"name": "profiles",
 "sources": {"old": {"host": "127.0.0.1", "port": $SRC_PORT, "tls": "none"},
             "legacy": {"host": "127.0.0.1", "port": $DST_PORT, "tls": "none", "max_connections": 2}},
 "destination": {"host": "127.0.0.1", "port": $DST2_PORT, "tls": "none"},
 "accounts": "accounts.csv"}
EOF
printf 'source_login,source_password,source\nmp1,mppw1,old\nmp2,mppw2,legacy\n' \
  >"$work/profiles/accounts.csv"
m_mp=$(import_plan "$work/profiles/plan.json")
"$COORD" start "$m_mp" >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_mp" 1 120 >/dev/null 2>>"$work/coordinator.log"
check "source profiles: the account of each profile synced" test "$(synced_count "$m_mp")" = 2
check "source profiles: the 'old' account exact" exact mp1 mppw1
check "source profiles: the 'legacy' account (from the other server) exact" \
  python3 "$infra/verify.py" --src "127.0.0.1:$DST_PORT:mp2:mppw2" --dst "127.0.0.1:$DST2_PORT:mp2:mppw2" \
  --account mp2

# --- accounts added, repaired and removed while the migration runs --------------
add_users op 5 SRC DST2
for i in 1 2 3 4 5; do fill "op$i" 200 $((i * 250)); done
# op2's password is wrong in the plan; op3 is removed mid-run.  A rate limit
# keeps the pass running long enough to change it.
p=$(plan ops ", \"max_messages_per_second\": 150" "" "source_login,source_password" \
  "op1,oppw1" "op2,wrong" "op3,oppw3")
m_op=$(import_plan "$p")
"$COORD" start "$m_op" >/dev/null 2>>"$work/coordinator.log"
check "ops: the wrong password is refused by the credential check" \
  test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_op AND src_login = 'op2'")" = auth_failed
printf 'source_login,source_password\nop4,oppw4\nop5,oppw5\n' >"$work/ops/more.csv"
check "ops: two accounts added to the running migration join pass 1" \
  bash -c "\"$COORD\" add $m_op \"$work/ops/more.csv\" 2>>\"$work/coordinator.log\" | grep -q '^2 accounts joined pass 1'"
printf 'source_login,source_password\nOP1,again\n' >"$work/ops/dup.csv"
"$COORD" add "$m_op" "$work/ops/dup.csv" >"$work/dup.out" 2>&1
dup_rc=$?
check "ops: adding an account already there (in other case) is refused, naming the line (exit $dup_rc)" \
  grep -q "dup.csv: line 2: .*already exists.*(nothing added)" "$work/dup.out"
check "ops: the repaired password is verified and the account joins the pass" \
  bash -c "echo oppw2 | \"$COORD\" passwd $m_op op2 both 2>>\"$work/coordinator.log\" | grep -q '^1 accounts joined pass 1'"
check "ops: account removed from the running migration" \
  "$COORD" remove "$m_op" op3
"$COORD" wait "$m_op" 1 180 >/dev/null 2>>"$work/coordinator.log"
check "ops: the 4 accounts left all synced, op3 is gone" \
  test "$(synced_count "$m_op") $(sql "SELECT count(*) FROM accounts WHERE migration_id = $m_op")" = "4 4"
check "ops: op1, op2 (repaired), op4 and op5 (added) exact" all_exact op1 op2 op4 op5
check "ops: no password in any log" \
  bash -c "! grep -rq -e oppw2 -e oppw4 \"$work\"/*.log"

# --- servers that ask to slow down ---------------------------------------------
# Fault-injecting proxies in front of both servers: every 6th source command
# of the copy answers NO [THROTTLED] with a suggested backoff, every 3rd new
# source connection is refused with BYE [UNAVAILABLE] (server busy), and
# every 40th APPEND to the destination is throttled.  None of it is an error.
add_users th 1 SRC DST2
fill th1 400 4000
# proxy NAME UPSTREAM ARGS...: starts a proxy, sets proxy_port.
proxy() {
  local name=$1 upstream=$2; shift 2
  serve "$name" python3 "$infra/throttle_proxy.py" --port 0 --upstream "$upstream" \
    --log "$work/$name.faults" "$@"
  proxy_port=$served_port
}
proxy srcproxy "$SRC_PORT" --throttle-every 6 --commands "UID FETCH,SELECT,EXAMINE,STATUS" \
  --bye-every 3
src_proxy=$proxy_port
proxy dstproxy "$DST2_PORT" --throttle-every 40 --commands APPEND
dst_proxy=$proxy_port
mkdir -p "$work/throttle"
cat >"$work/throttle/plan.json" <<EOF
{"name": "throttle",
 "source": {"host": "127.0.0.1", "port": $src_proxy, "tls": "none"},
 "destination": {"host": "127.0.0.1", "port": $dst_proxy, "tls": "none"},
 "accounts": "accounts.csv"}
EOF
printf 'source_login,source_password\nth1,thpw1\n' >"$work/throttle/accounts.csv"
m_th=$(import_plan "$work/throttle/plan.json")
"$COORD" start "$m_th" >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_th" 1 300 >/dev/null 2>>"$work/coordinator.log"
faults() { grep -c "$2" "$work/$1.faults"; }
check "throttling: both kinds of fault injected ($(faults srcproxy throttle) throttled, $(faults srcproxy bye) busy, $(faults dstproxy throttle) appends)" \
  test "$(faults srcproxy throttle)" -ge 3 -a "$(faults srcproxy bye)" -ge 1 \
  -a "$(faults dstproxy throttle)" -ge 3
check "throttling: the account ended synced, with no failed attempt and no message error" \
  test "$(sql "SELECT state || ' ' || attempts || ' ' || (SELECT count(*) FROM message_errors
               WHERE account_id = a.id) || ' ' || (SELECT count(*) FROM account_log WHERE
               account_id = a.id AND to_state = 'failed') FROM accounts a
               WHERE migration_id = $m_th")" = "synced 0 0 0"
check "throttling: the workers waited the servers out" \
  grep -q "asks to slow down" "$work"/worker.*.log
check "throttling: exact (nothing lost or duplicated by the interrupted batches)" all_exact th1

# --- passes as objects: bulk, delta for some accounts, final -------------------
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:pr4:prpw4" append INBOX 30 --corpus "$corpus" \
  --seed 4 >/dev/null
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:pr4:prpw4" flags INBOX 10 --seed 4 >/dev/null
"$COORD" delta "$m_pr" pr4 >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_pr" 2 60 >/dev/null 2>>"$work/coordinator.log"
"$COORD" delta "$m_pr" --final >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_pr" 3 60 >/dev/null 2>>"$work/coordinator.log"
"$COORD" passes "$m_pr" >"$work/passes.txt" 2>>"$work/coordinator.log"
check "passes: bulk (6 accounts), delta (1 account), final (6 accounts), each finished" \
  test "$(awk '{print $2, $3, $7, $8}' "$work/passes.txt" | tr '\n' ' ')" = \
  "1 bulk 6 (6 2 delta 1 (1 3 final 6 (6 "
check "passes: the bulk pass counted 720 messages, the final pass none" \
  test "$(sql "SELECT string_agg(coalesce(s, 0)::text, ' ' ORDER BY n) FROM (SELECT p.number n,
               (SELECT sum(f.messages) FROM pass_folders f JOIN folders fo ON fo.id = f.folder_id
                JOIN accounts a ON a.id = fo.account_id WHERE a.migration_id = $m_pr
                AND f.number = p.number) s FROM passes p WHERE p.migration_id = $m_pr) x")" \
  = "720 30 0"
check "passes: after the final pass all 6 exact" all_exact pr1 pr2 pr3 pr4 pr5 pr6

# --- live totals from events agree with the checkpoints ----------------------------
live_agrees() {
  test "$(sql "SELECT count(*) FROM accounts a JOIN live_totals l ON l.account_id = a.id
               AND l.pass = 1 WHERE a.migration_id = $m_op AND l.messages = (SELECT
               sum(copied_messages) FROM folders WHERE account_id = a.id)")" = 4
}
check "events: live totals equal PostgreSQL's counters for every account of the pass" \
  wait_until 10 live_agrees

for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done

# --- workers that take one account at a time ---------------------------------------
# Two workers with room for one account each and six accounts: no more jobs
# are published than they have room for, a job that reaches a full worker is
# handed back and goes to the other one, and both work.
add_users one 6 SRC DST2
for i in 1 2 3 4 5 6; do fill "one$i" 150 $((4500 + i * 160)); done
p=$(plan onebyone "" "" "source_login,source_password" \
  $(for i in 1 2 3 4 5 6; do echo "one$i,onepw$i"; done))
m_one=$(import_plan "$p")
workers=()
for w in a b; do
  LEASE_TTL=4 worker_start --id "one-$w" --accounts 1 && workers+=("$worker_pid")
done
pids+=("${workers[@]}")
worker_pid=
( while :; do sql "SELECT count(*) FROM accounts WHERE migration_id = $m_one AND state = 'running'"
    sleep 0.1; done ) >"$work/one.samples" 2>/dev/null &
sampler=$!
"$COORD" start "$m_one" >/dev/null 2>>"$work/coordinator.log"
"$COORD" wait "$m_one" 1 180 >/dev/null 2>>"$work/coordinator.log"
kill "$sampler"; wait "$sampler" 2>/dev/null
peak=$(sort -n "$work/one.samples" | tail -n 1)
used=$(sql "SELECT count(DISTINCT substring(l.reason from 'lease taken by (one-[ab])'))
            FROM account_log l JOIN accounts a ON a.id = l.account_id
            WHERE a.migration_id = $m_one AND l.reason LIKE 'lease taken by one-%'")
check "one at a time: 6 accounts synced over 2 workers of capacity 1 ($used used, at most $peak running)" \
  test "$(synced_count "$m_one")" = 6 -a "$used" = 2 -a "${peak:-9}" -le 2
check "one at a time: all 6 exact" all_exact one1 one2 one3 one4 one5 one6
for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done

# --- a worker cut off from PostgreSQL when its job arrives ----------------------
# The only worker reaches PostgreSQL through a TCP gate, which is stopped: the
# job that arrives then cannot be started (15 lease attempts, a second apart).
# The worker remembers it and hands it back as soon as PostgreSQL answers
# again, so the account runs then, not after the scheduler's 300 s republish.
add_users cut 1 SRC DST2
fill cut1 300 5600
p=$(plan cutoff "" "" "source_login,source_password" "cut1,cutpw1")
m_cut=$(import_plan "$p")
pg_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$MAILSHIFT_DB")
# gate PORT: starts the gate to PostgreSQL on PORT (0: any), sets gate_port.
gate() {
  serve gate python3 "$infra/tcp_gate.py" --port "$1" --upstream "$pg_port"
  gate_pid=$served_pid gate_port=$served_port
}
gate 0
MAILSHIFT_DB="host=127.0.0.1 port=$gate_port dbname=mailshift user=postgres" LEASE_TTL=4 \
  worker_start --id cut-w
cut_pid=$worker_pid
pids+=("$cut_pid")
worker_pid=
kill -TERM "$gate_pid"; wait "$gate_pid" 2>/dev/null
"$COORD" start "$m_cut" >/dev/null 2>>"$work/coordinator.log"
wait_until 40 grep -q "job not started" "$worker_log"
not_started=$?
gate "$gate_port"
t0=$(date +%s)
"$COORD" wait "$m_cut" 1 120 >/dev/null 2>>"$work/coordinator.log"
cut_s=$(($(date +%s) - t0))
check "cut off from PostgreSQL: the job that arrived was not started, then handed back; synced $cut_s s after PostgreSQL answered again" \
  test "$not_started" = 0 -a "$(synced_count "$m_cut")" = 1 -a "$cut_s" -lt 60 \
  -a "$(grep -c "job handed back" "$worker_log")" -ge 1
check "cut off from PostgreSQL: exact" all_exact cut1
kill -TERM "$cut_pid" 2>/dev/null; wait "$cut_pid" 2>/dev/null
kill -TERM "$gate_pid" 2>/dev/null; wait "$gate_pid" 2>/dev/null

suite_end
