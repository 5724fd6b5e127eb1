#!/usr/bin/env bash
# docker-compose.yml's one-shot demo service (the demo image): the quick
# start's migration through the compose stack.  Imports the plan (once),
# checks every login, runs pass 1 through the coordinator, Kafka and the
# workers, and ends with the independent IMAP check of each account.
# MAILSHIFT_DEMO_DIR, MAILSHIFT_INFRA, MAILSHIFT_COORDINATOR and DEMO_* as in
# init.sh move it (tests/integration/test_deploy.sh rehearses the demo).
set -euo pipefail
demo=${MAILSHIFT_DEMO_DIR:-/demo}
infra=${MAILSHIFT_INFRA:-/opt/mailshift/tests/infra}
coord=${MAILSHIFT_COORDINATOR:-mailshift-coordinator}
src=${DEMO_SRC_HOST:-src-imap}:${DEMO_SRC_PORT:-143}
dst=${DEMO_DST_HOST:-dst-imap}:${DEMO_DST_PORT:-143}

# Imported once: its id is kept in the state directory.
if [[ ! -s $demo/state/migration ]]; then
  "$coord" import "$demo/plan.json" >"$demo/state/migration.new"
  mv "$demo/state/migration.new" "$demo/state/migration"
fi
migration=$(cat "$demo/state/migration")
echo "migration $migration"
"$coord" verify "$migration"
# A second `docker-compose up` finds pass 1 done: a delta pass then.
if "$coord" start "$migration" >/dev/null 2>&1; then pass=1; else
  pass=$("$coord" delta "$migration" | sed -n 's/.*pass \([0-9]*\).*/\1/p' | head -n 1)
fi
"$coord" wait "$migration" "${pass:-1}" 1800
"$coord" passes "$migration"

status=0
for user in alice bob; do
  python3 "$infra/verify.py" --src "$src:$user:$user-source-pw" \
    --dst "$dst:$user:$user-dest-pw" --account "$user" || status=1
done
exit $status
