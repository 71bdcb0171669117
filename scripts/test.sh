#!/usr/bin/env bash
# The test command: installs what is missing, builds each preset with -j2 and runs the
# whole suite (release, then again under ASan+UBSan). A throwaway PostgreSQL server
# is started for the PostgreSQL backend's tests and stopped at the end. The first
# failing build or test run ends it with a non-zero status.
#
#   scripts/test.sh              # release, then asan
#   scripts/test.sh debug        # just one preset
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--with-server" ]; then
  scripts/install-deps.sh
  exec scripts/with-postgres.sh "$0" --with-server "$@"
fi
shift

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release asan)
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "=== ${preset}: test"
  ctest --preset "$preset" -j2
done
