#!/usr/bin/env bash
# End-to-end tests of operator safety against real servers started here
# (PostgreSQL, Dovecot, the Kafka-protocol broker): bounded waits for a
# PostgreSQL that never answers or freezes mid-session, a worker with the
# wrong key (refused, accounts untouched, then copied exactly by a correctly
# keyed worker), no secrets in core files of a worker aborted mid-copy, key
# file permissions, and the answers to operator mistakes (tls none, absurd
# sizes, bad UTF-8, start before verify, migrations and passes that do not
# exist, two workers on one id, cancel of finished accounts).
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-operator-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-18700}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

# The core pattern is restored however the suite ends.
core_pattern_file=/proc/sys/kernel/core_pattern
core_pattern_saved=$(cat "$core_pattern_file" 2>/dev/null || true)
restore_core_pattern() {
  [[ -n $core_pattern_saved && -w $core_pattern_file ]] &&
    [[ $(cat "$core_pattern_file") != "$core_pattern_saved" ]] &&
    printf '%s\n' "$core_pattern_saved" >"$core_pattern_file" 2>/dev/null
  return 0
}
operator_cleanup() { restore_core_pattern; suite_cleanup; }

suite_start
trap operator_cleanup EXIT

# run_timed NAME CMD...: runs CMD with its output in $work/NAME.out; sets rc
# and secs (wall time, whole seconds, rounded up).
run_timed() {
  local name=$1 t0 t1; shift
  t0=$(date +%s%N)
  timeout 120 "$@" >"$work/$name.out" 2>&1
  rc=$?
  t1=$(date +%s%N)
  secs=$(((t1 - t0 + 999999999) / 1000000000))
}
has() { grep -qF -- "$2" "$work/$1.out"; }
lacks() { ! grep -qF -- "$2" "$work/$1.out"; }
wait_until() {
  local t=$(($1 * 5)); shift
  while ((t-- > 0)); do "$@" && return 0; sleep 0.2; done
  return 1
}
plan_dir() { dirname "$1"; }

# --- a PostgreSQL that accepts and never answers -------------------------------
serve silent python3 "$infra/silent_server.py"
silent_port=$served_port
silent_db="host=127.0.0.1 port=$silent_port dbname=mailshift user=postgres password=DbS3cretPw"
echo '{}' >"$work/empty.json"
for what in status import worker; do
  case $what in
  status) cmd=("$COORD" status 1) ;;
  import) cmd=("$COORD" import "$work/empty.json") ;;
  worker) cmd=("$WORKER" --id silent-db) ;;
  esac
  MAILSHIFT_DB=$silent_db MAILSHIFT_DB_TIMEOUT=3 run_timed "silent-$what" "${cmd[@]}"
  check "never-answering PostgreSQL: $what exits non-zero in $secs s (bound 3 s, exit $rc)" \
    test "$rc" -ne 0 -a "$rc" -ne 124 -a "$secs" -le 6
  check "never-answering PostgreSQL: $what names host, port and the timeout, not the password" \
    eval "has silent-$what 'at 127.0.0.1:$silent_port' && has silent-$what 'connect timeout 3 s' &&
          lacks silent-$what DbS3cretPw"
done
MAILSHIFT_DB=$silent_db run_timed silent-default "$COORD" status 1
check "never-answering PostgreSQL: the default bound is 10 s ($secs s, exit $rc)" \
  test "$rc" -ne 0 -a "$secs" -ge 9 -a "$secs" -le 14
check "never-answering PostgreSQL: the default message names the 10 s bound" \
  has silent-default "connect timeout 10 s"

# --- operator mistakes in the plan ---------------------------------------------
add_users wk 2 SRC DST2
fill_corpus wk1 300
fill_corpus wk2 200
migrations() { sql "SELECT count(*) FROM migrations"; }
before=$(migrations)
p=$(make_plan huge "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" "wk1,wkpw1,wk1,wkpw1")
sed -i 's/"max_connections": 10}/"max_connections": 10, "max_bytes_per_second": "1e17TiB"}/' "$p"
run_timed huge "$COORD" import "$p"
check "absurd rate \"1e17TiB\" refused (exit $rc), with the JSON path, nothing imported" \
  eval 'test "$rc" -ne 0 -a "$(migrations)" = "$before" &&
        has huge "source.max_bytes_per_second: at most 1 PiB"'
sed -i 's/"1e17TiB"/"-5MB"/' "$p"
run_timed negative "$COORD" import "$p"
check "negative rate refused (exit $rc)" \
  eval 'test "$rc" -ne 0 && has negative "source.max_bytes_per_second: must not be negative"'

p=$(make_plan latin1 "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "wk1,wkpw1,wk1,wkpw1" "$(printf 'j\xfcrgen,pw,j\xfcrgen,pw')")
run_timed latin1 "$COORD" import "$p"
check "invalid UTF-8 in the CSV refused (exit $rc) naming file, line and column, nothing imported" \
  eval 'test "$rc" -ne 0 -a "$(migrations)" = "$before" &&
        has latin1 "latin1/accounts.csv:3: column 1 (source_login): not valid UTF-8: byte 0xfc" &&
        lacks latin1 postgresql'

# --- tls none, start before verify, key file permissions -------------------------
p=$(make_plan wk "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" \
  "wk1,wkpw1,wk1,wkpw1" "wk2,wkpw2,wk2,wkpw2")
run_timed wk-import "$COORD" import "$p"
m_wk=$(grep -E '^[0-9]+$' "$work/wk-import.out")
check "tls none: import warns naming the profile (exit $rc)" \
  eval 'test "$rc" = 0 && has wk-import "warning: source '"'default'"' uses tls none: passwords travel in clear" &&
        has wk-import "warning: the destination uses tls none"'
run_timed wk-status "$COORD" status "$m_wk"
check "tls none: status shows the warning" \
  has wk-status "warning: source 'default' uses tls none: passwords travel in clear"
run_timed early-start "$COORD" start "$m_wk"
check "start before verify exits non-zero ($rc) and says to verify first" \
  eval 'test "$rc" -ne 0 && has early-start "no verified accounts to run: run \`mailshift-coordinator verify $m_wk\` first (accounts: 2 new)"'
check "start before verify queued nothing and recorded no pass" \
  test "$(sql "SELECT (SELECT count(*) FROM accounts WHERE migration_id = $m_wk AND state <> 'new')
               + (SELECT count(*) FROM passes WHERE migration_id = $m_wk)")" = 0

# Paused before any pass, then resumed: back to where they were, not "synced".
run_timed early-pause "$COORD" pause "$m_wk"
run_timed early-resume "$COORD" resume "$m_wk"
check "pause then resume before any pass: the accounts are new again, not synced" \
  test "$(sql "SELECT string_agg(state, ',') FROM accounts WHERE migration_id = $m_wk")" = "new,new"

cp "$MAILSHIFT_KEY_FILE" "$work/open.key"
chmod 644 "$work/open.key"
MAILSHIFT_KEY_FILE=$work/open.key run_timed open-key-verify "$COORD" verify "$m_wk"
check "key file mode 0644: verify refused (exit $rc) with the chmod to run" \
  eval 'test "$rc" -ne 0 && has open-key-verify "chmod 600 $work/open.key"'
MAILSHIFT_KEY_FILE=$work/open.key run_timed open-key-worker "$WORKER" --id open-key
check "key file mode 0644: the worker refuses to start (exit $rc)" \
  eval 'test "$rc" -ne 0 -a "$rc" -ne 124 && has open-key-worker "chmod 600 $work/open.key"'
check "key file mode 0644: the accounts were not touched" \
  test "$(sql "SELECT string_agg(state, ',') FROM accounts WHERE migration_id = $m_wk")" = "new,new"
MAILSHIFT_KEY_FILE=$work/open.key MAILSHIFT_KEY_FILE_PERMISSIVE=1 run_timed open-key-permissive \
  "$COORD" verify "$m_wk"
check "key file mode 0644 with MAILSHIFT_KEY_FILE_PERMISSIVE=1: verify works and warns (exit $rc)" \
  eval 'test "$rc" = 0 && has open-key-permissive "warning: $work/open.key: key file is readable"'
check "key file 0600 created by the suite is accepted (mode $(stat -c %a "$MAILSHIFT_KEY_FILE"))" \
  test "$(stat -c %a "$MAILSHIFT_KEY_FILE")" = 600
run_timed wk-start "$COORD" start "$m_wk"
check "start after verify exits 0 ($rc)" test "$rc" = 0

# --- migrations and passes that do not exist ---------------------------------------
for c in "status 9999" "wait 9999 1 1" "passes 9999" "verify 9999" "pause 9999" "resume 9999" \
  "cancel 9999" "start 9999" "delta 9999" "status 9999 wk1"; do
  # shellcheck disable=SC2086
  run_timed missing "$COORD" $c
  check "$c: exit $rc, \"migration 9999 does not exist\"" \
    eval 'test "$rc" = 1 && has missing "migration 9999 does not exist"'
done
for c in "passes $m_wk 7" "wait $m_wk 7 1"; do
  # shellcheck disable=SC2086
  run_timed missing "$COORD" $c
  check "$c: exit $rc, \"pass 7 of migration $m_wk does not exist\"" \
    eval 'test "$rc" = 1 && has missing "pass 7 of migration $m_wk does not exist"'
done

# --- a worker with the wrong key ------------------------------------------------------
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/wrong.key")
MAILSHIFT_KEY_FILE=$work/wrong.key run_timed wrong-key "$WORKER" --id wrong-key
check "wrong key: the worker refuses to start (exit $rc, $secs s)" \
  test "$rc" -ne 0 -a "$rc" -ne 124 -a "$secs" -le 30
check "wrong key: the message names the key file and what to do" \
  eval 'has wrong-key "$work/wrong.key: this key" && has wrong-key "cannot decrypt the database'"'"'s key check" &&
        has wrong-key "Give the key file the plans were imported with"'
check "wrong key: the key itself is in no message" \
  bash -c "! grep -qiF -e '$(cat "$work/wrong.key")' -e '$(cat "$MAILSHIFT_KEY_FILE")' $work/wrong-key.out"
check "wrong key: both accounts untouched (queued, no lease taken, error budget unspent)" \
  test "$(sql "SELECT string_agg(state || '/' || attempts, ',' ORDER BY id) FROM accounts
               WHERE migration_id = $m_wk") $(sql "SELECT count(*) FROM account_log l
               JOIN accounts a ON a.id = l.account_id WHERE a.migration_id = $m_wk
               AND l.reason LIKE 'lease taken%'")" = "queued/0,queued/0 0"

# The coordinator's commands that encrypt or decrypt refuse the wrong key too.
secrets_sum() { sql "SELECT md5(string_agg(encode(src_secret, 'hex') || encode(dst_secret, 'hex'), ','
                     ORDER BY id)) FROM accounts WHERE migration_id = $m_wk"; }
secrets_before=$(secrets_sum)
before=$(migrations)
p=$(make_plan otherkey "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" "wk1,wkpw1,wk1,wkpw1")
MAILSHIFT_KEY_FILE=$work/wrong.key run_timed other-key-import "$COORD" import "$p"
check "wrong key: import refused (exit $rc), nothing imported" \
  eval 'test "$rc" -ne 0 -a "$(migrations)" = "$before" && has other-key-import "cannot decrypt the database'"'"'s key check"'
MAILSHIFT_KEY_FILE=$work/wrong.key run_timed other-key-verify "$COORD" verify "$m_wk"
check "wrong key: verify refused (exit $rc)" \
  eval 'test "$rc" -ne 0 && has other-key-verify "cannot decrypt the database'"'"'s key check"'
MAILSHIFT_KEY_FILE=$work/wrong.key run_timed other-key-passwd "$COORD" passwd "$m_wk" wk1 both <<<newpw
check "wrong key: passwd refused (exit $rc), the stored secrets unchanged" \
  eval 'test "$rc" -ne 0 -a "$(secrets_sum)" = "$secrets_before" &&
        has other-key-passwd "cannot decrypt the database'"'"'s key check"'
check "wrong key: the accounts still queued with their budgets after those commands" \
  test "$(sql "SELECT string_agg(state || '/' || attempts, ',' ORDER BY id) FROM accounts
               WHERE migration_id = $m_wk")" = "queued/0,queued/0"

# The old behaviour's damage, as it was left: an account failed with its error
# budget spent.  resume revives it with a fresh budget.
sql "UPDATE accounts SET state = 'failed', attempts = error_budget, retry_at = NULL,
     last_error = 'cannot decrypt (wrong key or corrupted data)'
     WHERE migration_id = $m_wk AND src_login = 'wk2'" >/dev/null
run_timed resume "$COORD" resume "$m_wk"
check "resume re-queues a failed account of the current pass with a fresh budget (exit $rc)" \
  eval 'test "$rc" = 0 -a "$(sql "SELECT state || '"'/'"' || attempts FROM accounts
        WHERE migration_id = $m_wk AND src_login = '"'wk2'"'")" = queued/0 &&
        has resume "1 accounts resumed"'

LEASE_TTL=10 worker_start --id op-1
"$COORD" wait "$m_wk" 1 180 >/dev/null 2>>"$work/coordinator.log"
check "right key: both accounts synced" \
  test "$(sql "SELECT string_agg(state, ',') FROM accounts WHERE migration_id = $m_wk")" = "synced,synced"
check "right key: wk1 exact" verify wk1:wkpw1 "$DST2_PORT" wk1:wkpw1 --account wk1
check "right key: wk2 exact" verify wk2:wkpw2 "$DST2_PORT" wk2:wkpw2 --account wk2

# --- two workers on one id ----------------------------------------------------------
run_timed dup-id "$WORKER" --id op-1
check "a second worker with a live worker's id refuses to start (exit $rc, $secs s)" \
  eval 'test "$rc" -ne 0 -a "$rc" -ne 124 && has dup-id "worker id op-1 is in use by another live worker"'
check "the first worker with that id still runs" kill -0 "$worker_pid"

# --- cancel leaves finished accounts alone ------------------------------------------
run_timed cancel-synced "$COORD" cancel "$m_wk"
check "cancel of a synced migration: exit $rc, says 0 cancelled and 2 finished" \
  eval 'test "$rc" = 0 && has cancel-synced "0 accounts cancelled, 2 already finished"'
check "cancel of a synced migration: both accounts stay synced" \
  test "$(sql "SELECT string_agg(state, ',') FROM accounts WHERE migration_id = $m_wk")" = "synced,synced"

# --- a secret that does not decrypt during a run (defence in depth) -------------------
add_users kf 1 SRC DST2
fill_corpus kf1 50
p=$(make_plan kf "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" "kf1,kfpw1,kf1,kfpw1")
m_kf=$(import_plan "$p")
sql "UPDATE accounts SET src_secret = decode('01' || repeat('ab', 40), 'hex')
     WHERE migration_id = $m_kf" >/dev/null
"$COORD" start "$m_kf" >/dev/null 2>>"$work/coordinator.log"
# The worker's key decrypts the database's key check, so the key is right and
# this row is damaged: the account fails naming the remedy, and passwd repairs it.
kf_failed() { test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_kf")" = failed; }
wait_until 60 kf_failed
kf_rc=$?
check "a damaged secret (the key proven right): the account fails" test "$kf_rc" = 0
check "a damaged secret: the state log says the secret is damaged and names passwd" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m_kf AND l.reason LIKE '%stored secret is damaged%passwd%'")" -ge 1
kf_takes=$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
                WHERE a.migration_id = $m_kf AND l.reason LIKE 'lease taken%'")
check "a damaged secret: retried with backoff, not in a loop ($kf_takes runs so far)" \
  test "$kf_takes" -le 3

# --- PostgreSQL frozen in the middle of a session -------------------------------------
# wait polls PostgreSQL through a gate; the gate is frozen (SIGSTOP: the
# connection stays open, nothing is forwarded).  With a statement timeout of
# 2 s the client-side bound is 12 s.
serve gate python3 "$infra/tcp_gate.py" --port 0 --upstream "$MAILSHIFT_PORT_BASE"
gate_pid=$served_pid
gate_db="host=127.0.0.1 port=$served_port dbname=mailshift user=postgres"
MAILSHIFT_DB=$gate_db MAILSHIFT_DB_STATEMENT_TIMEOUT=2 "$COORD" wait "$m_kf" 1 600 \
  >"$work/frozen-wait.out" 2>&1 &
wait_pid=$!
sleep 2
kill -STOP "$gate_pid"
t0=$(date +%s)
for _ in $(seq 1 300); do kill -0 "$wait_pid" 2>/dev/null || break; sleep 0.1; done
wait "$wait_pid"
rc=$?
secs=$(($(date +%s) - t0))
kill -CONT "$gate_pid"
check "PostgreSQL frozen mid-session: wait exits non-zero (exit $rc) within the bound ($secs s of 12)" \
  test "$rc" -ne 0 -a "$secs" -le 16
check "PostgreSQL frozen mid-session: the message names host, port and the bound" \
  eval 'grep -qF "PostgreSQL at 127.0.0.1:$served_port did not answer within 12 s" "$work/frozen-wait.out"'
run_timed cancel-kf "$COORD" cancel "$m_kf"
check "cancel of a failed account with retries left: exit $rc, 1 cancelled, 0 finished" \
  eval 'test "$rc" = 0 && has cancel-kf "1 accounts cancelled, 0 already finished"'

# The remedy the message names: passwd sets the secret again and the account
# completes.
add_users kr 1 SRC DST2
fill_corpus kr1 50
p=$(make_plan kr "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" "kr1,krpw1,kr1,krpw1")
m_kr=$(import_plan "$p")
sql "UPDATE accounts SET src_secret = decode('01' || repeat('ab', 40), 'hex')
     WHERE migration_id = $m_kr" >/dev/null
"$COORD" start "$m_kr" >/dev/null 2>>"$work/coordinator.log"
kr_is() { test "$(sql "SELECT state FROM accounts WHERE migration_id = $m_kr")" = "$1"; }
wait_until 60 kr_is failed
"$COORD" passwd "$m_kr" kr1 source <<<krpw1 >/dev/null 2>>"$work/coordinator.log"
wait_until 120 kr_is synced
check "a damaged secret set again with passwd: the account completes, exact" \
  eval 'kr_is synced && verify kr1:krpw1 "$DST2_PORT" kr1:krpw1 --account kr'
worker_stop

# A worker whose PostgreSQL freezes: its beat waits at most the bound, so a
# SIGTERM is obeyed (without the bound the beat would wait for the kernel).
MAILSHIFT_DB=$gate_db MAILSHIFT_DB_STATEMENT_TIMEOUT=2 worker_start --id op-gated
gated_log=$worker_log
kill -STOP "$gate_pid"
sleep 3
t0=$(date +%s)
kill -TERM "$worker_pid"
for _ in $(seq 1 600); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.1; done
secs=$(($(date +%s) - t0))
gated_alive=no
kill -0 "$worker_pid" 2>/dev/null && gated_alive=yes
kill -CONT "$gate_pid"
worker_stop
check "PostgreSQL frozen under a worker: SIGTERM obeyed within the bound ($secs s; alive after: $gated_alive)" \
  test "$gated_alive" = no -a "$secs" -le 25
check "PostgreSQL frozen under a worker: its log names host, port and the bound" \
  grep -qF "PostgreSQL at 127.0.0.1:$served_port did not answer within 12 s" "$gated_log"

# --- no secrets in core files of a worker aborted mid-copy ------------------------------
# The core pattern is pointed to $work/cores while this runs (restored right
# after) when it is writable; else its current value stands.  Checked: every
# file in the worker's working directory, in the pattern's directory and in
# /var/lib/systemd/coredump written since the abort.  A control process
# holding the password, aborted the same way, shows that a core would be
# written and found.
cores=$work/cores
mkdir -p "$cores"
if [[ -w $core_pattern_file ]]; then
  printf '%s\n' "$cores/core.%e.%p" >"$core_pattern_file"
fi
pattern=$(cat "$core_pattern_file")
pattern_dir=$cores
[[ $pattern == /* ]] && pattern_dir=$(dirname "$pattern")
add_users ab 1 SRC DST2
fill_corpus ab1
p=$(make_plan ab "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST2_PORT" none)" "ab1,abpw1,ab1,abpw1")
m_ab=$(import_plan "$p")
marker=$work/abort-start
touch "$marker"
(cd "$cores" && ulimit -c unlimited &&
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}disable_coredump=0:detect_leaks=0 \
    exec "$WORKER" --id op-abort --batch-count 5 --lease-ttl 10 >"$work/abort-worker.log" 2>&1) &
abort_pid=$!
pids+=("$abort_pid")
wait_until 60 grep -q assigned "$work/abort-worker.log"
"$COORD" start "$m_ab" >/dev/null 2>>"$work/coordinator.log"
ab_copied() { test "$(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders f JOIN accounts a
                            ON a.id = f.account_id WHERE a.migration_id = $m_ab")" -gt 20; }
wait_until 60 ab_copied
ab_state=$(sql "SELECT state FROM accounts WHERE migration_id = $m_ab")
locked_kb=$(awk '/^VmLck:/ { print $2 }' "/proc/$abort_pid/status" 2>/dev/null)
kill -ABRT "$abort_pid"
wait "$abort_pid"
abort_rc=$?
check "abort: the worker was copying ($ab_state) and died by SIGABRT (exit $abort_rc)" \
  test "$ab_state" = running -a "$abort_rc" = 134
# ASan turns mlock into a no-op: the lock is checked with an uninstrumented
# worker only (the unit test checks it in the release build).
if grep -q __asan_init "$WORKER"; then
  echo "# abort: VmLck not checked: this worker is built with ASan, which ignores mlock"
else
  check "abort: the worker's key page was locked in memory (VmLck ${locked_kb:-?} kB)" \
    test "${locked_kb:-0}" -gt 0
fi
# The control: the same password and key in an ordinary process.
(cd "$cores" && ulimit -c unlimited &&
  exec python3 -c 'import sys, time; held = [sys.argv[1] * 3, open(sys.argv[2]).read()]; time.sleep(60)' \
    abpw1 "$MAILSHIFT_KEY_FILE") &
control_pid=$!
sleep 1
kill -ABRT "$control_pid"
wait "$control_pid" 2>/dev/null
sleep 1
key_hex=$(cat "$MAILSHIFT_KEY_FILE")
found=()
for dir in "$cores" "$pattern_dir" /var/lib/systemd/coredump; do
  [[ -d $dir ]] || continue
  while IFS= read -r f; do found+=("$f"); done < <(find "$dir" -maxdepth 1 -type f -newer "$marker")
done
mapfile -t found < <(printf '%s\n' "${found[@]}" | sort -u | grep .)
# secrets_in FILE: how many lines of the (decompressed) file hold the password
# or the key's hex.  grep reads it all (no -q: with pipefail, an early exit
# would fail the pipeline and hide a match).
secrets_in() {
  case $1 in
  *.zst) zstd -dc "$1" 2>/dev/null ;;
  *.xz) xz -dc "$1" 2>/dev/null ;;
  *.lz4) lz4 -dc "$1" 2>/dev/null ;;
  *) zcat -f "$1" 2>/dev/null ;;
  esac | grep -caF -e abpw1 -e "$key_hex"
}
control_core=
leaks=()
for f in "${found[@]}"; do
  case $f in *[.-]$control_pid | *[.-]$control_pid.*) control_core=$f; continue ;; esac
  [[ $(secrets_in "$f") -gt 0 ]] && leaks+=("$f")
done
restore_core_pattern
echo "# core files found since the abort: ${found[*]:-none} (pattern $pattern)"
check "abort: no core file holds the password or the key (${#found[@]} files checked, leaks: ${leaks[*]:-none})" \
  test "${#leaks[@]}" = 0
check "abort: the worker left no core file at all" \
  bash -c "! ls $cores $pattern_dir 2>/dev/null | grep -q '[.-]$abort_pid\$'"
check "abort: control: an unprotected process's core is written there and holds the password" \
  eval '[[ -n $control_core ]] && [[ $(secrets_in "$control_core") -gt 0 ]]'
rm -f "$cores"/core.* 2>/dev/null

suite_end
