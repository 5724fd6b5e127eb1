#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. installs the Debian packages (deploy/install-deps.sh, idempotent), then
#      the static checks (tests/static.sh: clang-format drift, cppcheck);
#   2. builds twice: release, and ASan+UBSan (-DMAILSHIFT_SANITIZE=ON);
#   3. unit tests (ctest) under the sanitizers;
#   4. integration tests against real servers it starts itself (PostgreSQL,
#      three Dovecot instances, the Kafka-protocol broker), with the sanitized
#      worker and coordinator, each suite on its own stack, in three lanes run
#      side by side (see lanes below); artefacts a suite keeps (the browser
#      test's screenshots) go to the log directory, under the suite's name.
# Ends with one line "N passed, N failed"; exit status 0 only if all passed.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash deploy/install-deps.sh || exit 1
logs=$(mktemp -d /tmp/mailshift-run.XXXXXX)
# Static checks first (format drift, cppcheck): counted with the rest.
bash tests/static.sh | tee "$logs/static.log"
static_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/static.log" | tail -n 1)
static_passed=$(cut -d' ' -f1 <<<"${static_line:-0 passed, 1 failed}")
static_failed=$(cut -d' ' -f3 <<<"${static_line:-0 passed, 1 failed}")
for dir in build build-asan; do
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
  [[ $dir == build-asan ]] && flags=(-DCMAKE_BUILD_TYPE=Debug -DMAILSHIFT_SANITIZE=ON)
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null || exit 1
  cmake --build "$dir" -j"$(nproc)" >"$logs/$dir.log" 2>&1 ||
    { tail -50 "$logs/$dir.log"; exit 1; }
done
echo "# built build/ and build-asan/"

export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

unit_out=$(cd build-asan && ctest --output-on-failure 2>&1)
unit_rc=$?
echo "$unit_out" | tail -n 20
unit_total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' <<<"$unit_out")
unit_failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of.*/\1/p' <<<"$unit_out")
unit_total=${unit_total:-0}
unit_failed=${unit_failed:-1}
[[ $unit_rc -ne 0 && $unit_failed -eq 0 ]] && unit_failed=1

# Integration suites, each on its own stack (own ports, own work directory).
# Three lanes run side by side to keep the suite's wall time down on a 2-core
# machine (the suites mostly wait on their servers); suites within a lane run
# one after the other.  Each suite's output
# goes to its log and is printed whole when its lane is done.
lanes=("test_migration test_proof test_cli test_pop3" "test_fleet test_faults test_operator test_mx" "test_api test_deploy test_oauth test_ui test_dav test_lanes")
run_lane() {
  local suite
  for suite in $1; do
    MAILSHIFT_BUILD=$repo/build-asan MAILSHIFT_ARTIFACTS=$logs/$suite \
      bash "tests/integration/$suite.sh" >"$logs/$suite.log" 2>&1
    echo $? >"$logs/$suite.rc"
  done
}
# The corpus once, before the lanes: two first fetches at once would race.
bash tests/infra/corpus.sh >/dev/null || exit 1
lane_pids=()
for lane in "${lanes[@]}"; do
  run_lane "$lane" &
  lane_pids+=($!)
done
wait "${lane_pids[@]}"

it_passed=0
it_failed=0
for lane in "${lanes[@]}"; do
  for suite in $lane; do
    echo "# integration: $suite"
    cat "$logs/$suite.log"
    rc=$(cat "$logs/$suite.rc" 2>/dev/null || echo 1)
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/$suite.log" | tail -n 1)
    p=$(cut -d' ' -f1 <<<"${line:-0 passed, 1 failed}")
    f=$(cut -d' ' -f3 <<<"${line:-0 passed, 1 failed}")
    [[ $rc -ne 0 && $f -eq 0 ]] && f=1
    it_passed=$((it_passed + p))
    it_failed=$((it_failed + f))
  done
done

passed=$((static_passed + unit_total - unit_failed + it_passed))
failed=$((static_failed + unit_failed + it_failed))
echo
echo "static: $static_passed passed, $static_failed failed; unit: $((unit_total - unit_failed)) of $unit_total;" \
  "integration: $it_passed passed, $it_failed failed"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
