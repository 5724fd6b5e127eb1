# The coordinator's HTTP API for a suite, as an operator runs it: source after
# lib.sh once the stack is up.  api_start [ARGS...] starts
# `mailshift-coordinator serve` on 127.0.0.1:(MAILSHIFT_PORT_BASE + 50) with
# ARGS (e.g. --api-tokens-file), its output in $work/api.log, and waits up to
# 20 s for /healthz; sets api_url and api_pid.  Stopped on exit with the rest.
api_start() {
  local port=$((MAILSHIFT_PORT_BASE + 50))
  api_url=http://127.0.0.1:$port
  "$COORD" serve --listen "127.0.0.1:$port" "$@" >"$work/api.log" 2>&1 &
  api_pid=$!
  pids+=("$api_pid")
  for _ in $(seq 1 200); do
    curl -fsS -m 2 "$api_url/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$api_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the API did not answer on $api_url within 20 s:" >&2
  cat "$work/api.log" >&2
  return 1
}
