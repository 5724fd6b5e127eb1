#!/usr/bin/env bash
# End-to-end tests of OAuth2 sources and destinations against real servers
# started here: Dovecot taking access tokens (XOAUTH2 on the source,
# OAUTHBEARER on the destination) checked by introspection at a local
# provider (tests/infra/oauth_server.py: 10 s access tokens, strict rotation of
# refresh tokens, revocation), the refresh tokens imported from the plan's CSV.
# A migration that outlives its access tokens (a rate limit, connections reset
# mid-copy so sessions are opened again after expiry) ends exact with fresh
# tokens; rotated refresh tokens are stored back (a later pass works); a token
# the server refuses is refreshed once and the login tried again; a revoked
# refresh token fails its account with the endpoint's words while the others
# go on; a token endpoint down is a transient failure the scheduler retries;
# no token and no client secret appears in any log or error.
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-oauth-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19500}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"

# The provider: HTTPS token endpoint at base+8, introspection for Dovecot at
# base+9 (the stack's Dovecots are configured with it before they start).
token_port=$((MAILSHIFT_PORT_BASE + 8))
introspect_port=$((MAILSHIFT_PORT_BASE + 9))
export MAILSHIFT_STACK_OAUTH2=http://127.0.0.1:$introspect_port/introspect
token_url=https://127.0.0.1:$token_port/token
client_secret=cs-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
# Short enough that pass 1 outlives several, long enough that a loaded
# machine (ASan, the other lane) logs in well within one.
lifetime=10

suite_start

(umask 077 && printf '%s\n' "$client_secret" >"$work/client_secret")
echo "$client_secret" >"$work/issued"
provider_start() {
  serve provider python3 "$infra/oauth_server.py" --port "$token_port" \
    --introspect-port "$introspect_port" --cert "$stack/tls/server.pem" \
    --key "$stack/tls/server.key" --state "$work/provider.json" --client-id mailshift-test \
    --client-secret "$client_secret" --lifetime "$lifetime" --rotate --issued "$work/issued"
  provider_pid=$served_pid
  [[ $served_port == "$token_port" ]]
}
provider_start || { echo "0 passed, 1 failed"; exit 1; }
admin() { curl -sS --cacert "$MAILSHIFT_CA_FILE" "https://127.0.0.1:$token_port/admin/$1"; }
# pstat USER KEY: a count of the provider's (0 when none).
pstat() {
  admin stats | python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], {}).get(sys.argv[2], 0))' "$1" "$2"
}
# tokens USER: a fresh refresh token for the source and one for the destination.
tokens() { echo "$(admin "grant?user=$1"),$(admin "grant?user=$1")"; }

# --- three accounts, their mail and refresh tokens ------------------------------
for u in alice bob carol; do
  add_user SRC "$u" "${u}pw"
  add_user DST "$u" "${u}pw"
done
fill_corpus alice 1500
fill_corpus bob 300
fill_corpus carol 100

# Source connections through a proxy that resets them mid-copy, so that the
# folder threads log in again later in the run, after the first tokens lapsed.
serve src-resets python3 "$infra/reset_proxy.py" --port 0 --upstream "$SRC_TLS_PORT" --resets 8 \
  --seed 3 --min-bytes 1000000 --max-bytes 1500000 --log "$work/src-resets.log"
src_proxy=$served_port

oauth_json() {
  printf '"oauth2": {"token_url": "%s", "client_id": "mailshift-test", "client_secret_file": "%s", "scope": "mail", "ca_file": "%s"}' \
    "$token_url" "$work/client_secret" "$MAILSHIFT_CA_FILE"
}
src_json=$(printf '{"host": "127.0.0.1", "port": %s, "tls": "implicit", "ca_file": "%s", "auth": "xoauth2", "max_connections": 10, "max_messages_per_second": 60, %s}' \
  "$src_proxy" "$MAILSHIFT_CA_FILE" "$(oauth_json)")
dst_json=$(printf '{"host": "127.0.0.1", "port": %s, "tls": "implicit", "ca_file": "%s", "auth": "oauthbearer", "max_connections": 10, %s}' \
  "$DST_TLS_PORT" "$MAILSHIFT_CA_FILE" "$(oauth_json)")
IFS=, read -r a_src a_dst <<<"$(tokens alice)"
IFS=, read -r b_src b_dst <<<"$(tokens bob)"
IFS=, read -r c_src c_dst <<<"$(tokens carol)"
plan=$(make_plan oauth "$src_json" "$dst_json" "alice,$a_src,alice,$a_dst" "bob,$b_src,bob,$b_dst" \
  "carol,$c_src,carol,$c_dst")
m=$("$COORD" import "$plan" 2>>"$work/coordinator.log")
acct() { sql "SELECT $2 FROM accounts WHERE migration_id = $m AND src_login = '$1'"; }
sealed0=$(acct alice "encode(src_secret, 'hex')")
"$COORD" verify "$m" >"$work/verify.log" 2>>"$work/coordinator.log"

check "verify: the three accounts' refresh tokens buy access tokens both servers accept" \
  test "$(sql "SELECT count(*) FROM accounts WHERE migration_id = $m AND state = 'verified'")" = 3
check "verify: the refresh token the endpoint rotated is stored back (alice's sealed source secret changed)" \
  test -n "$sealed0" -a "$(acct alice "encode(src_secret, 'hex')")" != "$sealed0"

# --- pass 1: tokens lapse mid-migration; carol's refresh token is revoked -------
admin "revoke?user=carol" >/dev/null
issued0=$(pstat alice issued)
worker_start --folders 2 || { echo "0 passed, 1 failed"; exit 1; }
t0=$(date +%s)
"$COORD" pass "$m" 1 2>>"$work/coordinator.log"
"$COORD" wait "$m" 1 300 >"$work/pass1.out" 2>>"$work/coordinator.log"
secs=$(($(date +%s) - t0))
issued1=$(($(pstat alice issued) - issued0))

check "pass 1: alice synced after ${secs} s, longer than the ${lifetime} s tokens live" \
  test "$(acct alice state)" = synced -a "$secs" -gt "$((lifetime + 5))"
check "pass 1: alice's destination exact (source XOAUTH2, destination OAUTHBEARER)" \
  verify alice:alicepw "$DST_PORT" alice:alicepw --account oauth-alice
check "pass 1: the source connections were reset mid-copy ($(grep -c '^reset' "$work/src-resets.log") resets) and logged in again" \
  grep -q "^done" "$work/src-resets.log"
check "pass 1: alice's tokens refreshed as they lapsed ($issued1 access tokens issued during the pass, more than one per side)" \
  test "$issued1" -gt 2
check "pass 1: no expired token was ever presented to a server (refreshed before expiry: $(pstat alice expired) refused as expired)" \
  test "$(pstat alice expired)" = 0
check "pass 1: bob synced and exact, beside the revoked account" \
  eval 'test "$(acct bob state)" = synced && verify bob:bobpw "$DST_PORT" bob:bobpw --account oauth-bob'
carol_err=$(acct carol last_error)
check "pass 1: carol's revoked refresh token fails her account as auth_failed ($(acct carol state))" \
  test "$(acct carol state)" = auth_failed
check "pass 1: carol's error names the endpoint and its words: \"$carol_err\"" \
  grep -qF "token endpoint $token_url: invalid_grant: Token has been revoked" <<<"$carol_err"
check "pass 1: status shows carol's error" grep -qF "invalid_grant: Token has been revoked" "$work/pass1.out"
refused=$(pstat carol refused)
sleep 12 # past the scheduler's first retry backoff (10 s)
check "pass 1: carol is not retried (the endpoint refused her $refused time(s), still $(pstat carol refused) 12 s later)" \
  test "$(pstat carol refused)" = "$refused" -a "$(acct carol state)" = auth_failed

# --- pass 2: rotated refresh tokens were stored, so the next pass works --------
python3 "$infra/fill_maildir.py" --corpus "$corpus" --maildir "$SRC_DIR/mail/bob/Maildir" \
  --layout fs --offset 300 --limit 100 >/dev/null # 100 more messages
check "pass 2: bob's delta pass logs in with the refresh tokens rotated and stored in pass 1" \
  eval '"$COORD" delta "$m" bob >>"$work/coordinator.log" 2>&1 && "$COORD" wait "$m" 2 120 >"$work/pass2.out" 2>>"$work/coordinator.log"; test "$(acct bob state)" = synced'
check "pass 2: bob exact" verify bob:bobpw "$DST_PORT" bob:bobpw --account oauth-bob2

# --- a token the server refuses is refreshed once, the login tried again --------
admin "refuse?user=bob&n=1" >/dev/null
retries0=$(grep -c "refreshing the access token once" "$worker_log")
"$COORD" delta "$m" bob >>"$work/coordinator.log" 2>&1
"$COORD" wait "$m" 3 120 >"$work/pass3.out" 2>>"$work/coordinator.log"
retries=$(($(grep -c "refreshing the access token once" "$worker_log") - retries0))
check "pass 3: a token the server refused was refreshed once and the login tried again ($retries)" \
  test "$retries" = 1
check "pass 3: bob synced after the retried login" test "$(acct bob state)" = synced

# --- the token endpoint down: transient, retried by the scheduler --------------
kill "$provider_pid"
wait "$provider_pid" 2>/dev/null
"$COORD" delta "$m" bob >>"$work/coordinator.log" 2>&1
wait_failed() {
  for _ in $(seq 1 100); do
    [[ $(acct bob state) == failed ]] && return 0
    sleep 0.3
  done
  return 1
}
check "endpoint down: bob's pass fails as transient (failed, retried later): $(wait_failed; acct bob last_error)" \
  eval 'test "$(acct bob state)" = failed && acct bob last_error | grep -qF "token endpoint $token_url: "'
provider_start
check "endpoint back: the scheduler retries bob and the pass ends synced" \
  eval '"$COORD" wait "$m" 4 120 >"$work/pass4.out" 2>>"$work/coordinator.log"; test "$(acct bob state)" = synced'

# --- no secret anywhere ---------------------------------------------------------
worker_stop
sql "SELECT reason FROM account_log; SELECT last_error FROM accounts" >"$work/db-texts.log"
leaks=$(cat "$work"/worker.*.log "$work/coordinator.log" "$work/scheduler.log" "$work/verify.log" \
  "$work"/pass*.out "$work/db-texts.log" "$stack"/*/dovecot.log 2>/dev/null | grep -cFf "$work/issued")
check "no refresh token, access token or client secret ($(wc -l <"$work/issued") issued) in any log, status or stored error ($leaks lines)" \
  test "$leaks" = 0

suite_end
