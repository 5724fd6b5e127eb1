#!/usr/bin/env bash
# bench.sh: one account's speed, mailshift next to a pipelined reference
# client and mbsync, at loopback and at 20 ms RTT (issue 12).
#
# Starts its own throwaway test stack (tests/infra/stack.sh: PostgreSQL with
# fsync and synchronous_commit ON as in production, Dovecot src/dst, the local
# Kafka broker) on ports MAILSHIFT_PORT_BASE (default 17300) .. +6, and two
# delay proxies (tests/infra/delay_proxy.py, 20 ms RTT: 10 ms each way) on
# +7 (in front of src) and +8 (in front of dst). It fills the source account
# alice with the SpamAssassin corpus (6,046 messages in INBOX, Archive/2002,
# Old Projects, Junk) and copies it with each tool into a fresh destination
# account on dst (Maildir++ '.' delimiter, special-use names differ,
# MULTIAPPEND and LITERAL+ offered):
#
#   mailshift  one mailshift worker (started once, in its consumer group
#              before anything is timed); a migration per latency and run
#   baseline   (tool base, only with BENCH_BASELINE=DIR, issue 11) the same
#              passes with the coordinator and worker of another build DIR
#              (a CMake build dir of another commit), into its own accounts,
#              with its own migrations in its own database, mailshift_base
#              (same PostgreSQL; its coordinator applies its own schema, as
#              an older build need not work against a newer schema). Only
#              one worker is ever alive, as both would join the same
#              consumer group: before a pass of mailshift or baseline the
#              other's worker is stopped (by its PID, waited for) and this
#              one's started and waited for until it holds partitions, all
#              untimed; so with a baseline each worker is restarted a few
#              times per run, and the pass after a restart runs in a fresh
#              process
#   refcopy    tests/bench/refcopy.py: the pipelined reference client of
#              issue 12 (MULTIAPPEND batches of 100 with LITERAL+, pipelined
#              UID FETCH, 4 folders in parallel, a state file for later runs)
#   mbsync     isync's mbsync, IMAP store to IMAP store, 'Sync Pull'
#              (never exact: it inserts an X-TUID header into every message
#              and drops keywords such as $Work; the lenient check says what
#              differs besides X-TUID)
#
# Each run (BENCH_RUNS, default 3) of each tool at each latency (loopback and
# 20 ms RTT, BENCH_RTT_MS) measures:
#   pass 1      a full copy into an empty account
#   no-op       the same again, nothing changed
#   delta       after one source mutation (tests/infra/mutate.py: 200 new
#               messages in INBOX, flag changes on 500 INBOX messages, the
#               same seeded mutation in every run)
# and every pass is checked by tests/infra/verify.py (bytes, flags including
# keywords, INTERNALDATE; ok/FAIL printed per pass). Order of a run: every
# tool's pass 1 and no-op at each latency, the mutation, every tool's delta;
# then the source is put back as it was before the mutation (a copy of its
# maildir, taken with no session open) for the next run.
#
# Times: mailshift's operator wall = 'coordinator pass' to the end of
# 'coordinator wait' (two process starts, a Kafka trip, the wait's polling);
# mailshift's own time = the duration the worker logs in its "synced: pass
# N: ..., S s" line. refcopy and mbsync: wall time of the process, its start
# included. The table shows medians; ratio = reference's time / mailshift's
# (above 1.0: mailshift faster, as in issue 12); base/ms = the baseline's
# time / mailshift's (above 1.0: this build faster than the baseline). Peak
# RSS: a worker's VmHWM over the whole benchmark (the largest of its
# processes); others: ru_maxrss of the child.
#
# Usage: tests/bench/bench.sh   (needs build/ from a prior build, root,
#        python3, mbsync (isync, optional), npm for the corpus cache)
# Env:   MAILSHIFT_PORT_BASE (17300), MAILSHIFT_BUILD (REPO/build),
#        BENCH_RUNS (3), BENCH_RTT_MS (20), BENCH_TOOLS ("ms ref mbsync"),
#        BENCH_KEEP=1 keeps the work directory (logs, configs) afterwards,
#        BENCH_BASELINE=DIR adds the baseline column (tool base, right after
#        ms unless BENCH_TOOLS places it), e.g. with a build of an older
#        commit: git worktree add /tmp/old COMMIT && cmake -S /tmp/old -B
#        /tmp/old-build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build
#        /tmp/old-build; then BENCH_BASELINE=/tmp/old-build tests/bench/bench.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
infra=$repo/tests/infra
build=${MAILSHIFT_BUILD:-$repo/build}
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-17300}
export MAILSHIFT_BUILD=$build
export MAILSHIFT_PG_FSYNC=1
runs=${BENCH_RUNS:-3}
rtt=${BENCH_RTT_MS:-20}
read -r -a tools <<<"${BENCH_TOOLS:-ms ref mbsync}"
lats=(0 "$rtt")

coord=$build/coordinator/mailshift-coordinator
worker_bin=$build/worker/mailshift-worker
baseline=${BENCH_BASELINE:-}

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for b in "$coord" "$worker_bin" "$build/deploy/broker/mailshift-broker"; do
  [[ -x $b ]] || die "$b not found: build the project first (cmake into $build); bench.sh builds nothing"
done
# COORD[tool], WORKER[tool]: the binaries of the mailshift tools, ms and
# (with BENCH_BASELINE) base.
declare -A COORD=([ms]=$coord) WORKER=([ms]=$worker_bin)
if [[ -n $baseline ]]; then
  baseline=$(cd "$baseline" && pwd) || die "BENCH_BASELINE=$BENCH_BASELINE: no such directory"
  COORD[base]=$baseline/coordinator/mailshift-coordinator
  WORKER[base]=$baseline/worker/mailshift-worker
  for b in "${COORD[base]}" "${WORKER[base]}"; do
    [[ -x $b ]] || die "$b not found: BENCH_BASELINE must be a build directory of another commit"
  done
  # The baseline's column comes right after mailshift's unless placed.
  if [[ " ${tools[*]} " != *" base "* ]]; then
    t0=("${tools[@]}")
    tools=()
    for t in "${t0[@]}"; do
      tools+=("$t")
      [[ $t == ms ]] && tools+=(base)
    done
    [[ " ${tools[*]} " == *" base "* ]] || tools=(base "${tools[@]}")
  fi
elif [[ " ${tools[*]} " == *" base "* ]]; then
  die "BENCH_TOOLS names base but BENCH_BASELINE (the other build) is unset"
fi
for c in python3 xxd; do
  command -v "$c" >/dev/null || die "$c not found"
done
if [[ " ${tools[*]} " == *" mbsync "* ]] && ! command -v mbsync >/dev/null; then
  log "mbsync not found: its column is left out"
  read -r -a tools <<<"${tools[*]/mbsync/}"
fi

work=$(mktemp -d /tmp/mailshift-bench.XXXXXX)
chmod 755 "$work"
stack=$work/stack
MS_PID=
proxies=()

cleanup() {
  local pid
  [[ -n $MS_PID ]] && { kill -TERM "$MS_PID" 2>/dev/null || true; wait "$MS_PID" 2>/dev/null || true; }
  for pid in "${proxies[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  bash "$infra/stack.sh" stop "$stack" >/dev/null 2>&1 || true
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    log "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

now() { date +%s.%N; }
# secs T0 T1: T1 - T0 with two decimals.
secs() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }

# --- stack, proxies and source data -------------------------------------------
log "starting stack in $stack (ports $MAILSHIFT_PORT_BASE..+8, PostgreSQL with fsync on)"
bash "$infra/stack.sh" start "$stack" >&2
# shellcheck disable=SC1091
source "$stack/env"
log "PostgreSQL: fsync=$(psql "$MAILSHIFT_DB" -Atc 'SHOW fsync'), synchronous_commit=$(psql "$MAILSHIFT_DB" -Atc 'SHOW synchronous_commit')"

# proxy NAME PORT UPSTREAM: a delay proxy; waits for its "listening on" line.
proxy() {
  local out=$work/proxy-$1.out
  python3 "$infra/delay_proxy.py" --port "$2" --upstream "$3" --rtt-ms "$rtt" \
    --log "$work/proxy-$1.log" >"$out" 2>&1 &
  proxies+=($!)
  for _ in $(seq 100); do grep -q "^listening on" "$out" && return 0; sleep 0.1; done
  cat "$out" >&2
  die "delay proxy $1 did not start"
}
proxy src $((MAILSHIFT_PORT_BASE + 7)) "$SRC_PORT"
proxy dst $((MAILSHIFT_PORT_BASE + 8)) "$DST_PORT"
# PORT[side.latency]: where the tools connect.
declare -A PORT=([src.0]=$SRC_PORT [dst.0]=$DST_PORT
  [src.$rtt]=$((MAILSHIFT_PORT_BASE + 7)) [dst.$rtt]=$((MAILSHIFT_PORT_BASE + 8)))

corpus=$(bash "$infra/corpus.sh")
bash "$infra/users.sh" add "$SRC_DIR" alice alicepw
python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/alice/Maildir" --layout fs >&2
SRC_ACCOUNT=127.0.0.1:$SRC_PORT:alice:alicepw

# Destination users, one per tool, latency and run, written in one go (one
# passwd-file reread), then wait until the last one logs in.
dst_user() { echo "$1l$2r$3"; }
for t in "${tools[@]}"; do for l in "${lats[@]}"; do for r in $(seq "$runs"); do
  printf '%s:{PLAIN}pw::::::\n' "$(dst_user "$t" "$l" "$r")"
done; done; done >>"$DST_DIR/users"
touch -d "@$(($(date +%s) + 1))" "$DST_DIR/users"
last_user=$(dst_user "${tools[-1]}" "${lats[-1]}" "$runs")
python3 - "$DST_PORT" "$last_user" <<'PY'
import imaplib, sys, time
for _ in range(50):
    try:
        imaplib.IMAP4("127.0.0.1", int(sys.argv[1])).login(sys.argv[2], "pw")
        sys.exit(0)
    except imaplib.IMAP4.error:
        time.sleep(0.2)
sys.exit("user %s not accepted by the server" % sys.argv[2])
PY

# Count messages and sum RFC822.SIZE over every selectable source folder.
read -r src_msgs src_bytes < <(python3 "$infra/sizes.py" "$SRC_PORT" alice:alicepw)
[[ -n ${src_bytes:-} ]] || die "could not read the source's message sizes"
log "source: $src_msgs messages, $src_bytes bytes"
# The source as it is before any mutation, restored after each run.
cp -a "$SRC_DIR/mail/alice" "$work/alice.pristine"

# rss.py RSSFILE TIMEFILE CMD...: run CMD; append its wall time (seconds,
# fork and exec included) to TIMEFILE and the peak RSS (kB) of its largest
# process (ru_maxrss over waited-for children) to RSSFILE; exit with its code.
cat >"$work/rss.py" <<'EOF'
import resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.run(sys.argv[3:]).returncode
t1 = time.monotonic()
with open(sys.argv[2], "w") as f:
    f.write("%.3f\n" % (t1 - t0))
with open(sys.argv[1], "a") as f:
    f.write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
EOF

# Results: R[tool.latency.metric] = space-separated values, one per run.
declare -A R
add() { R[$1]+="${R[$1]:+ }$2"; }
CHECKS=()
declare -A VMAP=([mbsync]="--map Junk=Junk")

# check TOOL LAT RUN STAGE: verify.py on the tool's destination account (read
# directly, not through the proxy); records ok/FAIL.
check() {
  local tool=$1 lat=$2 run=$3 stage=$4 out rc=0 user extra=
  user=$(dst_user "$tool" "$lat" "$run")
  # shellcheck disable=SC2086
  out=$(python3 "$infra/verify.py" --src "$SRC_ACCOUNT" --dst "127.0.0.1:$DST_PORT:$user:pw" \
    --account "$user" ${VMAP[$tool]:-} 2>>"$work/verify.err") || rc=$?
  if [[ $rc == 1 && $tool == mbsync ]]; then
    extra=" | $(python3 "$here/lenient_check.py" "$SRC_ACCOUNT" "127.0.0.1:$DST_PORT:$user:pw" Junk=Junk 2>&1 | tail -n 1 || true)"
  fi
  local verdict=FAIL
  [[ $rc == 0 ]] && verdict=ok
  add "$tool.$lat.${stage}_ok" "$verdict"
  CHECKS+=("$(printf '%-8s %5s ms run %d %-6s %-4s %s%s' "$tool" "$lat" "$run" "$stage" "$verdict" "${out#verify }" "$extra")")
  log "check $tool ${lat}ms run $run $stage: $verdict: $out$extra"
}

# --- mailshift (ms, and base: the same with BENCH_BASELINE's binaries) ----------
(umask 077 && head -c 32 /dev/urandom | xxd -p -c 64 >"$work/key")
export MAILSHIFT_KEY_FILE=$work/key
mkdir -p "$work/ms"

# DB[tool]: the database of each mailshift tool. base gets its own,
# mailshift_base in the same PostgreSQL, which its own coordinator migrates
# to its own schema: an older build's code need not work against the newer
# schema ms's coordinator applies (an added NOT NULL column breaks its
# inserts), and base's rows stay out of the tables ms's passes read.
declare -A DB=([ms]=$MAILSHIFT_DB)
if [[ -n $baseline ]]; then
  mkdir -p "$work/base"
  DB[base]="host=127.0.0.1 port=$MAILSHIFT_PG_PORT dbname=mailshift_base user=postgres"
  psql "$MAILSHIFT_DB" -qc 'CREATE DATABASE mailshift_base' >&2 || die "could not create the database mailshift_base"
fi
# mcoord TOOL ARGS...: the tool's coordinator, on its database.
mcoord() { MAILSHIFT_DB=${DB[$1]} "${COORD[$1]}" "${@:2}"; }

# ms_import TOOL LAT RUN: a one-account migration alice -> its user; prints
# its id.
ms_import() {
  local t=$1 d=$work/$1/l$2r$3 m
  mkdir -p "$d"
  printf 'source_login,source_password,destination_login,destination_password\nalice,alicepw,%s,pw\n' \
    "$(dst_user "$t" "$2" "$3")" >"$d/accounts.csv"
  cat >"$d/plan.json" <<EOF
{"name": "bench-$t-l$2r$3",
 "source": {"host": "127.0.0.1", "port": ${PORT[src.$2]}, "tls": "none", "auth": "plain", "max_connections": 10},
 "destination": {"host": "127.0.0.1", "port": ${PORT[dst.$2]}, "tls": "none", "auth": "plain", "max_connections": 10},
 "accounts": "accounts.csv"}
EOF
  m=$(cd "$d" && mcoord "$t" import plan.json 2>>"$work/$t/coordinator.log") || return 1
  # A pass schedules verified accounts only.
  mcoord "$t" verify "$m" >>"$work/$t/verify.log" 2>>"$work/$t/coordinator.log" || return 1
  echo "$m"
}

# Only one mailshift worker is alive at a time: ms's and base's would join
# the same consumer group and take each other's jobs. MS_TOOL is whose
# worker MS_PID is.
MS_STARTS=0
MS_TOOL=

# ms_worker_start TOOL: the tool's worker, in its consumer group (holding
# partitions) before anything is timed.
ms_worker_start() {
  MS_STARTS=$((MS_STARTS + 1))
  MS_LOG=$work/$1/worker-$MS_STARTS.log
  MAILSHIFT_DB=${DB[$1]} "${WORKER[$1]}" >"$MS_LOG" 2>&1 &
  MS_PID=$!
  MS_TOOL=$1
  for _ in $(seq 1200); do
    grep -q "assigned [1-9]" "$MS_LOG" && break
    kill -0 "$MS_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "assigned [1-9]" "$MS_LOG" || { tail -n 20 "$MS_LOG" >&2; die "$1's worker did not join its consumer group"; }
}

# ms_worker_stop: stops the worker and waits for it to end (it leaves the
# consumer group on its way out); records its peak RSS.
ms_worker_stop() {
  [[ -n $MS_PID ]] || return 0
  awk '/^VmHWM:/ { print $2 }' "/proc/$MS_PID/status" >>"$work/$MS_TOOL/rss" 2>/dev/null || true
  kill -TERM "$MS_PID" 2>/dev/null || true
  wait "$MS_PID" 2>/dev/null || true
  MS_PID=
  MS_TOOL=
}

# ms_worker_use TOOL: before a pass: the tool's worker runs, no other. On a
# shared machine something else may have stopped it (a broad pkill): say so
# and start another.
ms_worker_use() {
  if [[ -n $MS_PID && $MS_TOOL == "$1" ]]; then
    kill -0 "$MS_PID" 2>/dev/null && return 0
    wait "$MS_PID" 2>/dev/null || true
    log "$1's worker $MS_PID ended on its own (see $MS_LOG): starting another"
    MS_NOTES+=("$1's worker $MS_PID ended outside the benchmark's control before a pass (log: $(tail -n 1 "$MS_LOG" | cut -c1-120)); another was started")
    MS_PID=
  fi
  if [[ -n $MS_PID ]]; then
    log "stopping $MS_TOOL's worker $MS_PID, starting $1's"
    ms_worker_stop
  fi
  ms_worker_start "$1"
}
MS_NOTES=()

declare -A MIG
for t in ms base; do
  [[ " ${tools[*]} " == *" $t "* ]] || continue
  for l in "${lats[@]}"; do for r in $(seq "$runs"); do
    MIG[$t.$l.$r]=$(ms_import "$t" "$l" "$r") || die "$t: import failed (see $work/$t/coordinator.log)"
  done; done
done
for t in "${tools[@]}"; do
  [[ $t == ms || $t == base ]] && { ms_worker_use "$t"; break; }
done

# ms_pass TOOL LAT RUN N STAGE: one pass of ms or base; records the
# operator's wall time and the worker's own time (its "synced: pass N: ...,
# S s (" line after the pass began).
ms_pass() {
  local t=$1 l=$2 r=$3 n=$4 stage=$5 t0 t1 rc=0 from s line
  ms_worker_use "$t"
  from=$(($(wc -l <"$MS_LOG") + 1))
  t0=$(now)
  mcoord "$t" pass "${MIG[$t.$l.$r]}" "$n" >>"$work/$t/coordinator.log" 2>&1
  mcoord "$t" wait "${MIG[$t.$l.$r]}" "$n" 600 >>"$work/$t/coordinator.log" 2>&1 || rc=$?
  t1=$(now)
  [[ $rc == 0 ]] || log "$t: pass $n of l${l}r$r ended with wait rc=$rc (see $work/$t/coordinator.log)"
  add "$t.$l.$stage" "$(secs "$t0" "$t1")"
  for _ in $(seq 40); do
    line=$(tail -n "+$from" "$MS_LOG" | grep -m 1 "synced: pass $n:" || true)
    [[ -n $line ]] && break
    sleep 0.05
  done
  s=$(sed -n "s/.*synced: pass $n: .*, \([0-9.]*\) s (.*/\1/p" <<<"$line")
  # The worker's peak so far (a replaced worker's is kept).
  awk '/^VmHWM:/ { print $2 }' "/proc/$MS_PID/status" >>"$work/$t/rss" 2>/dev/null || true
  add "$t.$l.${stage}_self" "${s:-?}"
  echo "l${l}r$r $stage: ${line#*: }" >>"$work/$t/synced.txt"
}

# --- refcopy ----------------------------------------------------------------------
mkdir -p "$work/ref"
ref_pass() { # LAT RUN STAGE
  local l=$1 r=$2 rc=0
  python3 "$work/rss.py" "$work/ref/rss" "$work/ref/time" python3 "$here/refcopy.py" \
    --src "127.0.0.1:${PORT[src.$l]}:alice:alicepw" \
    --dst "127.0.0.1:${PORT[dst.$l]}:$(dst_user ref "$l" "$r"):pw" \
    --state "$work/ref/state-l${l}r$r.json" >>"$work/ref/refcopy.log" 2>&1 || rc=$?
  [[ $rc == 0 ]] || log "refcopy exited $rc (see $work/ref/refcopy.log)"
  add "ref.$l.$3" "$(awk '{ printf "%.2f", $1 }' "$work/ref/time")"
}

# --- mbsync -----------------------------------------------------------------------
# Far = source, Near = destination; 'Sync Pull' propagates new messages and
# flag changes far -> near only; CopyArrivalDate keeps INTERNALDATE. The
# destination's own special folders (auto-created, absent from the source)
# are left out, or mbsync fails on them with "far side box cannot be opened".
mkdir -p "$work/mbsync"
mbsync_pass() { # LAT RUN STAGE
  local l=$1 r=$2 rc=0 rcfile=$work/mbsync/l$1r$2.rc
  if [[ ! -f $rcfile ]]; then
    mkdir -p "$work/mbsync/state-l${l}r$r"
    cat >"$rcfile" <<EOF
IMAPAccount src
Host 127.0.0.1
Port ${PORT[src.$l]}
User alice
Pass alicepw
SSLType None
AuthMechs LOGIN

IMAPAccount dst
Host 127.0.0.1
Port ${PORT[dst.$l]}
User $(dst_user mbsync "$l" "$r")
Pass pw
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPStore dst
Account dst

Channel migrate
Far :src:
Near :dst:
Patterns * !Drafts !Sent !Spam "!Deleted Messages"
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState $work/mbsync/state-l${l}r$r/
EOF
  fi
  python3 "$work/rss.py" "$work/mbsync/rss" "$work/mbsync/time" mbsync -c "$rcfile" -a \
    >>"$work/mbsync/mbsync.log" 2>&1 || rc=$?
  [[ $rc == 0 ]] || log "mbsync exited $rc (see $work/mbsync/mbsync.log)"
  add "mbsync.$l.$3" "$(awk '{ printf "%.2f", $1 }' "$work/mbsync/time")"
}

# Round trips at 20 ms: the delay proxies log one line per connection when it
# ends, with its "turns" (the times the client sent after it had received:
# the round trips it waited for). rt_mark before a pass, rt_record TOOL STAGE
# after it sums the connections and turns of the lines since, per server.
touch "$work/proxy-src.log" "$work/proxy-dst.log"
rt_mark() { RT_SRC=$(wc -l <"$work/proxy-src.log"); RT_DST=$(wc -l <"$work/proxy-dst.log"); }
rt_record() {
  local side from c t
  sleep 0.3 # connections closed at the pass's end reach the log
  for side in src dst; do
    from=RT_${side^^}
    read -r c t < <(tail -n "+$((${!from} + 1))" "$work/proxy-$side.log" |
      awk '{ c++; t += $10 } END { print c + 0, t + 0 }')
    add "$1.$rtt.$2_${side}_conns" "$c"
    add "$1.$rtt.$2_${side}_turns" "$t"
  done
}

# one TOOL LAT RUN STAGE N: a pass of any tool, then its check.
one() {
  log "$1 ${2}ms run $3: $4"
  [[ $2 == "$rtt" ]] && rt_mark
  case $1 in
    ms | base) ms_pass "$1" "$2" "$3" "$5" "$4" ;;
    ref) ref_pass "$2" "$3" "$4" ;;
    mbsync) mbsync_pass "$2" "$3" "$4" ;;
  esac
  [[ $2 == "$rtt" ]] && rt_record "$1" "$4"
  check "$1" "$2" "$3" "$4"
}

# --- the runs ---------------------------------------------------------------------
t_bench=$(now)
for r in $(seq "$runs"); do
  for l in "${lats[@]}"; do
    for t in "${tools[@]}"; do
      one "$t" "$l" "$r" pass1 1
      one "$t" "$l" "$r" noop 2
    done
  done
  log "run $r: mutating the source: 200 new messages in INBOX, flag changes on 500 INBOX messages"
  (cd "$infra" && python3 mutate.py "$SRC_ACCOUNT" append INBOX 200 --corpus "$corpus" --seed 7 &&
    python3 mutate.py "$SRC_ACCOUNT" flags INBOX 500 --seed 7) >"$work/mutate-$r.log"
  for l in "${lats[@]}"; do
    for t in "${tools[@]}"; do one "$t" "$l" "$r" delta 3; done
  done
  if ((r < runs)); then
    # No session is open now (every tool logged out): put the maildir back.
    sleep 0.5
    rm -rf "$SRC_DIR/mail/alice"
    cp -a "$work/alice.pristine" "$SRC_DIR/mail/alice"
  fi
done
t_end=$(now)

# --- report -----------------------------------------------------------------------
max_rss_mb() { [[ -s $1 ]] && sort -n "$1" | tail -n 1 | awk '{ printf "%.1f", $1 / 1024 }' || echo -; }
# The mailshift worker that still runs: its peak, then it stops.
ms_worker_stop
ms_rss=$(max_rss_mb "$work/ms/rss")

keys=()
for k in "${!R[@]}"; do keys+=("$k=${R[$k]}"); done

echo
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "source:  $src_msgs messages, $src_bytes bytes (sum of RFC822.SIZE), 4 folders; delta: +200 messages, flag changes on 500"
echo "PostgreSQL fsync=on synchronous_commit=on; ${rtt} ms RTT = delay_proxy.py in front of src and dst; $runs runs; bench took $(secs "$t_bench" "$t_end") s"
echo
python3 - "$rtt" "${tools[*]}" "$runs" "$ms_rss" "$(max_rss_mb "$work/ref/rss")" \
  "$(max_rss_mb "$work/mbsync/rss")" "$(max_rss_mb "$work/base/rss")" "$baseline" "${keys[@]}" <<'PY'
import statistics, sys
rtt, tools, runs, ms_rss, ref_rss, mb_rss, base_rss, baseline = sys.argv[1:9]
tools = tools.split()
R = dict(a.split("=", 1) for a in sys.argv[9:])

def vals(key):
    out = []
    for v in R.get(key, "").split():
        try:
            out.append(float(v))
        except ValueError:
            pass
    return out

def med(key):
    v = vals(key)
    return statistics.median(v) if v else None

def cell(key):
    v = vals(key)
    if not v:
        return "-"
    s = "%.2f" % statistics.median(v)
    if len(v) > 1:
        s += " (%.2f–%.2f)" % (min(v), max(v))
    return s

def ratio(a, b):
    x, y = med(a), med(b)
    return "%.2f×" % (x / y) if x and y else "-"

def oks(tool, lat, stage):
    v = R.get("%s.%s.%s_ok" % (tool, lat, stage), "").split()
    return "%d/%d" % (v.count("ok"), len(v)) if v else "-"

head = ["", "mailshift worker (s)", "mailshift operator wall (s)"]
if "base" in tools:
    head += ["baseline worker (s)", "baseline operator wall (s)", "ratio base/ms worker",
             "ratio base/ms operator"]
if "ref" in tools:
    head += ["refcopy wall (s)", "ratio ref/ms worker", "ratio ref/ms operator"]
if "mbsync" in tools:
    head += ["mbsync wall (s)"]
print("Medians of %s runs (min–max); ratio = refcopy's time / mailshift's: above 1.0× mailshift is faster." % runs)
if "base" in tools:
    print("baseline = the same mailshift passes with the binaries of %s; ratio base/ms above 1.0×:" % baseline)
    print("this build is faster than the baseline.")
print()
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for stage, label in (("pass1", "pass 1"), ("noop", "no-op pass"), ("delta", "delta pass")):
    for lat in ("0", rtt):
        name = "%s, %s" % (label, "loopback" if lat == "0" else "%s ms RTT" % lat)
        row = [name, cell("ms.%s.%s_self" % (lat, stage)), cell("ms.%s.%s" % (lat, stage))]
        if "base" in tools:
            row += [cell("base.%s.%s_self" % (lat, stage)), cell("base.%s.%s" % (lat, stage)),
                    ratio("base.%s.%s_self" % (lat, stage), "ms.%s.%s_self" % (lat, stage)),
                    ratio("base.%s.%s" % (lat, stage), "ms.%s.%s" % (lat, stage))]
        if "ref" in tools:
            row += [cell("ref.%s.%s" % (lat, stage)),
                    ratio("ref.%s.%s" % (lat, stage), "ms.%s.%s_self" % (lat, stage)),
                    ratio("ref.%s.%s" % (lat, stage), "ms.%s.%s" % (lat, stage))]
        if "mbsync" in tools:
            row += [cell("mbsync.%s.%s" % (lat, stage))]
        print("| " + " | ".join(row) + " |")
print()
print("Exact by verify.py (runs ok / runs), pass 1, no-op, delta:")
print()
print("| tool | loopback | %s ms RTT |" % rtt)
print("|---|---|---|")
for t in tools:
    print("| %s | %s | %s |" % ({"ms": "mailshift", "base": "baseline", "ref": "refcopy"}.get(t, t),
        " / ".join(oks(t, "0", s) for s in ("pass1", "noop", "delta")),
        " / ".join(oks(t, rtt, s) for s in ("pass1", "noop", "delta"))))
print()
print("Round trips waited for at %s ms RTT (medians; per server: connections, client turns = the"
      % rtt)
print("times a client sent after it had received, counted by the delay proxies):")
print()
names = {"ms": "mailshift", "base": "baseline", "ref": "refcopy"}
head = [""] + ["%s %s" % (names.get(t, t), side) for t in tools for side in ("src", "dst")]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for stage, label in (("pass1", "pass 1"), ("noop", "no-op pass"), ("delta", "delta pass")):
    row = [label]
    for t in tools:
        for side in ("src", "dst"):
            c, tr = med("%s.%s.%s_%s_conns" % (t, rtt, stage, side)), med("%s.%s.%s_%s_turns" % (t, rtt, stage, side))
            row.append("-" if c is None else "%g conn, %g turns" % (c, tr))
    print("| " + " | ".join(row) + " |")
if "mbsync" in tools:
    print()
    print("mbsync is never exact: it inserts an X-TUID header into every message and drops the")
    print("$Work and $Personal keywords (the lenient check below says what differs besides X-TUID).")
print()
print("Peak RSS (MB): mailshift worker %s (VmHWM after each pass, largest)%s; refcopy %s; mbsync %s"
      % (ms_rss, "; baseline worker %s" % base_rss if "base" in tools else "", ref_rss, mb_rss))
PY
echo
echo "Every check (verify.py; mbsync also the lenient check ignoring X-TUID):"
printf '  %s\n' "${CHECKS[@]}"
if ((${#MS_NOTES[@]})); then
  echo
  printf 'note: %s\n' "${MS_NOTES[@]}"
fi
if [[ -s $work/ms/synced.txt ]]; then
  echo
  echo "mailshift worker's pass lines (last run):"
  grep "r$runs " "$work/ms/synced.txt" | sed 's/^/  /'
fi
if [[ -s $work/base/synced.txt ]]; then
  echo
  echo "baseline worker's pass lines (last run):"
  grep "r$runs " "$work/base/synced.txt" | sed 's/^/  /'
fi
