#!/usr/bin/env bash
# End-to-end test of the `mailshift` CLI against the coordinator's HTTP API
# and real servers started here (PostgreSQL, Dovecot, the Kafka-protocol
# broker, a worker): a migration driven only through the CLI, from import to
# a finished final pass (import, verify, start, status --watch on a plain
# pipe and under tmux, wait, delta --final, errors, report --csv, --json),
# the destination checked exact by tests/infra/verify.py and the report's
# counts by the destination's own; then the exit codes an operator's script
# relies on (bad token, unknown migration, unreachable API, usage), and the
# token never printed.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-cli-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-18900}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"
# shellcheck source=serve_api.sh
source "$repo/tests/integration/serve_api.sh"
CLI=$B/cli/mailshift
tmux_socket=mailshift-cli-$$

cli_cleanup() {
  tmux -L "$tmux_socket" kill-server 2>/dev/null
  suite_cleanup
}
suite_start
trap cli_cleanup EXIT

token=CliT0ken-$RANDOM$RANDOM-$RANDOM$RANDOM-cli
printf '# operators\nops:%s\n' "$token" >"$work/tokens"
printf '%s\n' "$token" >"$work/token"
printf 'WrongT0ken\n' >"$work/bad-token"
api_start --api-tokens-file "$work/tokens" || { echo "0 passed, 1 failed"; exit 1; }
export MAILSHIFT_API=$api_url MAILSHIFT_API_TOKEN_FILE=$work/token

# run NAME ARGS...: the CLI with ARGS, stdout in $work/NAME.out, stderr in
# $work/NAME.err; sets rc.
run() {
  local name=$1; shift
  timeout 600 "$CLI" "$@" >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
}
has() { grep -qF -- "$2" "$work/$1"; }
# json NAME EXPR: evaluates the Python expression EXPR on the JSON in
# $work/NAME.out (as j); exit 0 when it is true.
json() {
  python3 - "$work/$1.out" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(%s)" % sys.argv[2]) else 1)
PY
}

# --- a migration of two accounts, through the CLI only ------------------------
add_users cli 2 SRC DST
fill_corpus cli1 1500
fill_corpus cli2 400
# A rate limit on the destination: pass 1 takes some seconds, long enough to
# watch it progress.
p=$(make_plan cli "$(server_json src "$SRC_PORT" none)" \
  "$(server_json dst "$DST_PORT" none | sed 's/}$/, "max_messages_per_second": 150}/')" \
  "cli1,clipw1,cli1,clipw1" "cli2,clipw2,cli2,clipw2")

run import import "$p"
m=$(grep -E '^[0-9]+$' "$work/import.out")
check "import PLAN.json: exit 0, the new migration's id printed (exit $rc, id ${m:-none})" \
  test "$rc" = 0 -a -n "$m"
check "import: the accounts CSV was sent inline (2 accounts stored)" \
  test "$(sql "SELECT count(*) FROM accounts WHERE migration_id = ${m:-0}")" = 2

run migrations --json migrations
check "--json migrations parses as JSON and lists the migration with 2 accounts" \
  json migrations "any(x['id'] == $m and x['accounts'] == 2 for x in j['items'])"

run verify verify "$m"
check "verify: both accounts verified (exit $rc)" \
  eval 'test "$rc" = 0 && has verify.out "verified 2, auth_failed 0, verify_failed 0"'

worker_start || { echo "0 passed, 1 failed"; exit 1; }
run start start "$m"
check "start: pass 1 queued for 2 accounts (exit $rc)" \
  eval 'test "$rc" = 0 && has start.out "pass 1: 2 accounts queued"'

# status --watch twice at once: on a pipe (plain lines) and under tmux (a
# terminal: redrawn in place), both until nothing runs.
timeout 300 "$CLI" status "$m" --watch 1 >"$work/watch-plain.out" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")
tmux -L "$tmux_socket" new-session -d -s watch -x 150 -y 40 \
  "MAILSHIFT_API=$api_url MAILSHIFT_API_TOKEN_FILE=$work/token $CLI status $m --watch 1; sleep 600"
# The pane is captured twice a second, each screen kept in its own file.
mkdir -p "$work/screens"
for i in $(seq 1000 1600); do
  tmux -L "$tmux_socket" capture-pane -p -t watch >"$work/screens/$i.txt" 2>/dev/null
  grep -q "done watching" "$work/screens/$i.txt" && break
  sleep 0.5
done
last_screen=$work/screens/$i.txt
cat "$work/screens"/*.txt >"$work/watch-tmux.screens"

run wait wait "$m" 1 300
check "wait MIGRATION 1: exit 0, every account synced (exit $rc)" \
  eval 'test "$rc" = 0 && has wait.out "synced 2"'
wait "$watch_pid"
watch_rc=$?

# Per frame, in order: the migration's messages done, and its bytes
# percentage where a total is known.
done_counts() { sed -nE 's/^  messages (\[[#?-]*\] +[0-9]+%  )?([0-9]+).*/\2/p' "$1"; }
percents() { sed -n 's/^  bytes *\[[#?-]*\] *\([0-9]*\)%.*/\1/p' "$1"; }
done_counts "$work/watch-plain.out" >"$work/watch-plain.done"
percents "$work/watch-plain.out" >"$work/watch-plain.pct"
check "status --watch on a pipe: plain lines, no escape sequences, ends by itself (exit $watch_rc)" \
  eval 'test "$watch_rc" = 0 && ! grep -q $'"'"'\033'"'"' "$work/watch-plain.out" &&
        has watch-plain.out "done watching"'
check "status --watch: the migration's messages grew ($(sort -un "$work/watch-plain.done" | head -8 | tr '\n' ' ')...)" \
  eval 'test "$(sort -un "$work/watch-plain.done" | wc -l)" -ge 3 && sort -nc "$work/watch-plain.done"'
check "status --watch: percentages never go back and the last frame shows 100 % of 1900" \
  eval 'sort -nc "$work/watch-plain.pct" && test "$(tail -n 1 "$work/watch-plain.pct")" = 100 &&
        grep -qE "^  messages \[#+\] 100%  1900/1900 " "$work/watch-plain.out"'
check "status --watch: a line per running account with its folder, counts and rate" \
  eval 'grep -qE "^  running cli[12]  [A-Za-z]" "$work/watch-plain.out" &&
        grep -qE "^    bytes +.*[0-9.]+ (B|KiB|MiB)/s" "$work/watch-plain.out"'
done_counts "$work/watch-tmux.screens" >"$work/watch-tmux.done"
check "status --watch under tmux: redrawn in place, bars moved, final 100 %" \
  eval 'test "$(sort -un "$work/watch-tmux.done" | wc -l)" -ge 3 &&
        grep -qE "^  messages \[#+\] 100%  1900/1900 " "$last_screen" &&
        test "$(grep -c "migration $m " "$last_screen")" = 1'

check "cli1 copied exactly (verify.py: messages, flags, internal dates)" \
  verify cli1:clipw1 "$DST_PORT" cli1:clipw1 --account cli1-pass1
check "cli2 copied exactly" verify cli2:clipw2 "$DST_PORT" cli2:clipw2 --account cli2-pass1

run status status "$m"
check "status: both accounts synced, 1900 of 1900 messages" \
  eval 'test "$rc" = 0 && has status.out "synced 2" && has status.out "messages 1900 of 1900"'
run status-json --json status "$m"
check "--json status parses: states.synced 2, every account synced" \
  json status-json "j['migration']['states'].get('synced') == 2 and
                    all(a['state'] == 'synced' for a in j['accounts'])"

# --- a final pass after new mail ----------------------------------------------
python3 "$infra/mutate.py" "127.0.0.1:$SRC_PORT:cli1:clipw1" append INBOX 30 \
  --corpus "$corpus" --seed 21 >/dev/null
run final delta "$m" --final
check "delta --final: pass 2 queued (exit $rc)" \
  eval 'test "$rc" = 0 && has final.out "pass 2: 2 accounts queued"'
run wait2 wait "$m" 2 300
check "wait for the final pass: exit 0 (exit $rc)" test "$rc" = 0
check "after the final pass cli1 is exact again (the 30 new messages arrived)" \
  verify cli1:clipw1 "$DST_PORT" cli1:clipw1 --account cli1-final
run passes --json passes "$m"
check "--json passes: pass 1 bulk and pass 2 final, both ended" \
  json passes "[(p['number'], p['kind']) for p in j] == [(1, 'bulk'), (2, 'final')] and
               all(p['finished_at'] for p in j)"

# --- errors and the report ----------------------------------------------------
run errors errors "$m"
check "errors: none on a clean copy (exit $rc)" \
  eval 'test "$rc" = 0 && has errors.out "no errors"'
run errors-json --json errors "$m"
check "--json errors parses: an empty list" json errors-json "j['items'] == []"

state "$DST_PORT" cli1:clipw1 >"$work/dst-cli1.json"
state "$DST_PORT" cli2:clipw2 >"$work/dst-cli2.json"
run report report "$m" --csv
check "report --csv (exit $rc): per account and folder, both sides' counts equal the destination's" \
  python3 - "$work/report.out" "$work/dst-cli1.json" "$work/dst-cli2.json" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
dst = {"cli1": json.load(open(sys.argv[2])), "cli2": json.load(open(sys.argv[3]))}
def col(row, *names):
    for n in names:
        if n in row and row[n] != "":
            return row[n]
    raise SystemExit("report: no column %s in %s" % (names, list(row)))
seen = {}
for r in rows:
    acct = col(r, "source_login", "account")
    folder = col(r, "destination_folder", "destination_name", "folder")
    for name in ("state",):
        if col(r, name) != "synced":
            raise SystemExit("%s: state %s" % (acct, col(r, name)))
    want = len(dst[acct][folder]["messages"]) if folder in dst[acct] else None
    got_src = int(col(r, "source_messages"))
    got_dst = int(col(r, "destination_messages"))
    if want is None or got_dst != want or got_src != want:
        raise SystemExit("%s/%s: report %s/%s, destination %s" % (acct, folder, got_src, got_dst, want))
    seen.setdefault(acct, set()).add(folder)
for acct, state in dst.items():
    if seen.get(acct) != set(f for f, s in state.items() if s["messages"]):
        raise SystemExit("%s: folders %s, destination %s" % (acct, seen.get(acct), sorted(state)))
PY

run throughput --json throughput "$m" --minutes 30
check "--json throughput: per minute, summing to the 1930 messages copied" \
  json throughput "sum(r['messages'] for r in j) == 1930 and all('at' in r and 'bytes' in r for r in j)"
run throughput-text throughput "$m"
check "throughput: a line per minute (exit $rc)" \
  eval 'test "$rc" = 0 && test "$(grep -cE "^[0-9]{4}-" "$work/throughput-text.out")" -ge 1'

# --- estimate and proof ------------------------------------------------------------
run estimate estimate "$m"
check "estimate: the source's 1930 messages, per account and folder (exit $rc)" \
  eval 'test "$rc" = 0 && has estimate.out "total: 1930 messages" && has estimate.out "cli1: 1530 messages"'
run proof proof "$m"
check "proof of a clean migration: exit 0, both accounts complete and exact (exit $rc)" \
  eval 'test "$rc" = 0 && has proof.out "cli1: complete, exact" && has proof.out "cli2: complete, exact"'
run proof-json --json proof "$m"
check "--json proof parses: exact, no differences" \
  json proof-json "j['exact'] is True and all(a['exact'] and not a['differences'] for a in j['accounts'])"
run proof-last proof "$m" --last cli1
check "proof --last ACCOUNT: the stored proof (exit $rc)" \
  eval 'test "$rc" = 0 && has proof-last.out "cli1: complete, exact"'

# --- one account in detail, servers, retry, passwd --------------------------------
run account --json account "$m" cli1
check "--json account: per folder both sides' counts, summing to the 1530 messages" \
  json account "sum(f['destination_messages'] for f in j['folders']) == 1530 and
                all(f['source_messages'] == f['destination_messages'] for f in j['folders'])"
run account-text account "$m" cli1
check "account: folders, passes and the state history with the API actor" \
  eval 'test "$rc" = 0 && has account-text.out "INBOX" && has account-text.out "pass 2 final" &&
        has account-text.out "verified -> queued by api:ops"'
run servers --json server show "$m"
dst_id=$(python3 -c 'import json,sys; print([s["id"] for s in json.load(open(sys.argv[1])) if s["role"] == "destination"][0])' \
  "$work/servers.out" 2>/dev/null)
run server-set server set "$m" "${dst_id:-0}" rate_messages=500 max_connections=4
run servers2 --json server show "$m"
check "server set: the destination's rate and connection budget changed (exit $rc)" \
  json servers2 "[(s['rate_messages'], s['max_connections']) for s in j if s['role'] == 'destination'] == [(500, 4)]"
run retry retry "$m" 2
check "retry of a pass with nothing failed: 0 accounts queued again (exit $rc)" \
  eval 'test "$rc" = 0 && has retry.out "0 accounts queued again"'
echo clipw2 | timeout 60 "$CLI" passwd "$m" cli2 source >"$work/passwd.out" 2>"$work/passwd.err"
rc=$?
check "passwd reads the password from stdin (exit $rc) and prints no password" \
  eval 'test "$rc" = 0 && ! grep -q clipw2 "$work/passwd.out" "$work/passwd.err"'

# --- a message the destination refuses: errors in the server's words -----------
add_user SRC clibig clibigpw
add_user DST clibig clibigpw
python3 "$repo/tests/integration/oddcases.py" "127.0.0.1:$SRC_PORT:clibig:clibigpw" big 6 >/dev/null
p=$(make_plan clibig "$(server_json src "$SRC_PORT" none)" "$(server_json dst "$DST_PORT" none)" \
  "clibig,clibigpw,clibig,clibigpw")
m_big=$("$CLI" import "$p" 2>/dev/null)
"$CLI" verify "$m_big" >/dev/null 2>&1 && "$CLI" start "$m_big" >/dev/null 2>&1
run big-wait wait "$m_big" 1 120
run big-errors errors "$m_big"
check "errors: the refused message with the destination's own words (uid 2)" \
  eval 'test "$rc" = 0 && grep -q "clibig  INBOX  uid 2: .*Mail size is larger than the maximum size" \
        "$work/big-errors.out"'

run big-proof proof "$m_big"
check "proof naming the refused message: exit 4, uid 2 missing (exit $rc)" \
  eval 'test "$rc" = 4 && grep -qE "INBOX missing: source uid 2" "$work/big-proof.out"'

# --- pause, a wait that times out, resume; empty-destination, add, remove --------
run pause pause "$m"
check "pause: both accounts changed (exit $rc)" \
  eval 'test "$rc" = 0 && has pause.out "pause: 2 accounts changed"'
run delta3 delta "$m" cli1
run wait3 wait "$m" 3 3
check "wait on a paused pass: exit 4 after its 3 s, saying it timed out (exit $rc)" \
  eval 'test "$rc" = 4 && has wait3.err "timed out after 3 s: pass 3 has not ended"'
run resume resume "$m"
run wait3b wait "$m" 3 120
check "resume, then the pass ends: exit 0 (exit $rc)" test "$rc" = 0
run empty-noconfirm empty-destination "$m_big" clibig
check "empty-destination without --confirm: exit 1, nothing sent (exit $rc)" \
  eval 'test "$rc" = 1 && has empty-noconfirm.err "--confirm DESTINATION_LOGIN"'
run empty-wrong empty-destination "$m_big" clibig --confirm someone-else
check "empty-destination with the wrong login: exit 2, confirmation_required (exit $rc)" \
  eval 'test "$rc" = 2 && has empty-wrong.err "confirmation_required"'
run empty empty-destination "$m_big" clibig --confirm clibig
check "empty-destination --confirm LOGIN: the destination holds no message (exit $rc)" \
  eval 'test "$rc" = 0 && test "$(state "$DST_PORT" clibig:clibigpw |
        python3 -c "import json,sys; print(sum(len(f[\"messages\"]) for f in json.load(sys.stdin).values()))")" = 0'
printf 'source_login,source_password\nclinew,\n' >"$work/bad-add.csv"
run add-bad add "$m_big" "$work/bad-add.csv"
check "add with a CSV line lacking its password: exit 2 naming the line (exit $rc)" \
  eval 'test "$rc" = 2 && has add-bad.err "invalid_field" && grep -q ":2" "$work/add-bad.err"'
run remove remove "$m_big" clibig
run removed account "$m_big" clibig
check "remove, then the account is not_found: exit 2 (exit $rc)" \
  eval 'test "$rc" = 2 && has removed.err "not_found"'

# --- exit codes -----------------------------------------------------------------
run badtoken --token-file "$work/bad-token" status "$m"
check "a wrong token: exit 2, the API's unauthorized named (exit $rc)" \
  eval 'test "$rc" = 2 && has badtoken.err "unauthorized"'
run notoken --token-file "" migrations
check "no token at all: exit 2 (exit $rc)" test "$rc" = 2
run unknown status 999999
check "an unknown migration: exit 2 with not_found (exit $rc)" \
  eval 'test "$rc" = 2 && has unknown.err "not_found"'
run unreachable --api "http://127.0.0.1:$((MAILSHIFT_PORT_BASE + 59))" --timeout 5 migrations
check "an unreachable API: exit 3, the URL named (exit $rc)" \
  eval 'test "$rc" = 3 && has unreachable.err "127.0.0.1:$((MAILSHIFT_PORT_BASE + 59))" &&
        has unreachable.err "unreachable"'
run usage frobnicate
check "an unknown command: exit 1, named (exit $rc)" \
  eval 'test "$rc" = 1 && has usage.err "unknown command \"frobnicate\""'
run badid wait abc 1
check "a migration that is not a number: exit 1 (exit $rc)" test "$rc" = 1
run help --help
check "--help documents the exit codes" \
  eval 'has help.out "exit status:" && has help.out "2  the API refused"'
check "the token appears in no output of the CLI and not in the API's log" \
  eval '! grep -rqF -- "$token" "$work"/*.out "$work"/*.err "$work"/*.screens "$work/api.log"'

suite_end
