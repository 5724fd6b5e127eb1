#!/usr/bin/env bash
# End-to-end tests of the MX-aware final pass against real servers started
# here (PostgreSQL, Dovecot, the Kafka-protocol broker) and a real DNS server:
# Debian's dnsmasq, run by this script on a loopback port with its own config
# (dnsmasq re-reads hosts files on SIGHUP but not MX records: a switch is a
# restart with the new records).  The scheduler daemon watches the test
# domain's MX: a partial switch (one of two MX records) starts nothing; a
# full switch starts the final pass after the settle time, by itself, for
# the domain's accounts only, and the migration ends exact and complete.  A
# coordinator restart during the settle neither loses nor doubles it; an
# unreachable resolver is a clear error and starts nothing; a final pass
# started by hand is the domain's (the watcher starts no other).
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-mx-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19400}
worker_runs=0
# Lookups of a silent resolver give up within 2 s.
export MAILSHIFT_MX_TIMEOUT=2
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

dns_port=$((MAILSHIFT_PORT_BASE + 30))
dead_port=$((MAILSHIFT_PORT_BASE + 31)) # nothing listens there
dns_pid=

# dns_serve MX...: (re)starts dnsmasq answering example.test's MX with the
# hosts given (preferences 10, 20, ...), nothing else.
dns_serve() {
  local pref=10 host
  : >"$work/dns.conf"
  for host in "$@"; do
    echo "mx-host=example.test,$host,$pref" >>"$work/dns.conf"
    pref=$((pref + 10))
  done
  # A domain already switched, with no account of the migrations.
  echo "mx-host=empty.test,mx1.new.example,10" >>"$work/dns.conf"
  dns_stop
  dnsmasq --keep-in-foreground --conf-file="$work/dns.conf" --no-resolv --no-hosts \
    --port="$dns_port" --listen-address=127.0.0.1 --bind-interfaces --pid-file= \
    --user=root --group=root --log-facility=- >>"$work/dns.log" 2>&1 &
  dns_pid=$!
  for _ in $(seq 1 50); do
    grep -q "^dnsmasq\[$dns_pid\]: started" "$work/dns.log" && return 0
    sleep 0.1
  done
  echo "dnsmasq did not start" >&2
  return 1
}
dns_stop() {
  [[ -n $dns_pid ]] || return 0
  kill -TERM "$dns_pid" 2>/dev/null
  wait "$dns_pid" 2>/dev/null
  dns_pid=
}

scheduler_pid=
scheduler_start() {
  "$COORD" run >>"$work/scheduler.log" 2>&1 &
  scheduler_pid=$!
}
scheduler_stop() {
  kill -TERM "$scheduler_pid" 2>/dev/null
  wait "$scheduler_pid" 2>/dev/null
}
mx_cleanup() { dns_stop; scheduler_stop; suite_cleanup; }

wait_until() {
  local t=$(($1 * 5)); shift
  while ((t-- > 0)); do "$@" && return 0; sleep 0.2; done
  return 1
}
status_has() { "$COORD" status "$1" 2>/dev/null | grep -qF -- "$2"; }
passes_of() { sql "SELECT count(*) FROM passes WHERE migration_id = $1${2:+ AND kind = '$2'}"; }
# history M LOGIN PATTERN: the account's history rows whose reason matches.
history() {
  sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
       WHERE a.migration_id = $1 AND a.src_login = '$2' AND l.reason LIKE '$3'"
}
append() { python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:$1" append INBOX "$2" \
  --corpus "$corpus" --seed "$3" >/dev/null; }

# The stack, with a scheduler of our own (suite_start's would not be
# restarted in the middle of the settle).
trap mx_cleanup EXIT
stack_start || { echo "0 passed, 1 failed"; exit 1; }
echo "# stack up in $work (ports from $MAILSHIFT_PORT_BASE)"
scheduler_start
# A second coordinator, standing by: only the one holding the scheduler lock
# watches and starts passes.
"$COORD" run >"$work/standby.log" 2>&1 &
pids+=($!)
dns_serve mx1.old.example mx2.old.example || { echo "0 passed, 1 failed"; exit 1; }

# --- a migration watching example.test ----------------------------------------
# alice and bob are example.test's (by their logins); carol is not.
for u in alice bob; do
  add_user SRC "$u@example.test" "${u}pw"
  add_user DST "$u@example.test" "${u}dst"
  fill_corpus "$u@example.test" 150
done
add_user SRC carol carolpw
add_user DST carol@other.test caroldst
fill_corpus carol 100
# mx_plan NAME RESOLVER SETTLE: $work/NAME/plan.json watching example.test
# (names in any case, with trailing dots: they compare without either).
mx_plan() {
  mkdir -p "$work/$1"
  cat >"$work/$1/plan.json" <<EOF
{"name": "$1", "source": $(server_json src "$SRC_PORT" none),
 "destination": $(server_json dst "$DST_PORT" none), "accounts": "accounts.csv",
 "mx": {"domains": ["Example.Test."], "destination_hosts": ["MX1.New.Example.", "mx2.new.example"],
        "settle": "$3", "interval": "1s", "resolver": "$2"}}
EOF
}
mx_plan m1 "127.0.0.1:$dns_port" 5s
printf '%s\n' "source_login,source_password,destination_login,destination_password" \
  "alice@example.test,alicepw,alice@example.test,alicedst" \
  "bob@example.test,bobpw,bob@example.test,bobdst" \
  "carol,carolpw,carol@other.test,caroldst" >"$work/m1/accounts.csv"
m=$(import_plan "$work/m1/plan.json")
check "the plan with an mx object imports" test -n "$m"
worker_start || { echo "0 passed, 1 failed"; exit 1; }
check "pass 1 ends synced" run_pass "$m" 1
check "status: example.test is on the old MX" \
  wait_until 10 status_has "$m" "mx example.test: old; MX mx1.old.example mx2.old.example"

# Mail arrives after pass 1, before the switch; the final pass must bring it.
append alice@example.test:alicepw 25 21
append bob@example.test:bobpw 15 22
append carol:carolpw 10 23

# --- a partial switch: one of the two MX records ------------------------------
dns_serve mx1.new.example mx2.old.example
check "status: a partial switch shows as partial (1 of 2)" \
  wait_until 10 status_has "$m" "mx example.test: partial (1 of 2)"
sleep 7 # longer than the settle
check "a partial switch starts no final pass (still 1 pass after the settle time)" \
  test "$(passes_of "$m")" = 1
check "a partial switch starts no settle (no switch in the history)" \
  test "$(history "$m" alice@example.test 'MX switch seen%')" = 0

# --- switched fully, back, fully again: the settle, a restart during it -------
dns_serve mx1.new.example mx2.new.example
check "status: the full switch shows as switched, with the final pass time" \
  wait_until 10 status_has "$m" "mx example.test: switched at "
first=$(sql "SELECT switched_at FROM mx_domains WHERE migration_id = $m")
dns_serve mx1.new.example mx2.old.example
check "a switch back shows as partial again" \
  wait_until 10 status_has "$m" "mx example.test: partial (1 of 2)"
check "the switch back resets the settle, in the history too" \
  test -z "$(sql "SELECT switched_at FROM mx_domains WHERE migration_id = $m")" \
  -a "$(history "$m" alice@example.test 'MX switch undone for example.test: 1 of 2 MX at the destination (mx1.new.example mx2.old.example); settle reset')" = 1
dns_serve mx1.new.example mx2.new.example
check "switched fully again" wait_until 10 status_has "$m" "mx example.test: switched at "
switched=$(sql "SELECT switched_at FROM mx_domains WHERE migration_id = $m")
sched_log_count() { cat "$work/scheduler.log" "$work/standby.log" | grep -cF -- "$1"; }
check "the scheduler logged the settle started, reset and started again" \
  test "$(sched_log_count "migration $m: example.test: every MX at the destination (mx1.new.example mx2.new.example): settle started")" = 2 \
  -a "$(sched_log_count "migration $m: example.test: 1 of 2 MX at the destination (mx1.new.example mx2.old.example): settle reset")" = 1
check "the settle starts again from the new switch" \
  test "$(sql "SELECT '$switched'::timestamptz > '$first'::timestamptz")" = t
check "each switch seen is in the domain's accounts' history, naming the MX hosts" \
  test "$(history "$m" alice@example.test 'MX switch seen for example.test: every MX at the destination (mx1.new.example mx2.new.example)')" = 2 \
  -a "$(history "$m" bob@example.test 'MX switch seen for example.test%')" = 2
check "the settle starts are in the history (and not in carol's: not the domain's)" \
  test "$(history "$m" alice@example.test 'settle started for example.test: MX mx1.new.example mx2.new.example%')" = 2 \
  -a "$(history "$m" carol 'settle started%')" = 0
# The coordinator restarts in the middle of the settle.
sleep 2
scheduler_stop
check "no final pass before the settle ended" test "$(passes_of "$m")" = 1
scheduler_start
sleep 1
check "a restart keeps the settle (same start in PostgreSQL)" \
  test "$(sql "SELECT switched_at FROM mx_domains WHERE migration_id = $m")" = "$switched"
has_final() { test "$(passes_of "$1" final)" = 1; }
check "the final pass starts by itself after the settle" wait_until 20 has_final "$m"
check "the final pass started no earlier than 5 s after the switch was seen" \
  test "$(sql "SELECT p.started_at >= d.switched_at + interval '5 s' FROM passes p, mx_domains d
               WHERE p.migration_id = $m AND p.kind = 'final' AND d.migration_id = $m")" = t
check "it is pass 2, for alice and bob only (carol's login is not example.test's)" \
  test "$(sql "SELECT string_agg(a.src_login, ' ' ORDER BY a.src_login) FROM pass_accounts pa
               JOIN accounts a ON a.id = pa.account_id WHERE a.migration_id = $m AND pa.number = 2")" \
  = "alice@example.test bob@example.test"
check "the final pass ends synced" "$COORD" wait "$m" 2 300
check "alice ends exact, the mail that arrived since pass 1 included" \
  verify alice@example.test:alicepw "$DST_PORT" alice@example.test:alicedst --account mx-alice
check "bob ends exact" \
  verify bob@example.test:bobpw "$DST_PORT" bob@example.test:bobdst --account mx-bob
check "status: the final pass is done and the migration complete" \
  wait_until 10 eval "status_has $m 'mx example.test: final pass 2 done at' &&
                      status_has $m 'migration $m: complete'"
# Either coordinator may be the active one after the restart.
check "the active scheduler logged the migration complete" \
  grep -q "migration $m: complete: the final pass ended for every MX domain" \
  "$work/scheduler.log" "$work/standby.log"
sleep 3
check "one final pass only, after the restart and with a standby (no pass 3)" \
  test "$(passes_of "$m")" = 2
check "the final pass started is in the history once, naming the domain and the MX hosts" \
  test "$(history "$m" alice@example.test 'final pass 2 started by the MX watcher for example.test: MX mx1.new.example mx2.new.example at the destination since%')" = 1 \
  -a "$(history "$m" bob@example.test 'final pass 2 started by the MX watcher%')" = 1
check "its end is in the history" \
  test "$(history "$m" alice@example.test 'final pass 2 for example.test ended: 2 of 2 accounts synced')" = 1

# --- an unreachable resolver; the final pass by hand ---------------------------
for u in dave erin; do
  add_user SRC "$u@example.test" "${u}pw"
  add_user DST "$u@example.test" "${u}dst"
  fill_corpus "$u@example.test" 40
done
mx_plan m2 "127.0.0.1:$dead_port" 1s
printf '%s\n' "source_login,source_password,destination_login,destination_password" \
  "dave@example.test,davepw,dave@example.test,davedst" \
  "erin@example.test,erinpw,erin@example.test,erindst" >"$work/m2/accounts.csv"
m2=$(import_plan "$work/m2/plan.json")
check "pass 1 of a second migration ends synced" run_pass "$m2" 1
check "status: an unreachable resolver is a clear error" \
  wait_until 15 status_has "$m2" "error at"
"$COORD" status "$m2" >"$work/m2-status.out" 2>&1
check "the error names the domain, the resolver and why" \
  grep -qF "MX lookup of example.test at 127.0.0.1:$dead_port failed: resolver unreachable" \
  "$work/m2-status.out"
check "the active scheduler logged it" \
  grep -qF "migration $m2: MX lookup of example.test at 127.0.0.1:$dead_port failed" \
  "$work/scheduler.log" "$work/standby.log"
sleep 3
check "no final pass without an answer" test "$(passes_of "$m2")" = 1
check "delta --final by hand still works" "$COORD" delta "$m2" --final
check "the final pass started by hand is the domain's" \
  wait_until 10 status_has "$m2" "mx example.test: final pass 2"
check "the mx command points the migration at the working resolver" \
  "$COORD" mx "$m2" --domains example.test --hosts mx1.new.example,mx2.new.example \
  --settle 1s --interval 1s --resolver "127.0.0.1:$dns_port"
check "the hand-started final pass ends synced" "$COORD" wait "$m2" 2 300
check "status: done, started by hand, migration complete" \
  wait_until 10 eval "status_has $m2 'final pass 2 done at' && status_has $m2 'started by hand' &&
                      status_has $m2 'migration $m2: complete'"
sleep 3
check "the watcher started no other final pass" test "$(passes_of "$m2")" = 2
check "the history says the watcher starts none" \
  test "$(history "$m2" dave@example.test 'final pass 2 started by hand for example.test: the MX watcher starts none')" = 1
check "dave ends exact" \
  verify dave@example.test:davepw "$DST_PORT" dave@example.test:davedst --account mx-dave

# --- a domain switched but without accounts -----------------------------------
check "the mx command adds a domain" \
  "$COORD" mx "$m2" --domains example.test,empty.test --hosts mx1.new.example,mx2.new.example \
  --settle 1s --interval 1s --resolver "127.0.0.1:$dns_port"
check "a domain without accounts: its final pass is due but not started, and status says why" \
  wait_until 15 status_has "$m2" "final pass due but not started: the domain has no account"
check "and no pass was started for it" test "$(passes_of "$m2")" = 2

# --- the mx command's refusals -------------------------------------------------
check "mx refuses a bad duration" eval "! '$COORD' mx '$m2' --domains a.test --hosts b.test --settle 5x 2>/dev/null"
check "mx refuses a bad resolver" eval "! '$COORD' mx '$m2' --domains a.test --hosts b.test --resolver 1.2.3 2>/dev/null"
check "mx --off turns watching off (no mx line in status)" \
  eval "'$COORD' mx '$m2' --off >/dev/null && ! status_has '$m2' 'mx example.test'"

suite_end
