#!/usr/bin/env bash
# A Radicale CardDAV/CalDAV server of a test, run as the test's own process:
# its config, users (htpasswd, plain) and collections under DIR, listening on
# 127.0.0.1:PORT over TLS with the stack's certificate.
#   radicale.sh start DIR PORT CERT KEY   (prints the pid; waits until it answers)
#     RADICALE_MAX_CONTENT=BYTES: larger request bodies are refused (413)
#   radicale.sh user DIR USER PASS        (adds a user; read on the next request)
#   radicale.sh stop DIR
set -euo pipefail

cmd=$1 dir=$2
case $cmd in
start)
  port=$3 cert=$4 key=$5
  mkdir -p "$dir/collections"
  touch "$dir/users"
  cat >"$dir/config" <<CONF
[server]
hosts = 127.0.0.1:$port
ssl = True
certificate = $cert
key = $key
max_content_length = ${RADICALE_MAX_CONTENT:-100000000}
[auth]
type = htpasswd
htpasswd_filename = $dir/users
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = $dir/collections
[web]
type = none
[logging]
level = info
mask_passwords = True
CONF
  radicale --config "$dir/config" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null --cacert "${RADICALE_CA:-$cert}" "https://127.0.0.1:$port/"; then
      cat "$dir/pid"
      exit 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { cat "$dir/log" >&2; exit 1; }
    sleep 0.1
  done
  echo "radicale on port $port did not answer within 10 s" >&2
  exit 1
  ;;
user)
  printf '%s:%s\n' "$3" "$4" >>"$dir/users"
  ;;
stop)
  [[ -s $dir/pid ]] || exit 0
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/pid"
  ;;
*)
  echo "usage: radicale.sh start|user|stop DIR ..." >&2
  exit 2
  ;;
esac
