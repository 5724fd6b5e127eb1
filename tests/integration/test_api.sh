#!/usr/bin/env bash
# End-to-end tests of the HTTP API against real servers started here
# (PostgreSQL, Dovecot, the Kafka-protocol broker, a worker): a migration
# driven through the API only (import with the CSV inline, verify, pass 1,
# wait, detail, errors, report, a delta pass, a server's port and budget
# changed mid-migration, retry of a pass's failed account, a password fixed
# through the API, accounts added as CSV, pause / resume / cancel, remove),
# checked with the independent verifier; bearer tokens (401 without or with a
# wrong one, no token or password in any answer or log); /metrics parsed
# strictly and compared with the database; /readyz while PostgreSQL is
# stopped; and every answer checked against docs/openapi.yaml, every route
# of it called.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-api-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-18800}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

trap suite_cleanup EXIT
stack_start || { echo "0 passed, 1 failed"; exit 1; }
echo "# stack up in $work (ports from $MAILSHIFT_PORT_BASE)"

api_port=$((MAILSHIFT_PORT_BASE + 8))
local_port=$((MAILSHIFT_PORT_BASE + 9))
dead_port=$((MAILSHIFT_PORT_BASE + 7)) # nothing listens there
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
token2=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '# operators of the test\nops:%s\n\n%s\n' "$token" "$token2" >"$work/tokens"
mkdir -p "$work/ui"
echo '<!doctype html><title>mailshift test</title>' >"$work/ui/index.html"
"$COORD" run --listen "127.0.0.1:$api_port" --api-tokens-file "$work/tokens" \
  --ui-dir "$work/ui" >"$work/coordinator-run.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null && break
  sleep 0.1
done

# --- the API client of the test ----------------------------------------------
# api METHOD PATH [curl args...]: calls the API with the token; sets status,
# ctype and body (a file); every answer is recorded for the OpenAPI check.
records=$work/records.jsonl
calls=0
api_as() {
  local auth=$1 method=$2 path=$3 out
  shift 3
  calls=$((calls + 1))
  body=$work/answer.$calls
  out=$(curl -s -o "$body" -w '%{http_code} %{content_type}' -X "$method" \
    ${auth:+-H "Authorization: $auth"} "$@" "http://127.0.0.1:$api_port$path")
  status=${out%% *}
  ctype=${out#* }
  jq -nc --arg m "$method" --arg p "${path%%\?*}" --argjson s "$status" --arg t "$ctype" \
    --arg b "$body" '{method: $m, path: $p, status: $s, type: $t, body: $b}' >>"$records"
}
api() { api_as "Bearer $token" "$@"; }
# j FILTER: jq -r over the last answer.
j() { jq -r "$1" "$body"; }
is() { [[ $status == "$1" ]]; }
err_is() { is "$1" && [[ $(j .error.code) == "$2" ]]; }
wait_until() {
  local t=$(($1 * 5))
  shift
  while ((t-- > 0)); do "$@" && return 0; sleep 0.2; done
  return 1
}

# --- users, mail, the plan ----------------------------------------------------
add_users al 3 SRC DST
add_users rt 1 SRC DST
add_users bd 1 SRC DST
fill_corpus al1 40
fill_corpus al2 25
fill_corpus rt1 15
fill_corpus bd1 10
fill_corpus al3 5
srv() { jq -nc --argjson p "$1" '{host: "127.0.0.1", port: $p, tls: "none", auth: "plain",
  max_connections: 10}'; }
# bd1's source password in the CSV is wrong: refused at verify, fixed later.
csv=$'source_login,source_password,destination_login,destination_password,source\n'
csv+=$'al1,alpw1,al1,alpw1,default\nal2,alpw2,al2,alpw2,default\n'
csv+=$'rt1,rtpw1,rt1,rtpw1,alt\nbd1,Wr0ngPw9,bd1,bdpw1,default\n'
plan() {
  jq -nc --arg name "$1" --argjson s "$(srv "$SRC_PORT")" --argjson d "$(srv "$DST_PORT")" \
    --arg csv "$2" '{name: $name, sources: {default: $s, alt: $s}, destination: $d,
      accounts_csv: $csv}'
}
secrets=(alpw1 alpw2 alpw3 rtpw1 bdpw1 Wr0ngPw9 "$token" "$token2")

# --- auth -----------------------------------------------------------------------
api_as "" GET /v1/migrations
check "no token: 401 unauthorized" err_is 401 unauthorized
api_as "Bearer wrong-token-0123456789abcdef" GET /v1/migrations
check "a wrong token: 401 unauthorized" err_is 401 unauthorized
api_as "Bearer $token2" GET /v1/migrations
check "the second token (no name) is accepted" is 200
api_as "" GET /healthz
check "healthz needs no token: 200 ok" eval 'is 200 && [[ $(j .status) == ok ]]'
"$COORD" serve --listen "0.0.0.0:$local_port" >"$work/serve-open.out" 2>&1 &
open_pid=$!
sleep 1
if kill -0 "$open_pid" 2>/dev/null; then kill "$open_pid"; open_rc=running; else
  wait "$open_pid"; open_rc=$?; fi
check "serve on 0.0.0.0 without tokens refuses to start (exit $open_rc) and says why" \
  eval '[[ $open_rc != running && $open_rc != 0 ]] &&
        grep -q "without tokens" "$work/serve-open.out"'
"$COORD" serve --listen "127.0.0.1:$local_port" >"$work/serve-local.log" 2>&1 &
local_pid=$!
pids+=("$local_pid")
wait_until 10 curl -sf "http://127.0.0.1:$local_port/healthz" -o /dev/null
check "local mode on loopback: /v1 answers without a token" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$local_port/v1/migrations")" = 200
kill "$local_pid" 2>/dev/null

# --- import ----------------------------------------------------------------------
api POST /v1/migrations -H 'Content-Type: application/json' \
  --data-binary "$(plan api "$csv" | jq -c '.sources.alt.port = 70000')"
check "import: a port out of range is 400 invalid_field naming sources.alt.port" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == sources.alt.port ]]'
api POST /v1/migrations -H 'Content-Type: application/json' \
  --data-binary "$(plan api "$csv"$'zz1,,zz1,zz,default\n')"
check "import: a bad CSV line is 400 naming accounts_csv and line 6" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == accounts_csv ]] &&
        j .error.message | grep -q "accounts_csv:6"'
api POST /v1/migrations -H 'Content-Type: application/json' --data-binary '{"name": 1'
check "import: a body that is not JSON is 400 bad_request" err_is 400 bad_request
check "import: nothing was stored by the refused imports" \
  test "$(sql "SELECT count(*) FROM migrations")" = 0
api POST /v1/migrations -H 'Content-Type: application/json' --data-binary "$(plan api "$csv")"
m=$(j .id)
check "import: 201 with the id and 4 accounts" eval 'is 201 && [[ $(j .accounts) == 4 ]]'
api POST /v1/migrations -H 'Content-Type: application/json' \
  --data-binary "$(plan second $'source_login,source_password,source\nal1,alpw1,default\n')"
m2=$(j .id)
api GET "/v1/migrations?limit=1"
next=$(j .next)
check "migrations: a page of 1 with a next cursor" \
  eval 'is 200 && [[ $(j ".items | length") == 1 && $(j ".items[0].id") == "$m" && $next != null ]]'
api GET "/v1/migrations?limit=1&after=$next"
check "migrations: the next page holds the second, and no next" \
  eval 'is 200 && [[ $(j ".items[0].id") == "$m2" && $(j .next) == null ]]'
api GET "/v1/migrations?limit=0"
check "migrations: limit 0 is 400 naming limit" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == limit ]]'

# --- verify, servers --------------------------------------------------------------
api POST "/v1/migrations/$m/verify"
check "verify: 3 verified, 1 auth_failed (bd1's wrong password)" \
  eval 'is 200 && [[ $(j .verified) == 3 && $(j .auth_failed) == 1 && $(j .verify_failed) == 0 ]]'
api POST "/v1/migrations/$m/estimate" --data-binary '{"accounts": ["al1"]}'
check "estimate of al1 before any pass: its 40 messages, folder by folder" \
  eval 'is 200 && [[ $(j ".accounts[0].messages") == 40 && $(j ".messages") == 40 &&
        $(j "[.accounts[0].folders[].messages] | add") == 40 ]]'
api POST "/v1/migrations/$m/estimate"
check "estimate of every account: bd1's refused login named, the others counted" \
  eval 'is 200 && [[ $(j ".accounts | length") == 4 &&
        $(j ".accounts[] | select(.account == \"bd1\") | .error") == *AUTHENTICATIONFAILED* &&
        $(j ".accounts[] | select(.account == \"rt1\") | .messages") == 15 ]]'
api GET "/v1/migrations/$m/servers"
alt=$(j '.[] | select(.name == "alt") | .id')
dst=$(j '.[] | select(.role == "destination") | .id')
check "servers: three profiles, no secret member" \
  eval 'is 200 && [[ $(j length) == 3 ]] && ! grep -qi password "$body"'
api PATCH "/v1/migrations/$m/servers/$alt" -H 'Content-Type: application/json' \
  --data-binary '{"port": "x"}'
check "PATCH: a port that is no number is 400 naming port" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == port ]]'
api PATCH "/v1/migrations/$m/servers/$alt" --data-binary '{"colour": "blue"}'
check "PATCH: an unknown key is 400" err_is 400 invalid_field
api PATCH "/v1/migrations/$m/servers/$alt" \
  --data-binary '{"blackouts": [{"days": "daily", "from": "01:00", "to": "02:00", "time_zone": "Mars/Olympus"}]}'
check "PATCH: an unknown time zone is 400 naming blackouts" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == blackouts ]]'
api PATCH "/v1/migrations/$m/servers/999999" --data-binary '{"port": 143}'
check "PATCH: a server of another migration is 404" err_is 404 not_found
# rt1's profile moves to a port where nothing answers: its pass 1 fails.
api PATCH "/v1/migrations/$m/servers/$alt" --data-binary "{\"port\": $dead_port}"
check "PATCH: the alt profile's port changed" eval 'is 200 && [[ $(j .port) == "$dead_port" ]]'
api PATCH "/v1/migrations/$m/servers/$dst" \
  --data-binary '{"max_connections": 4, "rate_messages": 0, "blackouts": [{"days": ["sat", "sun"], "from": "23:00", "to": "23:30", "time_zone": "UTC"}]}'
check "PATCH: the destination's budget is 4, with one blackout window" \
  eval 'is 200 && [[ $(j .max_connections) == 4 && $(j ".blackouts[0].days | join(\",\")") == sat,sun ]]'
check "PATCH: the destination has exactly 4 connection slots" \
  test "$(sql "SELECT count(*) FROM server_slots WHERE server_id = $dst")" = 4
api PATCH "/v1/migrations/$m/servers/$dst" --data-binary '{"max_connections": 6, "blackouts": []}'
check "PATCH: raised to 6, the window removed: 6 slots" \
  eval 'is 200 && [[ $(j ".blackouts | length") == 0 ]] &&
        [[ $(sql "SELECT count(*) FROM server_slots WHERE server_id = $dst") == 6 ]]'

# --- pass 1 -----------------------------------------------------------------------
worker_start || { echo "0 passed, 1 failed"; exit 1; }
api POST "/v1/migrations/$m/passes" --data-binary '{"kind": "delta"}'
check "a delta before any pass is 409 conflict" err_is 409 conflict
api POST "/v1/migrations/$m/passes" --data-binary '{"kind": "sideways"}'
check "a pass of an unknown kind is 400 naming kind" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == kind ]]'
api POST "/v1/migrations/$m/passes" --data-binary '{"kind": "bulk"}'
check "pass 1 (bulk) started for the 3 verified accounts" \
  eval 'is 201 && [[ $(j .number) == 1 && $(j .accounts) == 3 ]]'
api POST "/v1/migrations/$m/passes" --data-binary '{"kind": "bulk"}'
check "a second bulk pass is 409 conflict" err_is 409 conflict
api GET "/v1/migrations/$m/passes/1/wait?timeout=0"
check "wait with timeout 0 answers at once" eval 'is 200 && [[ $(j .number) == 1 ]]'
account_state() { api GET "/v1/migrations/$m/accounts/$1"; [[ $(j .state) == "$2" ]]; }
wait_until 120 account_state al1 synced
wait_until 60 account_state al2 synced
check "al1 and al2 synced by pass 1" eval 'account_state al1 synced && account_state al2 synced'
wait_until 60 account_state rt1 failed
check "rt1 (its source port closed) failed pass 1, the reason in last_error" \
  eval 'account_state rt1 failed && [[ $(j .last_error) != null ]]'

# --- detail, errors, report -----------------------------------------------------------
api GET "/v1/migrations/$m/accounts/al1"
check "detail: al1's folders, each with as many messages on both sides" \
  eval 'is 200 && [[ $(j ".folders | length") -ge 1 &&
        $(j "[.folders[] | select(.source_messages != .destination_messages)] | length") == 0 ]]'
check "detail: al1's messages are the source's (40)" \
  test "$(j '[.folders[].destination_messages] | add')" = 40
check "detail: al1's pass 1 row and history with the API's actor" \
  eval '[[ $(j ".passes[0].number") == 1 && $(j ".passes[0].state") == synced ]] &&
        [[ $(j "[.history[] | select(.actor == \"api:ops\" and .to_state == \"queued\")] | length") -ge 1 ]] &&
        [[ $(j "[.history[] | select(.actor == \"api:ops\" and .to_state == \"verified\")] | length") -ge 1 ]]'
api GET "/v1/migrations/$m/accounts/nobody"
check "detail of an unknown account is 404 not_found" err_is 404 not_found
api GET "/v1/migrations/$m/accounts?state=synced&limit=1"
check "accounts: filtered by state, one per page" \
  eval 'is 200 && [[ $(j ".items[0].state") == synced && $(j .next) != null ]]'
api GET "/v1/migrations/$m/accounts?q=RT"
check "accounts: q matches logins in any case" \
  eval 'is 200 && [[ $(j ".items | length") == 1 && $(j ".items[0].source_login") == rt1 ]]'
api GET "/v1/migrations/$m/errors"
check "errors: as many as the database holds" \
  eval 'is 200 && [[ $(j ".items | length") == $(sql "SELECT count(*) FROM message_errors e
        JOIN accounts a ON a.id = e.account_id WHERE a.migration_id = $m") ]]'
api GET "/v1/migrations/$m/errors?account=al1"
check "errors of one account" is 200
api GET "/v1/migrations/$m/report?format=csv"
cp "$body" "$work/report.csv"
al1_folders=$(sql "SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id
                   WHERE a.migration_id = $m AND a.src_login = 'al1'")
check "report csv: a header and one row per folder of al1 ($al1_folders)" \
  eval 'is 200 && [[ $ctype == text/csv* ]] && head -1 "$work/report.csv" | grep -q "^account_id,source_login" &&
        [[ $(grep -c ",al1,al1," "$work/report.csv") == "$al1_folders" ]]'
api GET "/v1/migrations/$m/report"
check "report json: every account, al1 synced with its folders" \
  eval 'is 200 && [[ $(j ".accounts | length") == 4 &&
        $(j ".accounts[] | select(.source_login == \"al1\") | .state") == synced ]]'
api GET "/v1/migrations/$m/report?format=pdf"
check "report: an unknown format is 400 naming format" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == format ]]'

# --- retry of the failed account, after its server's port is fixed ------------------
api POST "/v1/migrations/$m/passes/1/retry" --data-binary '{"accounts": ["al1"]}'
check "retry naming a synced account requeues nothing" eval 'is 200 && [[ $(j .requeued) == 0 ]]'
check "al1 was not run again (one run in pass 1)" \
  test "$(sql "SELECT runs FROM pass_accounts pa JOIN accounts a ON a.id = pa.account_id
               WHERE a.migration_id = $m AND a.src_login = 'al1' AND pa.number = 1")" = 1
api PATCH "/v1/migrations/$m/servers/$alt" --data-binary "{\"port\": $SRC_PORT}"
check "PATCH: the alt profile's port fixed" is 200
api POST "/v1/migrations/$m/passes/1/retry"
retried=$(j .requeued)
check "retry of pass 1 answers 200 ($retried requeued)" is 200
check "rt1 queued again by the API's retry (history: api:ops, pass 1 requested)" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m AND a.src_login = 'rt1' AND l.actor = 'api:ops'
               AND l.from_state = 'failed' AND l.to_state = 'queued'")" -ge "$retried"
api GET "/v1/migrations/$m/passes/1/wait?timeout=120"
check "wait: pass 1 ended with its 3 accounts synced" \
  eval 'is 200 && [[ $(j .ended) == true && $(j .synced) == 3 && $(j .scheduled) == 3 ]]'
check "pass 1's rows: one per account" test "$(j '.account_rows | length')" = 3
for u in al1 al2 rt1; do
  pw=${u%[0-9]}pw${u: -1}
  check "$u: the destination holds exactly the source (verify.py)" \
    verify "$u:$pw" "$DST_PORT" "$u:$pw"
done

api GET "/v1/migrations/$m/accounts/al1/proof"
check "al1 has no proof yet: 404" err_is 404 not_found
api POST "/v1/migrations/$m/proof" --data-binary '{"accounts": ["al1", "rt1"]}'
check "proof of al1 and rt1: exact, nothing missing, extra or changed" \
  eval 'is 200 && [[ $(j .exact) == true && $(j ".accounts | length") == 2 &&
        $(j "[.accounts[] | .missing + .extra + .changed] | add") == 0 ]]'
api GET "/v1/migrations/$m/accounts/al1/proof"
check "al1's last proof: exact, 40 messages on both sides" \
  eval 'is 200 && [[ $(j .exact) == true && $(j "[.folders[].destination] | add") == 40 ]]'
api GET "/v1/migrations/$m/proof"
check "the migration's proofs: al1 and rt1, by an operator" \
  eval 'is 200 && [[ $(j "[.items[].account] | join(\",\")") == al1,rt1 &&
        $(j ".items[0].trigger") == operator ]]'

# --- password fixed through the API ----------------------------------------------------
api PUT "/v1/migrations/$m/accounts/bd1/password" --data-binary '{"side": "left", "password": "x"}'
check "password: a bad side is 400 naming side" \
  eval 'err_is 400 invalid_field && [[ $(j .error.field) == side ]]'
api PUT "/v1/migrations/$m/accounts/bd1/password" --data-binary '{"side": "source", "password": "bdpw1"}'
check "password: bd1 verified and joined pass 1" \
  eval 'is 200 && [[ $(j .state) == verified && $(j .joined) == 1 && $(j .pass) == 1 ]]'
wait_until 60 account_state bd1 synced
check "bd1 synced after its password was fixed" account_state bd1 synced
check "bd1: the destination holds exactly the source" verify bd1:bdpw1 "$DST_PORT" bd1:bdpw1
check "bd1's history records the new password's check by api:ops" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m AND a.src_login = 'bd1' AND l.actor = 'api:ops'
               AND l.to_state = 'verified'")" -ge 1

# --- a delta pass ----------------------------------------------------------------------
python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/al1/Maildir" \
  --layout fs --offset 40 --limit 5 >/dev/null
api POST "/v1/migrations/$m/passes" --data-binary '{"kind": "delta"}'
check "pass 2 (delta) started for 4 accounts" eval 'is 201 && [[ $(j .number) == 2 && $(j .accounts) == 4 ]]'
api GET "/v1/migrations/$m/passes/2/wait?timeout=120"
check "wait: pass 2 ended, all synced" eval 'is 200 && [[ $(j .ended) == true && $(j .synced) == 4 ]]'
check "pass 2 copied the 5 new messages" test "$(j .messages)" = 5
check "al1 after the delta: exact" verify al1:alpw1 "$DST_PORT" al1:alpw1
api GET "/v1/migrations/$m/passes"
check "passes: two, bulk then delta, both finished" \
  eval 'is 200 && [[ $(j "[.items[].kind] | join(\",\")") == bulk,delta && $(j ".items[1].finished_at") != null ]]'
api GET "/v1/migrations/$m/passes/7"
check "a pass that does not exist is 404" err_is 404 not_found

api POST "/v1/migrations/$m/accounts/rt1/empty-destination" --data-binary '{}'
check "empty-destination without confirm: 400 confirmation_required" \
  eval 'err_is 400 confirmation_required && [[ $(j .error.field) == confirm ]]'
api POST "/v1/migrations/$m/accounts/rt1/empty-destination" --data-binary '{"confirm": "al1"}'
check "empty-destination with another login: 400 confirmation_required" \
  err_is 400 confirmation_required
check "the refused confirmations deleted nothing" verify rt1:rtpw1 "$DST_PORT" rt1:rtpw1
api POST "/v1/migrations/$m/accounts/rt1/empty-destination" --data-binary '{"confirm": "rt1"}'
check "empty-destination of rt1: its 15 messages deleted" \
  eval 'is 200 && [[ $(j .deleted) == 15 && $(j .destination_login) == rt1 ]]'
check "the emptying is in rt1's history with the API's actor" \
  test "$(sql "SELECT count(*) FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m AND a.src_login = 'rt1' AND l.actor = 'api:ops'
               AND l.reason LIKE 'emptying the destination%'")" = 1

# --- accounts added as CSV; pause, resume, cancel; remove -----------------------------
api POST "/v1/migrations/$m/accounts" -H 'Content-Type: application/json' --data-binary 'x'
check "add: not text/csv is 400" err_is 400 bad_request
api POST "/v1/migrations/$m/accounts" -H 'Content-Type: text/csv' \
  --data-binary $'source_login,source_password\nal1,alpw1\n'
check "add: a login already there is 400, nothing added" err_is 400 invalid_field
api POST "/v1/migrations/$m/accounts" -H 'Content-Type: text/csv' \
  --data-binary $'source_login,source_password,source\nal3,alpw3,default\n'
check "add: al3 added, verified and joined pass 2" \
  eval 'is 201 && [[ $(j .added) == 1 && $(j .verified) == 1 && $(j .joined) == 1 ]]'
wait_until 60 account_state al3 synced
check "al3 synced after it was added" account_state al3 synced
api POST "/v1/migrations/$m/passes" --data-binary '{"kind": "final", "accounts": ["al2", "al3", "rt1"]}'
check "pass 3 (final) for three named accounts" eval 'is 201 && [[ $(j .number) == 3 && $(j .accounts) == 3 ]]'
api POST "/v1/migrations/$m/pause"
check "pause: the migration's unfinished accounts paused" eval 'is 200 && [[ $(j .accounts) -ge 0 ]]'
api POST "/v1/migrations/$m/resume"
check "resume answers with the accounts resumed" is 200
api POST "/v1/migrations/$m/accounts/al2/pause"
api POST "/v1/migrations/$m/accounts/al2/resume"
check "pause and resume of one account" is 200
api GET "/v1/migrations/$m/passes/3/wait?timeout=120"
check "wait: pass 3 ended" eval 'is 200 && [[ $(j .ended) == true ]]'
check "rt1 copied again, once, after its destination was emptied" \
  verify rt1:rtpw1 "$DST_PORT" rt1:rtpw1 --strict
api POST "/v1/migrations/$m/accounts/al2/cancel"
check "cancel of one finished account leaves it as it was" \
  eval 'is 200 && [[ $(j .unchanged) == 1 ]]'
api POST "/v1/migrations/$m2/cancel"
check "cancel of the second migration: its account cancelled" \
  eval 'is 200 && [[ $(j .accounts) == 1 ]]'
check "the cancel is in the history with the token's name as actor" \
  test "$(sql "SELECT actor FROM account_log l JOIN accounts a ON a.id = l.account_id
               WHERE a.migration_id = $m2 AND l.to_state = 'cancelled'")" = api:ops
api DELETE "/v1/migrations/$m/accounts/al3"
check "remove al3: 200 removed" eval 'is 200 && [[ $(j .removed) == true ]]'
api GET "/v1/migrations/$m/accounts/al3"
check "al3 is gone: 404" err_is 404 not_found
api GET "/v1/migrations/424242"
check "an unknown migration is 404" err_is 404 not_found
api GET "/v1/nothing/here"
check "an unknown path is 404" err_is 404 not_found
api_as "" GET /
check "/ redirects to the dashboard" \
  eval 'is 302 && [[ $(curl -s -o /dev/null -w "%header{location}" "http://127.0.0.1:$api_port/") == /ui/ ]]'
api_as "" GET /ui/index.html
check "/ui/index.html is served as HTML" eval 'is 200 && [[ $ctype == text/html* ]]'
api_as "" GET /ui/
check "/ui/ serves the dashboard's index.html" \
  eval 'is 200 && [[ $ctype == text/html* ]] && grep -q "<title>mailshift" "$body"'
api_as "" GET /ui/../tokens --path-as-is
check "the dashboard's files never climb out of their directory" err_is 404 not_found
api_as "" GET /ui/%2e%2e/tokens
check "not even escaped" err_is 404 not_found

# --- migration, throughput, metrics ----------------------------------------------------
api GET "/v1/migrations/$m"
check "migration: counts, servers and passes" \
  eval 'is 200 && [[ $(j .current_pass) == 3 && $(j ".servers | length") == 3 && $(j ".passes | length") == 3 ]]'
check "migration: messages_done is the database's" \
  test "$(j .messages_done)" = "$(sql "SELECT sum(copied_messages + matched_messages) FROM folders f
        JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m")"
api GET "/v1/migrations/$m/throughput?minutes=30"
check "throughput: 30 minutes, some messages copied in them" \
  eval 'is 200 && [[ $(j length) == 30 && $(j "[.[].messages] | add") -gt 0 ]]'
api GET /metrics
cp "$body" "$work/metrics.txt"
check "metrics: text format 0.0.4" eval 'is 200 && [[ $ctype == "text/plain; version=0.0.4"* ]]'
# A strict reading of the text format: HELP and TYPE before a family's
# samples, names and labels as the format says, values that are numbers.
python3 - "$work/metrics.txt" >"$work/metrics.json" <<'PY'
import json, re, sys
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
sample = re.compile(r"^(%s)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\n]|\\[\\\"n])*\",?)*)\})? (\S+)$" % name_re)
typed, helped, values = {}, set(), {}
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        helped.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
        assert name not in typed, "TYPE twice: " + name
        typed[name] = kind
    elif line:
        m = sample.match(line)
        assert m, "line %d: not a sample: %r" % (n, line)
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert family in typed and family in helped, "line %d: no HELP/TYPE for %s" % (n, name)
        float(m.group(4))
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        values[name + json.dumps(labels, sort_keys=True)] = float(m.group(4))
json.dump(values, sys.stdout)
PY
check "metrics: parsed strictly (HELP and TYPE for every family)" test -s "$work/metrics.json"
metric() { jq -r --arg k "$1" '.[$k] // "absent"' "$work/metrics.json"; }
num() { printf '%.0f' "$1" 2>/dev/null || echo "$1"; }
check "metrics: messages copied equal the database's" \
  test "$(num "$(metric "mailshift_messages_copied_total{\"migration\": \"$m\"}")")" = \
  "$(sql "SELECT coalesce(sum(copied_messages), 0) FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m")"
check "metrics: bytes copied equal the database's" \
  test "$(num "$(metric "mailshift_bytes_copied_total{\"migration\": \"$m\"}")")" = \
  "$(sql "SELECT coalesce(sum(copied_bytes), 0) FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.migration_id = $m")"
check "metrics: synced accounts equal the database's" \
  test "$(num "$(metric "mailshift_accounts{\"migration\": \"$m\", \"name\": \"api\", \"state\": \"synced\"}")")" = \
  "$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m AND state = 'synced'")"
check "metrics: message errors equal the database's" \
  test "$(num "$(metric "mailshift_message_errors_total{\"migration\": \"$m\"}")")" = \
  "$(sql "SELECT count(*) FROM message_errors e JOIN accounts a ON a.id = e.account_id WHERE a.migration_id = $m")"
check "metrics: this coordinator's scheduler is the active one, one worker live" \
  eval '[[ $(num "$(metric mailshift_scheduler_active{})") == 1 && $(num "$(metric mailshift_workers_live{})") == 1 ]]'
check "metrics: the 401 answers are counted" \
  eval '[[ $(num "$(metric "mailshift_api_requests_total{\"code\": \"401\", \"route\": \"migrations\"}")") -ge 2 ]]'
check "metrics: request durations of the accounts routes" \
  eval '[[ $(num "$(metric "mailshift_api_request_duration_seconds_count{\"route\": \"accounts\"}")") -ge 5 ]]'

# --- readiness while PostgreSQL is stopped -------------------------------------------------
api GET /readyz
check "readyz: 200 ready" eval 'is 200 && [[ $(j .status) == ready ]]'
bash "$infra/stack.sh" pg-stop "$stack" >>"$work/stack.log" 2>&1
api GET /readyz
check "readyz: 503 unready while PostgreSQL is stopped, with the reason" \
  eval 'is 503 && [[ $(j .status) == unready ]] && j .reason | grep -q "cannot connect"'
api GET "/v1/migrations/$m"
check "the API answers 503 unavailable while PostgreSQL is stopped" err_is 503 unavailable
api GET /healthz
check "healthz: still 200 (the process lives)" is 200
bash "$infra/stack.sh" pg-start "$stack" >>"$work/stack.log" 2>&1
ready() { api GET /readyz; is 200; }
check "readyz: 200 again once PostgreSQL is back" wait_until 20 ready
api GET "/v1/migrations/$m/accounts"
check "the API answers again once PostgreSQL is back" is 200

# --- secrets, the OpenAPI check ---------------------------------------------------------
leaks=()
for s in "${secrets[@]}"; do
  grep -rlF -- "$s" "$work"/answer.* "$work"/*.log "$work"/*.out 2>/dev/null | grep -q . && leaks+=("${s:0:6}...")
done
check "no password or token in any answer or log (${leaks[*]:-none})" test "${#leaks[@]}" = 0
check "every answer ($calls) as docs/openapi.yaml documents it, every route called" \
  python3 "$infra/openapi_check.py" "$repo/docs/openapi.yaml" "$records" --coverage

suite_end
