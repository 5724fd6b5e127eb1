#!/usr/bin/env bash
# fleet.sh: how mailshift scales with workers, and how the coordinator copes
# with a 100,000-account plan, on one machine.  Prints figures; it asserts
# nothing beyond sanity (every copy checked exact, every command exits 0).
#
# Starts its own throwaway test stack (tests/infra/stack.sh: PostgreSQL,
# Dovecot src/dst/dst2, the local Kafka broker) on ports MAILSHIFT_PORT_BASE
# (default 19600) .. +6, in a work directory /tmp/mailshift-fleet.XXXXXX, and
# stops only that stack at the end.
#
# Part 1, workers: FLEET_ACCOUNTS (8) source accounts, each filled with the
# SpamAssassin corpus by fill_maildir.py (4 folders, a seed per account for
# the folders and flags): FLEET_MAIL=full (the default) puts all 6,046
# messages (33 MB) in every account, so a run copies 48,368 messages and
# lasts long enough to read CPU figures from; FLEET_MAIL=split gives each
# account its own slice of the corpus (~756 messages, runs of a few seconds).
# For W in FLEET_WORKERS (1 2 4): a migration of those accounts into fresh,
# empty destination accounts on dst (new logins per W), imported and
# credential-checked; W worker processes are started and wait until the
# consumer group has settled (every worker's last rebalance event an
# assignment, all partitions held); then 'coordinator pass M 1' and
# 'coordinator wait M 1' are timed.  Reported per W:
#   seconds       from 'pass' to the end of 'wait' (date +%s.%N)
#   messages/s    source messages / seconds
#   MB/s          source bytes (sum of the source's RFC822.SIZE) / seconds
#   CPU seconds   user+system over the same interval, from /proc/PID/stat, of
#                 the process trees of Dovecot src and dst (master, imap,
#                 login and auth processes), PostgreSQL (postmaster and
#                 backends), the broker, the workers (utime+stime+cutime+
#                 cstime of every live process of the tree, so children that
#                 exited and were reaped count too), and the coordinator's
#                 pass + wait (/usr/bin/time); then the kernel threads (ext4
#                 and jbd2 writeback, ksoftirqd: the servers' writes cost CPU
#                 there too), "other processes" (the machine's busy time less
#                 all of these: other work on the machine competing for the
#                 CPUs), and the machine's busy, iowait and steal time from
#                 /proc/stat.  "cores" = CPU s / wall s: busy + iowait +
#                 steal near nproc cores means the machine is saturated, and
#                 the largest share says by what.  Interrupt time (loopback
#                 TCP) is in the times of the processes it interrupted
#                 (kernels without CONFIG_IRQ_TIME_ACCOUNTING, like Debian's).
#   accounts per worker  who copied what ("synced: pass 1" lines in each
#                 worker's log): jobs are keyed by account id, so a worker
#                 gets the accounts its Kafka partitions hash to
#   exact         tests/infra/verify.py of every account (bytes, flags,
#                 INTERNALDATE): yes only if all are exact
# Each worker runs with the worker's defaults (4 accounts at once, 2 folders
# each) unless FLEET_WORKER_ARGS says otherwise.  The plan's connection
# budget (max_connections, FLEET_MAX_CONN, 64) is set high enough not to be
# the limit: this measures the workers and the servers, not the budget.
#
# Part 2, the coordinator at scale: a FLEET_PLAN_ACCOUNTS (100,000) account
# plan pointing at the local servers (the users do not exist).
#   import        'coordinator import plan.json': seconds, peak RSS, and the
#                 CPU seconds of the coordinator and of PostgreSQL (the rest
#                 of the wall time is waiting: round trips)
#   start         the accounts are marked verified directly in SQL, then
#                 'coordinator start M' with budgets of 1,000 connections:
#                 queues the pass for all, publishes the first 1,000 jobs
#   step          'coordinator step' (one scheduler step) with the other
#                 99,000 queued and no room in the budgets: median of 5
#   pass          the same pass again with the budgets lifted in SQL, so
#                 every account is published at once (no worker running):
#                 seconds, peak RSS, jobs/s
#   status        'coordinator status M' (100,000 lines to /dev/null) and
#                 'coordinator status M ACCOUNT' (one account, by source
#                 login): median of 5 runs each; every run includes the
#                 process start, the connection and the schema check
#
# Usage: tests/bench/fleet.sh   (needs build/ from a prior build, root,
#        dovecot, PostgreSQL, python3, /usr/bin/time, npm for the corpus)
# Env:   MAILSHIFT_PORT_BASE (19600), MAILSHIFT_BUILD (REPO/build),
#        FLEET_ACCOUNTS (8), FLEET_MAIL (full), FLEET_WORKERS ("1 2 4"), FLEET_WORKER_ARGS (""),
#        FLEET_MAX_CONN (64), FLEET_PLAN_ACCOUNTS (100000), FLEET_SKIP_PART1=1,
#        FLEET_SKIP_PART2=1, FLEET_KEEP=1 keeps the work directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19600}
export MAILSHIFT_BUILD=${MAILSHIFT_BUILD:-$repo/build}

naccounts=${FLEET_ACCOUNTS:-8}
worker_counts=${FLEET_WORKERS:-1 2 4}
worker_args=${FLEET_WORKER_ARGS:-}
max_conn=${FLEET_MAX_CONN:-64}
plan_accounts=${FLEET_PLAN_ACCOUNTS:-100000}
mail=${FLEET_MAIL:-full}

die() { echo "fleet.sh: $*" >&2; exit 1; }
log() { echo "fleet: $*" >&2; }

[[ $mail == full || $mail == split ]] || die "FLEET_MAIL: full or split, not $mail"

for b in coordinator/mailshift-coordinator worker/mailshift-worker deploy/broker/mailshift-broker; do
  [[ -x $MAILSHIFT_BUILD/$b ]] || die "$MAILSHIFT_BUILD/$b not found: build the project first"
done
for c in python3 psql dovecot; do
  command -v "$c" >/dev/null || die "$c not found (deploy/install-deps.sh)"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (the 'time' package: deploy/install-deps.sh)"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d /tmp/mailshift-fleet.XXXXXX)
chmod 755 "$work"
# lib.sh: stack_start/stack_stop, add_users, import_plan, sql, $COORD, $WORKER.
# shellcheck source=tests/integration/lib.sh
source "$repo/tests/integration/lib.sh"
workers=()

stop_workers() {
  local pid
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}"; do wait "$pid" 2>/dev/null || true; done
  workers=()
}

cleanup() {
  stop_workers
  [[ -n ${scheduler_pid:-} ]] && { kill -TERM "$scheduler_pid" 2>/dev/null; wait "$scheduler_pid" 2>/dev/null; }
  stack_stop
  if [[ ${FLEET_KEEP:-0} == 1 ]]; then
    log "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

now() { date +%s.%N; }
# calc EXPR ARGS...: a Python expression over float arguments a, b, c, d.
calc() {
  python3 -c 'import sys; a, b, c, d = (list(map(float, sys.argv[2:])) + [0, 0, 0, 0])[:4]; print(eval(sys.argv[1]))' "$@"
}
# median NUMBERS...
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# cpu.py NAME=PID[,PID...]...: prints, per name, the CPU seconds (user+system)
# of the process trees rooted at those pids: every live process's utime,
# stime, cutime and cstime (children that exited were reaped by a live
# ancestor, so their time is in its cutime/cstime); then "kthreads", the
# kernel's own threads (the tree of kthreadd, pid 2: ext4 and jbd2 writeback,
# ksoftirqd, ...), and from /proc/stat the whole machine's busy seconds (user,
# nice, system, irq, softirq), iowait and steal.
cat >"$work/cpu.py" <<'EOF'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
procs = {}
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        with open("/proc/%s/stat" % d) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    # fields[0] is the state: ppid, ..., utime, stime, cutime, cstime follow.
    procs[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
children = {}
for pid, (ppid, _) in procs.items():
    children.setdefault(ppid, []).append(pid)
out = []
for arg in sys.argv[1:] + ["kthreads=2"]:
    name, pids = arg.split("=", 1)
    todo = [int(p) for p in pids.split(",") if p]
    seen, ticks = set(), 0
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        ticks += procs[pid][1]
        todo.extend(children.get(pid, []))
    out.append(ticks)
with open("/proc/stat") as f:
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
out += [user + nice + system + irq + softirq, iowait, steal]
print(" ".join("%.2f" % (t / hz) for t in out))
EOF

# --- the stack --------------------------------------------------------------------
log "starting stack in $work/stack (ports $MAILSHIFT_PORT_BASE..+6)"
stack_start
pg_pid=$(head -n 1 "$(cat "$stack/pg.dir")/data/postmaster.pid")
src_pid=$(cat "$SRC_DIR/dovecot.pid")
dst_pid=$(cat "$DST_DIR/dovecot.pid")
broker_pid=$(cat "$stack/broker.pid")
partitions=$(sed -n 's/.* \([0-9][0-9]*\) partition(s) per topic.*/\1/p' "$stack/broker.log" | head -n 1)
partitions=${partitions:-8}
# The scheduler daemon publishes the jobs the workers and budgets have room
# for as accounts finish ('pass' publishes only what there is room for now).
"$COORD" run >"$work/scheduler.log" 2>&1 &
scheduler_pid=$!

declare -A R

# plan_json NAME CSV: a plan at $work/NAME/plan.json, local src -> dst.
plan_json() {
  local d=$work/$1
  mkdir -p "$d"
  cat >"$d/plan.json" <<EOF
{"name": "$1",
 "source": {"host": "127.0.0.1", "port": $SRC_PORT, "tls": "none", "auth": "plain", "max_connections": $max_conn},
 "destination": {"host": "127.0.0.1", "port": $DST_PORT, "tls": "none", "auth": "plain", "max_connections": $max_conn},
 "accounts": "$2"}
EOF
  echo "$d/plan.json"
}

# --- part 1: workers ----------------------------------------------------------------
# settled LOG...: every worker's last rebalance event is an assignment and
# together they hold every partition.
settled() {
  awk -v want="$partitions" '
    / assigned [0-9]+ partition/ { n = $0; sub(/.* assigned /, "", n); last[FILENAME] = n + 0 }
    / revoked [0-9]+ partition/ { last[FILENAME] = -1 }
    END {
      for (i = 1; i < ARGC; i++) {
        if (!(ARGV[i] in last) || last[ARGV[i]] < 0) exit 1
        total += last[ARGV[i]]
      }
      exit total != want
    }' "$@"
}

# workers_start W RUN: W workers, returns once their consumer group settled.
workers_start() {
  local k logs=()
  for k in $(seq 1 "$1"); do
    logs+=("$work/$2/worker-$k.log")
    # shellcheck disable=SC2086
    "$WORKER" $worker_args --id "fleet-$2-$k" >"$work/$2/worker-$k.log" 2>&1 &
    workers+=("$!")
  done
  for _ in $(seq 1 300); do
    settled "${logs[@]}" && return 0
    sleep 0.2
  done
  tail -n 5 "${logs[@]}" >&2
  die "$1 workers: the consumer group did not settle in 60 s"
}

src_messages=0
src_bytes=0
part1() {
  local corpus_count per i w m run t0 t1 cpu0 cpu1 csv k n dist slice
  corpus_count=$(find "$corpus" -maxdepth 1 -name '*.txt' | wc -l)
  per=$((corpus_count / naccounts))
  log "part 1: $naccounts source accounts, corpus of $corpus_count messages ($mail)"
  add_users u "$naccounts" SRC
  for i in $(seq 1 "$naccounts"); do
    slice=()
    if [[ $mail == split ]]; then
      slice=(--offset $(((i - 1) * per)))
      ((i == naccounts)) || slice+=(--limit "$per") # the last account takes the remainder
    fi
    python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/u$i/Maildir" \
      --layout fs --seed "$i" "${slice[@]}" >/dev/null
  done
  # Count messages and sum RFC822.SIZE over every source folder of every account.
  read -r src_messages src_bytes < <(python3 "$infra/sizes.py" "$SRC_PORT" \
    $(for i in $(seq 1 "$naccounts"); do echo "u$i:upw$i"; done))
  [[ $src_messages -gt 0 ]] || die "could not read the source's message sizes"
  log "source: $src_messages messages, $src_bytes bytes in $naccounts accounts"

  for w in $worker_counts; do
    run=w$w
    log "part 1: W=$w"
    add_users "${run}u" "$naccounts" DST
    mkdir -p "$work/$run"
    csv=$work/$run/accounts.csv
    { echo "source_login,source_password,destination_login,destination_password"
      for i in $(seq 1 "$naccounts"); do echo "u$i,upw$i,${run}u$i,${run}upw$i"; done; } >"$csv"
    m=$(import_plan "$(plan_json "$run" accounts.csv)")
    n=$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m AND state = 'verified'")
    [[ $n == "$naccounts" ]] || die "W=$w: $n of $naccounts accounts verified (see $work/verify.log)"

    workers_start "$w" "$run"
    cpu0=$(python3 "$work/cpu.py" "src=$src_pid" "dst=$dst_pid" "pg=$pg_pid" \
      "broker=$broker_pid" "workers=$(IFS=,; echo "${workers[*]}")")
    t0=$(now)
    /usr/bin/time -f "%U %S" -a -o "$work/$run/coord.cpu" \
      "$COORD" pass "$m" 1 >>"$work/$run/coordinator.log" 2>&1
    /usr/bin/time -f "%U %S" -a -o "$work/$run/coord.cpu" \
      "$COORD" wait "$m" 1 600 >>"$work/$run/coordinator.log" 2>&1 ||
      die "W=$w: pass 1 did not end synced (see $work/$run/coordinator.log)"
    t1=$(now)
    cpu1=$(python3 "$work/cpu.py" "src=$src_pid" "dst=$dst_pid" "pg=$pg_pid" \
      "broker=$broker_pid" "workers=$(IFS=,; echo "${workers[*]}")")
    dist=
    for k in $(seq 1 "$w"); do
      dist+=${dist:+/}$(grep -c "synced: pass 1:" "$work/$run/worker-$k.log" || true)
    done
    stop_workers

    R[$run.secs]=$(calc '"%.2f" % (b - a)' "$t0" "$t1")
    R[$run.mps]=$(calc '"%.0f" % (a / b)' "$src_messages" "${R[$run.secs]}")
    R[$run.mbps]=$(calc '"%.2f" % (a / 1e6 / b)' "$src_bytes" "${R[$run.secs]}")
    R[$run.dist]=$dist
    local names=(src dst pg broker workers kthreads machine iowait steal) j
    read -r -a c0 <<<"$cpu0"
    read -r -a c1 <<<"$cpu1"
    for j in "${!names[@]}"; do
      R[$run.cpu_${names[$j]}]=$(calc '"%.2f" % (b - a)' "${c0[$j]}" "${c1[$j]}")
    done
    R[$run.cpu_coord]=$(awk '{ u += $1 + $2 } END { printf "%.2f", u }' "$work/$run/coord.cpu")
    R[$run.cpu_ours]=$(python3 -c 'import sys; print("%.2f" % sum(map(float, sys.argv[1:])))' \
      "${R[$run.cpu_src]}" "${R[$run.cpu_dst]}" "${R[$run.cpu_pg]}" "${R[$run.cpu_broker]}" \
      "${R[$run.cpu_workers]}" "${R[$run.cpu_coord]}")
    # Whatever else ran: other processes on the machine (other test stacks).
    R[$run.cpu_other]=$(calc '"%.2f" % (a - b - c)' "${R[$run.cpu_machine]}" \
      "${R[$run.cpu_ours]}" "${R[$run.cpu_kthreads]}")

    local bad=0
    for i in $(seq 1 "$naccounts"); do
      python3 "$infra/verify.py" --src "127.0.0.1:$SRC_PORT:u$i:upw$i" \
        --dst "127.0.0.1:$DST_PORT:${run}u$i:${run}upw$i" --account "u$i" \
        >>"$work/$run/verify.out" 2>&1 || bad=$((bad + 1))
    done
    R[$run.exact]=$([[ $bad == 0 ]] && echo yes || echo "NO ($bad of $naccounts)")
    log "W=$w: ${R[$run.secs]} s, ${R[$run.mps]} messages/s, exact ${R[$run.exact]}"
  done
}

# --- part 2: the coordinator at scale -------------------------------------------------
# timed OUT_PREFIX CMD...: runs CMD with /usr/bin/time; R[OUT_PREFIX.secs] is the
# wall time (date, ms resolution), .rss the peak RSS in MB, .cpu user+system s.
timed() {
  local key=$1 t0 t1 f=$work/time.out
  shift
  t0=$(now)
  /usr/bin/time -f "%M %U %S" -o "$f" "$@"
  t1=$(now)
  R[$key.secs]=$(calc '"%.3f" % (b - a)' "$t0" "$t1")
  R[$key.rss]=$(awk '{ printf "%.1f", $1 / 1024 }' "$f")
  R[$key.cpu]=$(awk '{ printf "%.2f", $2 + $3 }' "$f")
}

part2() {
  local d=$work/plan100k m cpu0 cpu1 n runs i a login
  mkdir -p "$d"
  # Only the commands measured here publish (no daemon alongside).
  kill -TERM "$scheduler_pid" 2>/dev/null && { wait "$scheduler_pid" 2>/dev/null || true; }
  scheduler_pid=
  log "part 2: a $plan_accounts-account plan"
  awk -v n="$plan_accounts" 'BEGIN {
    print "source_login,source_password,destination_login,destination_password,priority"
    for (i = 1; i <= n; i++)
      printf "user%06d@old.example,srcpw%d,user%06d@new.example,dstpw%d,%d\n", i, i, i, i, i % 9 + 1
  }' >"$d/accounts.csv"
  plan_json plan100k accounts.csv >/dev/null

  # (a) import: the plan is parsed and checked, every secret encrypted, and
  # every account inserted in one transaction.
  cpu0=$(python3 "$work/cpu.py" "pg=$pg_pid")
  timed import "$COORD" import "$d/plan.json" >"$d/mid" 2>>"$d/coordinator.log"
  cpu1=$(python3 "$work/cpu.py" "pg=$pg_pid")
  # cpu.py's fields here: pg, kthreads, machine busy, iowait, steal.
  # "other": the machine's busy time less the coordinator, PostgreSQL and the
  # kernel threads, i.e. other work on the machine.
  read -r 'R[import.pgcpu]' 'R[import.other]' < <(python3 - "$cpu0" "$cpu1" "${R[import.cpu]}" <<'EOF'
import sys
d = [b - a for a, b in zip(map(float, sys.argv[1].split()), map(float, sys.argv[2].split()))]
print("%.2f %.2f" % (d[0], d[2] - d[0] - d[1] - float(sys.argv[3])))
EOF
  )
  m=$(cat "$d/mid")
  n=$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m")
  [[ $n == "$plan_accounts" ]] || die "import stored $n of $plan_accounts accounts"
  R[import.aps]=$(calc '"%.0f" % (a / b)' "$plan_accounts" "${R[import.secs]}")

  # (b) scheduling.  A pass schedules verified accounts only; 'coordinator
  # verify' would log in to both servers for each of the 100,000 fake users,
  # which is a measure of the servers' authentication, not of the
  # coordinator.  So the accounts are marked verified in SQL.
  # (b1) 'start' with each server's budget at 1,000 connections: the pass is
  # queued for all 100,000 accounts (with its per-account rows) and the
  # metered step publishes the first 1,000 jobs, in priority order.
  sql "UPDATE accounts SET state = 'verified' WHERE migration_id = $m;
       UPDATE servers SET max_connections = 1000 WHERE migration_id = $m"
  timed start "$COORD" start "$m" >>"$d/coordinator.log" 2>&1
  n=$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m AND published_at IS NOT NULL")
  [[ $n == 1000 ]] || die "start published $n jobs, not the budget's 1000"
  # (b1') one scheduler step with the 99,000 others queued and no room left
  # in the budgets (what the active scheduler does every 0.5 s): 5 runs,
  # each a process start, a connection and the step.
  runs=()
  for i in 1 2 3 4 5; do
    timed step "$COORD" step >>"$d/coordinator.log" 2>&1
    runs+=("${R[step.secs]}")
  done
  R[step.median]=$(median "${runs[@]}")
  R[step.runs]="${runs[*]}"
  # (b2) the same pass again with the budgets lifted in SQL, so that every
  # account is published at once: the raw publishing rate (queue, metered
  # selection, one Kafka job each).
  sql "UPDATE servers SET max_connections = 1000000 WHERE migration_id = $m"
  cpu0=$(python3 "$work/cpu.py" "pg=$pg_pid" "broker=$broker_pid")
  timed pass "$COORD" pass "$m" 1 >>"$d/coordinator.log" 2>&1
  cpu1=$(python3 "$work/cpu.py" "pg=$pg_pid" "broker=$broker_pid")
  read -r -a c0 <<<"$cpu0"
  read -r -a c1 <<<"$cpu1"
  R[pass.pgcpu]=$(calc '"%.2f" % (b - a)' "${c0[0]}" "${c1[0]}")
  R[pass.brokercpu]=$(calc '"%.2f" % (b - a)' "${c0[1]}" "${c1[1]}")
  n=$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m AND state = 'queued'
           AND published_at IS NOT NULL")
  [[ $n == "$plan_accounts" ]] || die "pass published $n of $plan_accounts jobs"
  R[pass.jps]=$(calc '"%.0f" % (a / b)' "$plan_accounts" "${R[pass.secs]}")

  # (c) status of the whole migration and of one account, 5 runs each.
  n=$("$COORD" status "$m" | grep -c '^account ')
  [[ $n == "$plan_accounts" ]] || die "status printed $n account lines, not $plan_accounts"
  login=$(printf 'user%06d@old.example' $((plan_accounts / 2)))
  n=$("$COORD" status "$m" "$login" | grep -c "$login")
  [[ $n == 1 ]] || die "status $m $login printed $n matching lines"
  "$COORD" status "$m" "$(sql "SELECT id FROM accounts WHERE migration_id = $m AND src_login = '$login'")" |
    grep -q "$login" || die "status $m ACCOUNT_ID did not print $login"
  for what in all one; do
    runs=()
    for i in 1 2 3 4 5; do
      if [[ $what == all ]]; then a=("$m"); else a=("$m" "$login"); fi
      timed "status_$what" "$COORD" status "${a[@]}" >/dev/null
      runs+=("${R[status_$what.secs]}")
    done
    R[status_$what.median]=$(median "${runs[@]}")
    R[status_$what.runs]="${runs[*]}"
  done
}

[[ ${FLEET_SKIP_PART1:-0} == 1 ]] || part1
[[ ${FLEET_SKIP_PART2:-0} == 1 ]] || part2

# --- report -----------------------------------------------------------------------
echo
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
  "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
  "load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ ${FLEET_SKIP_PART1:-0} != 1 ]]; then
  echo
  echo "part 1: $naccounts accounts, $src_messages messages, $src_bytes bytes (sum of RFC822.SIZE)," \
    "src -> dst; worker options: ${worker_args:-defaults (4 accounts, 2 folders)};" \
    "$partitions partitions"
  row() { # LABEL KEY [cores]
    local w v
    printf '%-30s' "$1"
    for w in $worker_counts; do
      v=${R[w$w.$2]:--}
      if [[ ${3:-} == cores && $v != - ]]; then
        v="$v ($(calc '"%.2f" % (a / b)' "$v" "${R[w$w.secs]}"))"
      fi
      printf ' %16s' "$v"
    done
    printf '\n'
  }
  printf '%-30s' ""; for w in $worker_counts; do printf ' %16s' "W=$w"; done; printf '\n'
  row "pass 1 (s)" secs
  row "messages/s" mps
  row "MB/s" mbps
  row "accounts per worker" dist
  row "exact (verify.py)" exact
  echo "CPU s during the pass (cores = CPU s / wall s, of $(nproc)):"
  row "  dovecot src" cpu_src cores
  row "  dovecot dst" cpu_dst cores
  row "  PostgreSQL" cpu_pg cores
  row "  workers" cpu_workers cores
  row "  broker" cpu_broker cores
  row "  coordinator pass+wait" cpu_coord cores
  row "  mailshift stack, all above" cpu_ours cores
  row "  kernel threads" cpu_kthreads cores
  row "  other processes" cpu_other cores
  row "  whole machine busy" cpu_machine cores
  row "  whole machine iowait" cpu_iowait cores
  row "  whole machine steal" cpu_steal cores
fi
if [[ ${FLEET_SKIP_PART2:-0} != 1 ]]; then
  echo
  echo "part 2: coordinator with a $plan_accounts-account plan"
  printf '  %-34s %s s, peak RSS %s MB, %s accounts/s; CPU s: coordinator %s, PostgreSQL %s, other processes %s\n' \
    "import" "${R[import.secs]}" "${R[import.rss]}" "${R[import.aps]}" "${R[import.cpu]}" "${R[import.pgcpu]}" \
    "${R[import.other]}"
  printf '  %-34s %s s, peak RSS %s MB (queues 100%%, publishes the budget of 1000)\n' \
    "start, budget 1000 connections" "${R[start.secs]}" "${R[start.rss]}"
  printf '  %-34s median %s s (runs: %s), peak RSS %s MB\n' "scheduler step, 99000 queued, no room" \
    "${R[step.median]}" "${R[step.runs]}" "${R[step.rss]}"
  printf '  %-34s %s s, peak RSS %s MB, %s jobs/s; CPU s: coordinator %s, PostgreSQL %s, broker %s\n' \
    "pass 1 again, budgets lifted" "${R[pass.secs]}" "${R[pass.rss]}" "${R[pass.jps]}" "${R[pass.cpu]}" \
    "${R[pass.pgcpu]}" "${R[pass.brokercpu]}"
  printf '  %-34s median %s s (runs: %s), peak RSS %s MB\n' "status M (all, to /dev/null)" \
    "${R[status_all.median]}" "${R[status_all.runs]}" "${R[status_all.rss]}"
  printf '  %-34s median %s s (runs: %s), peak RSS %s MB\n' "status M ACCOUNT (one, by login)" \
    "${R[status_one.median]}" "${R[status_one.runs]}" "${R[status_one.rss]}"
fi
