#!/usr/bin/env bash
# The test command: installs what is missing, builds each preset with -j2 and runs the
# whole suite (release, then again under ASan+UBSan). A throwaway PostgreSQL server
# is started for the PostgreSQL backend's tests and stopped at the end.
#
#   scripts/test.sh              # release, then asan
#   scripts/test.sh debug        # just one preset
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release asan)

run_suite() {
  local preset
  for preset in "${presets[@]}"; do
    echo "=== ${preset}: configure and build"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset"
    echo "=== ${preset}: test"
    ctest --preset "$preset" -j2
  done
}

if [ -x scripts/with-postgres.sh ]; then
  scripts/with-postgres.sh bash -c "$(declare -p presets); $(declare -f run_suite); run_suite"
else
  run_suite
fi
