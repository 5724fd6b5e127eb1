#!/usr/bin/env bash
# docker-compose.yml's one-shot demo service (the demo image): the quick
# start's migration through the compose stack.  Imports the plan (once),
# checks every login, runs pass 1 through the coordinator, Kafka and the
# workers, and ends with the independent IMAP check of each account.
set -euo pipefail
demo=/demo
infra=/opt/mailshift/tests/infra
coord=mailshift-coordinator

migration=$("$coord" status 1 >/dev/null 2>&1 && echo 1 || "$coord" import "$demo/plan.json")
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
  python3 "$infra/verify.py" --src "src-imap:143:$user:$user-source-pw" \
    --dst "dst-imap:143:$user:$user-dest-pw" --account "$user" || status=1
done
exit $status
