# Shared helpers of the integration tests: a stack per run, migrations built
# from a plan, passes run through the real broker and worker, checks by the
# independent verifier.  Source it; it expects $repo and $work.

passed=0
failed=0
failures=()

ok() { passed=$((passed + 1)); echo "ok   - $1"; }
not_ok() {
  failed=$((failed + 1)); failures+=("$1")
  echo "FAIL - $1${2:+: $2}"
}
# check NAME CMD...: ok when CMD succeeds.
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

B=${MAILSHIFT_BUILD:-$repo/build}
COORD=$B/coordinator/mailshift-coordinator
WORKER=$B/worker/mailshift-worker
infra=$repo/tests/infra

stack_start() {
  stack=$work/stack
  MAILSHIFT_BUILD=$B bash "$infra/stack.sh" start "$stack" >"$work/stack.log" 2>&1 ||
    { cat "$work/stack.log"; return 1; }
  # shellcheck disable=SC1091
  source "$stack/env"
  export MAILSHIFT_KEY_FILE=$work/key
  # 0600 from the start: a key file group or others can read is refused.
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$MAILSHIFT_KEY_FILE")
  corpus=$(bash "$infra/corpus.sh")
}

stack_stop() { [[ -n ${stack:-} ]] && bash "$infra/stack.sh" stop "$stack" >/dev/null 2>&1 || true; }

# Processes a suite starts besides the current worker (the scheduler, proxies,
# workers kept in lists); stopped when the script exits.
pids=()

# suite_start: the stack and, as in production, the scheduler daemon (it
# re-queues accounts whose lease expired, retries failed ones, publishes what
# the pass commands left and folds the workers' events into live totals).  On
# exit all of it is stopped and the work directory removed (kept with KEEP_WORK).
suite_start() {
  trap suite_cleanup EXIT
  stack_start || { echo "0 passed, 1 failed"; exit 1; }
  echo "# stack up in $work (ports from $MAILSHIFT_PORT_BASE)"
  "$COORD" run >"$work/scheduler.log" 2>&1 &
  pids+=($!)
}

suite_cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  worker_stop
  stack_stop
  [[ -n ${KEEP_WORK:-} ]] || rm -rf "$work"
}

# serve NAME CMD...: starts a helper of tests/infra that prints "listening on
# 127.0.0.1:PORT" (throttle_proxy.py, tcp_gate.py), its output in
# $work/NAME.out; waits up to 10 s for that line; sets served_pid and
# served_port.  Stopped on exit with the rest.
serve() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>&1 &
  served_pid=$!
  pids+=("$served_pid")
  for _ in $(seq 1 100); do grep -q "^listening on" "$work/$name.out" && break; sleep 0.1; done
  served_port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/$name.out")
}

# suite_end: the failed checks (the work directory is then kept), and
# "N passed, N failed" last; status 0 only if all passed.
suite_end() {
  echo
  if [[ $failed -gt 0 ]]; then
    printf 'failed: %s\n' "${failures[@]}"
    KEEP_WORK=1
    echo "# work directory kept: $work"
  fi
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}

sql() { psql "$MAILSHIFT_DB" -qAt -c "$1"; }

# add_user SRC|DST|DST2 USER PASS
# Waits until the server accepts the login: Dovecot rereads its passwd-file
# lazily, so a user added a moment ago may not be known yet.
add_user() {
  local dir_var="${1}_DIR" port_var="${1}_PORT"
  bash "$infra/users.sh" add "${!dir_var}" "$2" "$3"
  python3 - "${!port_var}" "$2" "$3" <<'PY'
import imaplib, sys, time
for _ in range(50):
    try:
        imaplib.IMAP4("127.0.0.1", int(sys.argv[1])).login(sys.argv[2], sys.argv[3])
        sys.exit(0)
    except imaplib.IMAP4.error:
        time.sleep(0.2)
sys.exit("user %s not accepted by the server" % sys.argv[2])
PY
}

# add_users PREFIX N SIDE...: users PREFIX1..PREFIXN with passwords
# PREFIXpw1..PREFIXpwN on each side (SRC, DST, DST2), written in one go (one
# passwd-file reread instead of N), then waits until the last one logs in.
add_users() {
  local prefix=$1 n=$2 side dir_var i
  shift 2
  for side in "$@"; do
    dir_var="${side}_DIR"
    for i in $(seq 1 "$n"); do printf '%s%s:{PLAIN}%spw%s::::::\n' "$prefix" "$i" "$prefix" "$i"; done \
      >>"${!dir_var}/users"
    touch -d "@$(($(stat -c %Y "${!dir_var}/users") + 1))" "${!dir_var}/users"
    add_user "$side" "$prefix$n" "${prefix}pw$n"
  done
}

# fill_corpus USER [LIMIT]: the user's source maildir from the corpus.
fill_corpus() {
  python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/$1/Maildir" \
    --layout fs ${2:+--limit "$2"} >/dev/null
}

# server_json ROLE PORT TLS [CA]
server_json() {
  local ca=${4:-}
  printf '{"host": "127.0.0.1", "port": %s, "tls": "%s", %s "auth": "plain", "max_connections": 10}' \
    "$2" "$3" "${ca:+\"ca_file\": \"$ca\",}"
}

# make_plan NAME SRCJSON DSTJSON CSVLINES...: writes $work/NAME/plan.json and prints its path.
make_plan() {
  local name=$1 src=$2 dst=$3; shift 3
  mkdir -p "$work/$name"
  printf '{"name": "%s", "source": %s, "destination": %s, "accounts": "accounts.csv"}\n' \
    "$name" "$src" "$dst" >"$work/$name/plan.json"
  { echo "source_login,source_password,destination_login,destination_password"
    printf '%s\n' "$@"; } >"$work/$name/accounts.csv"
  echo "$work/$name/plan.json"
}

# import_plan PLAN: imports and verifies the accounts' credentials; prints the
# migration id.  Only verified accounts are scheduled by a pass.
import_plan() {
  local m
  m=$("$COORD" import "$1" 2>>"$work/coordinator.log") || return 1
  "$COORD" verify "$m" >>"$work/verify.log" 2>>"$work/coordinator.log"
  echo "$m"
}

# run_pass MIGRATION PASS: publish the pass and wait for its end (exit 0 = all synced).
run_pass() {
  "$COORD" pass "$1" "$2" 2>>"$work/coordinator.log" &&
    "$COORD" wait "$1" "$2" "${PASS_TIMEOUT:-300}" 2>>"$work/coordinator.log"
}

worker_start() {
  local log=$work/worker.$((++worker_runs)).log
  "$WORKER" --lease-ttl "${LEASE_TTL:-60}" "$@" >"$log" 2>&1 &
  worker_pid=$!
  worker_log=$log
  # The mock broker needs a consumer-group rebalance (about 5 s) before jobs
  # flow, longer when a killed member's session must time out first.
  for _ in $(seq 1 600); do
    grep -q "assigned" "$log" && return 0
    kill -0 "$worker_pid" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.1
  done
  echo "worker did not join the consumer group within 60 s: stopped" >&2
  worker_stop
  return 1
}

worker_stop() {
  [[ -n ${worker_pid:-} ]] || return 0
  kill -TERM "$worker_pid" 2>/dev/null || true
  wait "$worker_pid" 2>/dev/null || true
  worker_pid=
}

# verify SRCUSER:SRCPASS DSTPORT DSTUSER:DSTPASS [verify.py options]
verify() {
  local src=$1 port=$2 dst=$3; shift 3
  python3 "$infra/verify.py" --src "127.0.0.1:$SRC_PORT:$src" --dst "127.0.0.1:$port:$dst" "$@"
}

state() { python3 "$infra/imapstate.py" "127.0.0.1:$1:$2"; }

# dst_has_folder PORT USER PASS NAME: the server lists NAME (modified UTF-7).
dst_has_folder() {
  python3 - "$@" <<'PY'
import imaplib, sys
port, user, pw, name = sys.argv[1:]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, pw)
typ, data = c.list()
sys.exit(0 if any(line.decode().endswith(' "%s"' % name) or line.decode().endswith(" " + name)
                  for line in data) else 1)
PY
}
