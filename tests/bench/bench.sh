#!/usr/bin/env bash
# bench.sh: mailshift next to mbsync and doveadm backup, on one machine.
#
# Starts its own throwaway test stack (tests/infra/stack.sh: PostgreSQL,
# Dovecot src/dst/dst2, the local Kafka broker) on ports MAILSHIFT_PORT_BASE
# (default 17300) .. +6, fills the source account alice with the SpamAssassin
# corpus (6,046 messages in INBOX, Archive/2002, Old Projects, Junk) and copies
# it with each tool into its own fresh destination account:
#
#   mailshift>dst2  one mailshift worker, destination dst2 ('/' delimiter like
#                   the source, no MULTIAPPEND: one APPEND per message)
#   mailshift>dst   one mailshift worker, destination dst (Maildir++ '.'
#                   delimiter, special-use names differ, MULTIAPPEND offered)
#   mbsync          isync's mbsync, IMAP store to IMAP store, into dst
#   doveadm         'doveadm backup -R' with the imapc backend (Dovecot's
#                   documented migration path) into dst; note it writes the
#                   destination maildir directly (it runs with dst's config on
#                   the destination host), it does not go through dst's IMAP
#
# For each tool it measures:
#   pass 1      a full copy into an empty account (seconds, messages/s, MB/s
#               of source bytes = sum of the source's RFC822.SIZE)
#   no-op       the same run again with nothing changed
#   delta       after the source changed once for everyone (mutate.py: 200
#               new messages appended to INBOX, flag changes on 500 INBOX
#               messages), the run that brings the destination up to date
#   peak RSS    largest resident set of the tool's own process over its runs
#               (mailshift: the worker's VmHWM; others: ru_maxrss of the child)
#   exact       tests/infra/verify.py after pass 1 and after delta (bytes,
#               flags including keywords, INTERNALDATE of every message)
#
# Order: every tool's pass 1 + no-op, then one source mutation, then every
# tool's delta. mailshift times run from 'coordinator pass' to the end of
# 'coordinator wait', with the worker already started and in its consumer
# group (its start-up and Kafka group join are not timed). Times are
# wall-clock 'date +%s.%N' differences.
#
# Usage: tests/bench/bench.sh        (needs build/ from a prior build, root,
#        mbsync (isync), doveadm, python3, npm for the corpus cache)
# Env:   MAILSHIFT_PORT_BASE (17300), MAILSHIFT_BUILD (REPO/build),
#        BENCH_KEEP=1 keeps the work directory (logs, configs) afterwards.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
infra=$repo/tests/infra
build=${MAILSHIFT_BUILD:-$repo/build}
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-17300}
export MAILSHIFT_BUILD=$build

coord=$build/coordinator/mailshift-coordinator
worker_bin=$build/worker/mailshift-worker

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for b in "$coord" "$worker_bin" "$build/deploy/broker/mailshift-broker"; do
  [[ -x $b ]] || die "$b not found: build the project first (cmake into $build); bench.sh builds nothing"
done
for c in mbsync doveadm python3 xxd; do
  command -v "$c" >/dev/null || die "$c not found"
done

work=$(mktemp -d /tmp/mailshift-bench.XXXXXX)
chmod 755 "$work"
stack=$work/stack
workers=()

cleanup() {
  local pid
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
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

# --- stack and source data ----------------------------------------------------
log "starting stack in $stack (ports $MAILSHIFT_PORT_BASE..+6)"
bash "$infra/stack.sh" start "$stack" >&2
# shellcheck disable=SC1091
source "$stack/env"

corpus=$(bash "$infra/corpus.sh")
bash "$infra/users.sh" add "$SRC_DIR" alice alicepw
python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/alice/Maildir" --layout fs >&2
SRC_ACCOUNT=127.0.0.1:$SRC_PORT:alice:alicepw

# Count messages and sum RFC822.SIZE over every selectable source folder.
read -r src_msgs src_bytes < <(python3 "$infra/sizes.py" "$SRC_PORT" alice:alicepw)
[[ -n ${src_bytes:-} ]] || die "could not read the source's message sizes"
log "source: $src_msgs messages, $src_bytes bytes"

# rss.py OUTFILE CMD...: run CMD, append the peak RSS (kB) of its largest
# process (ru_maxrss over waited-for children) to OUTFILE, exit with its code.
cat >"$work/rss.py" <<'EOF'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
with open(sys.argv[1], "a") as f:
    f.write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
EOF

# Results: R[tool.metric].
declare -A R
tools=(ms_dst mbsync doveadm ms_dst2)
declare -A TITLE=([ms_dst2]="mailshift>dst2" [ms_dst]="mailshift>dst" [mbsync]="mbsync>dst" [doveadm]="doveadm>dst")
declare -A VMAP=()

# check TOOL STAGE DST_ACCOUNT: run verify.py, record exact/NOT and its summary.
check() {
  local tool=$1 stage=$2 dst=$3 out rc=0
  # shellcheck disable=SC2086
  out=$(python3 "$infra/verify.py" --src "$SRC_ACCOUNT" --dst "$dst" --account "$tool" ${VMAP[$tool]:-} 2>"$work/verify-$tool-$stage.err") || rc=$?
  echo "$out" >>"$work/verify-$tool-$stage.err"
  R[$tool.${stage}_exact]=$([[ $rc == 0 ]] && echo yes || echo "NO(rc=$rc)")
  R[$tool.${stage}_detail]=${out#*compared: }
  log "$tool $stage verify: rc=$rc $out"
  # Not exact: say what differs besides an inserted X-TUID header (mbsync).
  if [[ $rc == 1 ]]; then
    R[$tool.${stage}_detail]+=$'\n'"                    $(python3 "$here/lenient_check.py" "$SRC_ACCOUNT" "$dst" 2>&1 || true)"
  fi
}

# record_pass1 TOOL SECONDS
record_pass1() {
  R[$1.pass1]=$2
  R[$1.mps]=$(python3 -c 'import sys; print("%.0f" % (int(sys.argv[1]) / float(sys.argv[2])))' "$src_msgs" "$2")
  R[$1.mbps]=$(python3 -c 'import sys; print("%.2f" % (int(sys.argv[1]) / 1e6 / float(sys.argv[2])))' "$src_bytes" "$2")
}

max_rss_mb() { sort -n "$1" | tail -n 1 | awk '{ printf "%.1f", $1 / 1024 }'; }

# --- mailshift ------------------------------------------------------------------
(umask 077 && head -c 32 /dev/urandom | xxd -p -c 64 >"$work/key")
export MAILSHIFT_KEY_FILE=$work/key

# ms_import TOOL DST_PORT: a one-account migration alice -> msh; prints its id.
ms_import() {
  local tool=$1 port=$2 d=$work/$1
  mkdir -p "$d"
  printf 'source_login,source_password,destination_login,destination_password\nalice,alicepw,msh,pw\n' >"$d/accounts.csv"
  cat >"$d/plan.json" <<EOF
{"name": "bench-$tool",
 "source": {"host": "127.0.0.1", "port": $SRC_PORT, "tls": "none", "auth": "plain", "max_connections": 10},
 "destination": {"host": "127.0.0.1", "port": $port, "tls": "none", "auth": "plain", "max_connections": 10},
 "accounts": "accounts.csv"}
EOF
  local m
  m=$(cd "$d" && "$coord" import plan.json 2>>"$d/coordinator.log") || return 1
  # A pass schedules verified accounts only.
  "$coord" verify "$m" >>"$d/verify.log" 2>>"$d/coordinator.log" || return 1
  echo "$m"
}

# ms_worker_start TOOL: start one worker and wait until it has its partitions.
ms_worker_start() {
  local d=$work/$1
  MS_LOG=$d/worker-$(date +%s%N).log
  local logf=$MS_LOG
  "$worker_bin" >"$logf" 2>&1 &
  MS_PID=$!
  workers+=("$MS_PID")
  for _ in $(seq 300); do
    grep -q assigned "$logf" && return 0
    kill -0 "$MS_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$logf" >&2
  die "mailshift worker did not join its consumer group"
}

# ms_worker_stop TOOL: record VmHWM (kB) and stop the worker.
ms_worker_stop() {
  awk '/^VmHWM:/ { print $2 }' "/proc/$MS_PID/status" >>"$work/$1/rss"
  kill -TERM "$MS_PID"
  wait "$MS_PID" || true
}

# ms_pass TOOL MIGRATION N: prints the seconds from 'pass' to the end of 'wait'.
ms_pass() {
  local d=$work/$1 t0 t1 rc=0
  t0=$(now)
  "$coord" pass "$2" "$3" >>"$d/coordinator.log" 2>&1
  "$coord" wait "$2" "$3" 600 >>"$d/coordinator.log" 2>&1 || rc=$?
  t1=$(now)
  [[ $rc == 0 ]] || log "$1: pass $3 ended with wait rc=$rc (see $d/coordinator.log)"
  secs "$t0" "$t1"
}

# ms_self TOOL N: the pass duration the worker itself logged (its "synced:
# pass N: ... S s" line), to compare with the coordinator-to-coordinator time.
ms_self() {
  local s
  for _ in $(seq 20); do grep -q "synced: pass $2:" "$MS_LOG" && break; sleep 0.05; done
  s=$(sed -n "s/.*synced: pass $2: .*, \([0-9.]*\) s (.*/\1/p" "$MS_LOG" | tail -n 1)
  R[$1.self]+="${R[$1.self]:+, }pass $2 ${s:-?} s"
}

declare -A MIG DSTACC
bash "$infra/users.sh" add "$DST2_DIR" msh pw
bash "$infra/users.sh" add "$DST_DIR" msh pw
MIG[ms_dst2]=$(ms_import ms_dst2 "$DST2_PORT")
MIG[ms_dst]=$(ms_import ms_dst "$DST_PORT")
DSTACC[ms_dst2]=127.0.0.1:$DST2_PORT:msh:pw
DSTACC[ms_dst]=127.0.0.1:$DST_PORT:msh:pw

run_mailshift() { # TOOL
  local tool=$1 s
  log "$tool: pass 1"
  ms_worker_start "$tool"
  s=$(ms_pass "$tool" "${MIG[$tool]}" 1)
  record_pass1 "$tool" "$s"
  ms_self "$tool" 1
  check "$tool" pass1 "${DSTACC[$tool]}"
  log "$tool: no-op pass"
  R[$tool.noop]=$(ms_pass "$tool" "${MIG[$tool]}" 2)
  ms_self "$tool" 2
  ms_worker_stop "$tool"
}

delta_mailshift() { # TOOL
  local tool=$1
  log "$tool: delta pass"
  ms_worker_start "$tool"
  R[$tool.delta]=$(ms_pass "$tool" "${MIG[$tool]}" 3)
  ms_self "$tool" 3
  ms_worker_stop "$tool"
  check "$tool" delta "${DSTACC[$tool]}"
  R[$tool.rss]=$(max_rss_mb "$work/$tool/rss")
}

# --- mbsync -----------------------------------------------------------------------
# Far = source, Near = destination; 'Sync Pull' propagates new messages and
# flag changes far -> near only; CopyArrivalDate keeps INTERNALDATE.
bash "$infra/users.sh" add "$DST_DIR" mbs pw
DSTACC[mbsync]=127.0.0.1:$DST_PORT:mbs:pw
# mbsync and doveadm keep folder names; they do not map Junk to the
# destination's special-use folder (Spam) as mailshift does.
VMAP[mbsync]="--map Junk=Junk"
mkdir -p "$work/mbsync/state"
cat >"$work/mbsync/mbsyncrc" <<EOF
IMAPAccount src
Host 127.0.0.1
Port $SRC_PORT
User alice
Pass alicepw
SSLType None
AuthMechs LOGIN

IMAPAccount dst
Host 127.0.0.1
Port $DST_PORT
User mbs
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
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState $work/mbsync/state/
EOF

mbsync_run() { # prints seconds
  local t0 t1 rc=0
  t0=$(now)
  python3 "$work/rss.py" "$work/mbsync/rss" mbsync -c "$work/mbsync/mbsyncrc" -a \
    >>"$work/mbsync/mbsync.log" 2>&1 || rc=$?
  t1=$(now)
  [[ $rc == 0 ]] || log "mbsync exited $rc (see $work/mbsync/mbsync.log)"
  secs "$t0" "$t1"
}

# --- doveadm backup (imapc) ----------------------------------------------------
# Run with dst's configuration: the imapc settings point at the source, and
# -R makes the imapc: side the master and the user's local mailbox the copy.
bash "$infra/users.sh" add "$DST_DIR" dove pw
DSTACC[doveadm]=127.0.0.1:$DST_PORT:dove:pw
VMAP[doveadm]="--map Junk=Junk"
mkdir -p "$work/doveadm"
# dsync wants one hierarchy separator on both sides: dst's namespace is told
# to show '/' like the source (the maildir keeps its '.' on disk).
doveadm_cmd=(doveadm -c "$DST_CONF" -o "namespace/inbox/separator=/"
  -o imapc_host=127.0.0.1 -o "imapc_port=$SRC_PORT" -o imapc_ssl=no
  -o imapc_user=alice -o imapc_password=alicepw
  -o "imapc_features=rfc822.size fetch-headers" -o mail_prefetch_count=20
  backup -R -u dove imapc:)

doveadm_run() { # prints seconds
  local t0 t1 rc=0
  t0=$(now)
  python3 "$work/rss.py" "$work/doveadm/rss" "${doveadm_cmd[@]}" >>"$work/doveadm/doveadm.log" 2>&1 || rc=$?
  t1=$(now)
  [[ $rc == 0 ]] || log "doveadm exited $rc (see $work/doveadm/doveadm.log)"
  secs "$t0" "$t1"
}

run_other() { # TOOL FUNC
  local tool=$1 fn=$2 s
  log "$tool: pass 1"
  s=$($fn)
  record_pass1 "$tool" "$s"
  check "$tool" pass1 "${DSTACC[$tool]}"
  log "$tool: no-op run"
  R[$tool.noop]=$($fn)
}

delta_other() { # TOOL FUNC
  local tool=$1 fn=$2
  log "$tool: delta run"
  R[$tool.delta]=$($fn)
  check "$tool" delta "${DSTACC[$tool]}"
  R[$tool.rss]=$(max_rss_mb "$work/$tool/rss")
}

# --- the runs ---------------------------------------------------------------------
run_mailshift ms_dst2
run_mailshift ms_dst
run_other mbsync mbsync_run
run_other doveadm doveadm_run

log "mutating the source: append 200 to INBOX, flag changes on 500 INBOX messages"
python3 "$infra/mutate.py" "$SRC_ACCOUNT" append INBOX 200 --corpus "$corpus" --seed 7 >"$work/mutate.log"
python3 "$infra/mutate.py" "$SRC_ACCOUNT" flags INBOX 500 --seed 7 >>"$work/mutate.log"

delta_mailshift ms_dst2
delta_mailshift ms_dst
delta_other mbsync mbsync_run
delta_other doveadm doveadm_run

# --- report -----------------------------------------------------------------------
row() { # LABEL KEY
  local t
  printf '%-22s' "$1"
  for t in "${tools[@]}"; do printf ' %16s' "${R[$t.$2]:--}"; done
  printf '\n'
}

echo
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "source:  $src_msgs messages, $src_bytes bytes (sum of RFC822.SIZE), 4 folders; delta: +200 messages, 500 flag changes"
echo
printf '%-22s' ""; for t in "${tools[@]}"; do printf ' %16s' "${TITLE[$t]}"; done; printf '\n'
row "pass 1 (s)" pass1
row "pass 1 messages/s" mps
row "pass 1 MB/s" mbps
row "peak RSS (MB)" rss
row "no-op pass (s)" noop
row "delta pass (s)" delta
row "exact after pass 1" pass1_exact
row "exact after delta" delta_exact
echo
echo "verify.py details:"
for t in "${tools[@]}"; do
  printf '  %-16s pass 1: %s\n' "${TITLE[$t]}" "${R[$t.pass1_detail]}"
  printf '  %-16s delta:  %s\n' "" "${R[$t.delta_detail]}"
done
echo
echo "mailshift worker's own pass durations (from 'started' to 'synced', in its log):"
for t in ms_dst2 ms_dst; do printf '  %-16s %s\n' "${TITLE[$t]}" "${R[$t.self]}"; done
