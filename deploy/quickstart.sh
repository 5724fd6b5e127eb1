#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine (as root): installs the packages,
# builds mailshift, starts a local stack (PostgreSQL, two Dovecot servers on
# loopback, the local Kafka broker), fills two source accounts from the
# SpamAssassin corpus, and migrates them for real: coordinator -> Kafka ->
# worker -> destination, over STARTTLS with certificate verification.
# Ends with one verification line per account from an independent IMAP check.
#
# The stack keeps running for you to look around; stop it with
#   bash tests/infra/stack.sh stop /tmp/mailshift-quickstart
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
dir=/tmp/mailshift-quickstart
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-14300}

step() { printf '\n== %s\n' "$*"; }

step "installing Debian packages"
bash deploy/install-deps.sh
step "building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/tmp/mailshift-build.log 2>&1 || { tail -40 /tmp/mailshift-build.log; exit 1; }

step "starting PostgreSQL, two Dovecot servers and the Kafka broker in $dir"
bash tests/infra/stack.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"
chmod 755 "$dir"
MAILSHIFT_BUILD=$repo/build bash tests/infra/stack.sh start "$dir"
# shellcheck disable=SC1091
source "$dir/env"

step "filling the source from the SpamAssassin corpus"
corpus=$(bash tests/infra/corpus.sh)
bash tests/infra/users.sh add "$SRC_DIR" alice alice-source-pw
bash tests/infra/users.sh add "$SRC_DIR" bob bob-source-pw
bash tests/infra/users.sh add "$DST_DIR" alice alice-dest-pw
bash tests/infra/users.sh add "$DST_DIR" bob bob-dest-pw
python3 tests/infra/fill_maildir.py --corpus "$corpus" --maildir "$SRC_DIR/mail/alice/Maildir" --layout fs
python3 tests/infra/fill_maildir.py --corpus "$corpus" --maildir "$SRC_DIR/mail/bob/Maildir" --layout fs \
  --limit 1500 --seed 2

step "importing the migration plan"
export MAILSHIFT_KEY_FILE=$dir/secret.key
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$MAILSHIFT_KEY_FILE")
chmod 600 "$MAILSHIFT_KEY_FILE"
cat >"$dir/plan.json" <<JSON
{
  "name": "quickstart",
  "source": {"host": "127.0.0.1", "port": $SRC_PORT, "tls": "starttls",
             "ca_file": "$MAILSHIFT_CA_FILE", "auth": "plain", "max_connections": 10},
  "destination": {"host": "127.0.0.1", "port": $DST_PORT, "tls": "starttls",
                  "ca_file": "$MAILSHIFT_CA_FILE", "auth": "plain", "max_connections": 10},
  "accounts": "accounts.csv"
}
JSON
cat >"$dir/accounts.csv" <<CSV
source_login,source_password,destination_login,destination_password
alice,alice-source-pw,alice,alice-dest-pw
bob,bob-source-pw,bob,bob-dest-pw
CSV
coord=build/coordinator/mailshift-coordinator
migration=$("$coord" import "$dir/plan.json")
echo "migration $migration: $(($(wc -l <"$dir/accounts.csv") - 1)) accounts"

step "verifying every account's source and destination login"
"$coord" verify "$migration"

# The scheduler serves the HTTP API and the dashboard on loopback (local
# mode: no token); the rest is driven through them with the mailshift CLI.
api_port=${MAILSHIFT_QUICKSTART_API_PORT:-8080}
export MAILSHIFT_API=http://127.0.0.1:$api_port
cli=build/cli/mailshift
step "starting the scheduler (API and dashboard on $MAILSHIFT_API/ui/) and a worker; pass 1"
"$coord" run --listen "127.0.0.1:$api_port" >"$dir/scheduler.log" 2>&1 &
scheduler=$!
build/worker/mailshift-worker >"$dir/worker.log" 2>&1 &
worker=$!
trap 'kill -TERM $worker $scheduler 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$cli" migrations >/dev/null 2>&1 && break
  kill -0 $scheduler 2>/dev/null || { cat "$dir/scheduler.log"; exit 1; }
  sleep 0.1
done
start=$(date +%s.%N)
"$cli" start "$migration" >/dev/null
"$cli" wait "$migration" 1 600 >/dev/null
end=$(date +%s.%N)
echo "pass 1 finished $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s after it was queued (worker log: $dir/worker.log)"
"$cli" passes "$migration"

step "proof of completeness (mailshift proof: both servers, message by message)"
"$cli" proof "$migration" || true
kill -TERM $worker $scheduler
wait $worker $scheduler || true
trap - EXIT

step "independent verification (reads both servers over IMAP)"
status=0
for user in alice bob; do
  pw_src=$user-source-pw pw_dst=$user-dest-pw
  python3 tests/infra/verify.py --src "127.0.0.1:$SRC_PORT:$user:$pw_src" \
    --dst "127.0.0.1:$DST_PORT:$user:$pw_dst" --account "$user" || status=1
done
echo
echo "stack still running; stop it with: bash tests/infra/stack.sh stop $dir"
echo "to browse it: (source $dir/env && MAILSHIFT_KEY_FILE=$MAILSHIFT_KEY_FILE $coord serve --listen 127.0.0.1:$api_port)"
echo "then open $MAILSHIFT_API/ui/ (dashboard) or use $cli status $migration"
exit $status
