#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster of its own: initdb in
# a temporary directory, listening on a Unix socket only (no TCP port), one
# database; the command gets its conninfo in MAILSHIFT_TEST_DB.  The cluster
# is stopped and removed afterwards.  Exit status: the command's, or 77
# (skipped) when no PostgreSQL server binaries are installed.
#
#   with_pg.sh COMMAND [ARG...]
set -uo pipefail

bin=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [[ -z $bin || ! -x $bin/pg_ctl ]]; then
  echo "with_pg.sh: no PostgreSQL server binaries under /usr/lib/postgresql: skipped" >&2
  exit 77
fi
# initdb refuses root: the cluster then belongs to the postgres user.
as=()
[[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
dir=$(mktemp -d /tmp/mailshift-unitpg.XXXXXX)
[[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
chmod 700 "$dir"
cleanup() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT

if ! "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
  >"$dir/initdb.log" 2>&1; then
  tail -n 20 "$dir/initdb.log" >&2
  exit 1
fi
if ! "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
  -o "-c listen_addresses='' -c unix_socket_directories=$dir -c fsync=off" start \
  >/dev/null 2>&1; then
  tail -n 20 "$dir/postgres.log" >&2
  exit 1
fi
"${as[@]}" "$bin/createdb" -h "$dir" -U postgres mailshift_unit || exit 1
MAILSHIFT_TEST_DB="host=$dir dbname=mailshift_unit user=postgres" "$@"
