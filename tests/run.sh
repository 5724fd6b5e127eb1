#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. installs the Debian packages (deploy/install-deps.sh, idempotent);
#   2. builds twice: release, and ASan+UBSan (-DMAILSHIFT_SANITIZE=ON);
#   3. unit tests (ctest) under the sanitizers;
#   4. integration tests against real servers it starts itself (PostgreSQL,
#      three Dovecot instances, the Kafka-protocol broker), with the sanitized
#      worker and coordinator: the copy engine (test_migration.sh), then the
#      coordinator and fleet (test_fleet.sh), each on its own stack.
# Ends with one line "N passed, N failed"; exit status 0 only if all passed.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash deploy/install-deps.sh || exit 1
logs=$(mktemp -d /tmp/mailshift-run.XXXXXX)
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

it_passed=0
it_failed=0
for suite in test_migration test_fleet test_faults; do
  echo "# integration: $suite"
  MAILSHIFT_BUILD=$repo/build-asan bash "tests/integration/$suite.sh" | tee "$logs/$suite.log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/$suite.log" | tail -n 1)
  p=$(cut -d' ' -f1 <<<"${line:-0 passed, 1 failed}")
  f=$(cut -d' ' -f3 <<<"${line:-0 passed, 1 failed}")
  [[ $rc -ne 0 && $f -eq 0 ]] && f=1
  it_passed=$((it_passed + p))
  it_failed=$((it_failed + f))
done

passed=$((unit_total - unit_failed + it_passed))
failed=$((unit_failed + it_failed))
echo
echo "unit: $((unit_total - unit_failed)) of $unit_total; integration: $it_passed passed, $it_failed failed"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
