#!/usr/bin/env bash
# Static checks of the C sources, run by tests/run.sh before anything is built:
#   - every tracked .c/.h file is formatted as the committed .clang-format says
#     (clang-format --dry-run --Werror: drift fails, the diff is printed);
#   - cppcheck with a chosen set of checks (warning, portability, performance)
#     over the libraries, the daemons and the broker finds nothing.
# Prints one "ok - ..." or "FAIL - ..." line per check and "N passed, N failed"
# last; exit status 0 only if both passed.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
passed=0
failed=0

mapfile -t sources < <(git ls-files '*.c' '*.h')
drift=()
for f in "${sources[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || drift+=("$f")
done
if ((${#drift[@]} == 0)); then
  passed=$((passed + 1)); echo "ok   - clang-format: ${#sources[@]} files as .clang-format says"
else
  failed=$((failed + 1)); echo "FAIL - clang-format: ${#drift[@]} files drift (run clang-format -i on them):"
  for f in "${drift[@]}"; do clang-format "$f" | diff -u "$f" - | head -20; done
fi

includes=()
for d in lib/*/; do includes+=(-I "$d"); done
if out=$(cppcheck --enable=warning,portability,performance --std=c11 --error-exitcode=1 -q \
  --inline-suppr "${includes[@]}" lib worker coordinator cli deploy/broker 2>&1); then
  passed=$((passed + 1)); echo "ok   - cppcheck (warning, portability, performance): nothing found"
else
  failed=$((failed + 1)); echo "FAIL - cppcheck:"; echo "$out"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
