#!/usr/bin/env bash
# End-to-end test of the dashboard in a real browser (Debian's chromium,
# headless, driven by playwright-core from npm; tests/ui/dashboard.test.js):
# the coordinator serves the API and ui/, a worker copies the corpus account
# and a smaller one through a destination rate limit (so the pass takes tens
# of seconds and is seen progressing), and the page is asserted while it
# progresses (state counts, numbers growing, chart drawn, pause and resume
# clicked) and at the end (all synced, counts equal the source's).  The
# destination is then checked exact by tests/infra/verify.py.  Screenshots are
# kept in $work/screenshots (the work directory stays when a check fails, or
# with KEEP_WORK=1).
#
# Prints "N passed, N failed" last; exit status 1 if anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/mailshift-ui-it.XXXXXX)
chmod 755 "$work"
export MAILSHIFT_PORT_BASE=${MAILSHIFT_PORT_BASE:-19000}
worker_runs=0
# shellcheck source=lib.sh
source "$repo/tests/integration/lib.sh"
# shellcheck source=serve_api.sh
source "$repo/tests/integration/serve_api.sh"
CLI=$B/cli/mailshift
ui_tests=$repo/tests/ui

# The npm dependencies (playwright-core only: it brings no browser) into
# tests/ui/node_modules, from the committed lock file.
if [[ ! -d $ui_tests/node_modules/playwright-core ]]; then
  (cd "$ui_tests" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1) ||
    { cat "$work/npm.log"; echo "0 passed, 1 failed"; exit 1; }
fi
[[ -x /usr/bin/chromium ]] || { echo "no /usr/bin/chromium (deploy/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }

suite_start
token=UiT0ken-$RANDOM$RANDOM-$RANDOM$RANDOM-ui
printf 'ui:%s\n' "$token" >"$work/tokens"
printf '%s\n' "$token" >"$work/token"
api_start --api-tokens-file "$work/tokens" --ui-dir "$repo/ui" || { echo "0 passed, 1 failed"; exit 1; }
export MAILSHIFT_API=$api_url MAILSHIFT_API_TOKEN_FILE=$work/token

add_user SRC alice alicepw
add_user DST alice dstpw
add_user SRC bob bobpw
add_user DST bob dstpw2
fill_corpus alice
fill_corpus bob 500
messages=$(python3 - "$SRC_PORT" "$infra/imapstate.py" <<'PY'
import json, subprocess, sys
n = 0
for user, pw in (("alice", "alicepw"), ("bob", "bobpw")):
    out = subprocess.run([sys.executable, sys.argv[2],
                          "127.0.0.1:%s:%s:%s" % (sys.argv[1], user, pw)],
                         capture_output=True, text=True, check=True).stdout
    n += sum(len(f["messages"]) for f in json.loads(out).values())
print(n)
PY
)
# 150 messages/s for the whole destination: pass 1 takes about 45 s.
p=$(make_plan ui "$(server_json src "$SRC_PORT" none)" \
  "$(server_json dst "$DST_PORT" none | sed 's/}$/, "max_messages_per_second": 150}/')" \
  "alice,alicepw,alice,dstpw" "bob,bobpw,bob,dstpw2")
m=$("$CLI" import "$p" 2>>"$work/cli.log")
"$CLI" verify "$m" >>"$work/cli.log" 2>&1
check "migration $m imported and verified through the CLI ($messages messages at the source)" \
  test -n "$m" -a "$(sql "SELECT count(*) FROM accounts WHERE migration_id = ${m:-0} AND state = 'verified'")" = 2
worker_start || { echo "0 passed, 1 failed"; exit 1; }

check "GET / redirects to the dashboard, which is served as plain files" \
  eval '[[ $(curl -s -o /dev/null -w "%{http_code} %{redirect_url}" "$api_url/") == "302 $api_url/ui/" ]] &&
        curl -fsS -o "$work/app.js" "$api_url/ui/app.js" && cmp -s "$work/app.js" "$repo/ui/app.js"'

mkdir -p "$work/screenshots"
(cd "$ui_tests" && UI_URL="$api_url/ui/?poll=1" MIGRATION=$m TOKEN_FILE=$work/token \
  MESSAGES=$messages ACCOUNTS=alice,bob SHOTS=$work/screenshots \
  timeout 900 node dashboard.test.js) >"$work/browser.out" 2>&1
browser_rc=$?
while IFS= read -r line; do
  case $line in
  "ok   - "*) ok "browser: ${line#ok   - }" ;;
  "FAIL - "*) not_ok "browser: ${line#FAIL - }" ;;
  *) echo "# $line" ;;
  esac
done <"$work/browser.out"
[[ $browser_rc -ne 0 ]] && ! grep -q '^FAIL' "$work/browser.out" &&
  not_ok "browser test exited $browser_rc without a FAIL line"

check "alice copied exactly (verify.py)" verify alice:alicepw "$DST_PORT" alice:dstpw --account alice
check "bob copied exactly (verify.py)" verify bob:bobpw "$DST_PORT" bob:dstpw2 --account bob
check "screenshots kept: $(ls "$work/screenshots" | tr '\n' ' ')" \
  test "$(ls "$work/screenshots"/*.png 2>/dev/null | wc -l)" -ge 7
check "the token is in no log of the API" eval '! grep -qF -- "$token" "$work/api.log"'

# Screenshots are test artefacts: kept beside the logs even when all passed.
if [[ -n ${MAILSHIFT_ARTIFACTS:-} ]]; then
  mkdir -p "$MAILSHIFT_ARTIFACTS" && cp -r "$work/screenshots" "$MAILSHIFT_ARTIFACTS/ui-screenshots"
  echo "# screenshots copied to $MAILSHIFT_ARTIFACTS/ui-screenshots"
fi
suite_end
