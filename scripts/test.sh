#!/usr/bin/env bash
# The test command: installs what is missing, lints docs/openapi.yaml (Redocly),
# builds each preset with -j2 and runs the whole suite (release, then under
# ASan+UBSan, then under ThreadSanitizer); after release, installs the package and
# builds examples/ against it as an outside project would. The suite includes the
# contract test: the server behind Stoplight Prism (npm), checked against
# docs/openapi.yaml. A throwaway PostgreSQL server is started for the PostgreSQL
# backend's tests, a Redis server and two Redis Clusters for the Redis backends', all
# stopped at the end. The libFuzzer targets (scripts/fuzz.sh) run over their saved
# regressions and fuzz briefly, bench/compare runs in its smoke mode, and the
# Dockerfile's steps run without a container engine (scripts/check-container.sh). The
# first failure ends it with a non-zero status.
#
# The suites wait on sockets and servers much of the time, so work runs beside them:
# the npm tools are fetched while release builds, the next preset builds while one
# preset's suite runs (the last build followed by the Dockerfile's steps), and fuzzing
# and the smoke run go beside the last suite. Each
# phase's line carries the minutes since the command started.
#
#   scripts/test.sh              # release, then asan, then tsan, fuzzing, smoke run
#   scripts/test.sh release      # just one preset (and, for release, the package)
#   scripts/test.sh quick        # the release suite alone: the inner loop between edits
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONCTX_TEST_START=${SESSIONCTX_TEST_START:-$(date +%s)}
export SESSIONCTX_TEST_START
phase() {
  local s=$(( $(date +%s) - SESSIONCTX_TEST_START ))
  printf '=== [%d:%02d] %s\n' $(( s / 60 )) $(( s % 60 )) "$*"
}

if [ "${1:-}" != "--with-server" ]; then
  scripts/install-deps.sh
  # Every code block of docs/embedding.md is a copy of a file built or run here.
  python3 scripts/check-embedding.py
  # Redocly's lint of docs/openapi.yaml (its recommended rules) and Prism, for the
  # contract test against it, come from npm: fetched while the first preset builds
  # (npm_tools_ready waits for them before the first suite).
  mkdir -p build
  rm -f build/npm-tools.done
  ( status=1
    if scripts/lint-openapi.sh && scripts/install-prism.sh >build/prism-path; then status=0; fi
    echo "$status" >build/npm-tools.done ) >build/npm-tools.log 2>&1 &
  exec scripts/with-postgres.sh scripts/with-redis.sh scripts/with-redis-cluster.sh \
    "$0" --with-server "$@"
fi
shift

# quick: the inner loop between edits, the release suite alone (no package checks,
# no long crash and failover tests).
quick=0
if [ "${1:-}" = quick ]; then
  quick=1
  set -- release
fi
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(release asan tsan)

# npm_tools_ready: the lint has passed and Prism is installed (SESSIONCTX_PRISM).
npm_tools_ready() {
  local waited=0
  while [ ! -s build/npm-tools.done ] && [ "$waited" -lt 600 ]; do
    sleep 1
    waited=$((waited + 1))
  done
  cat build/npm-tools.log
  if [ "$(cat build/npm-tools.done 2>/dev/null)" != 0 ]; then
    echo "the OpenAPI lint or the Prism install failed (build/npm-tools.log)"
    exit 1
  fi
  SESSIONCTX_PRISM=$(cat build/prism-path)
  export SESSIONCTX_PRISM
}

# run_extras: the fuzz targets (built in the asan tree) over their saved regressions,
# then a short run of each; the storage-choice report in its smoke mode (its own
# PostgreSQL and Redis, the matrix, scale, import, HTTP, the report and chart).
run_extras() {
  phase "fuzz: regressions and ${SESSIONCTX_FUZZ_SECONDS:-20}s per target"
  scripts/fuzz.sh "${SESSIONCTX_FUZZ_SECONDS:-20}"
  phase "bench/compare --smoke"
  local smoke_out
  smoke_out=$(mktemp -d)
  bench/compare --smoke --out "$smoke_out"
  test -s "$smoke_out/benchmarks.md" && test -s "$smoke_out/benchmarks.svg"
  rm -rf "$smoke_out"
}
export -f phase run_extras

# build_preset P: configure (a tree configured earlier with another generator is made
# anew) and build preset P.
build_preset() {
  if ! cmake --preset "$1" >/dev/null 2>&1; then
    rm -rf "build/$1"
    cmake --preset "$1" >/dev/null
  fi
  cmake --build --preset "$1"
}
export -f build_preset

# While one preset's suite runs (much of it waits on sockets and servers), the next
# preset builds beside it, its output in build/PRESET-build.log, shown if it fails.
build_pid=""
extras_pid=""
trap 'for p in $build_pid $extras_pid; do kill -- "-$p" 2>/dev/null || true; done' EXIT
phase "${presets[0]}: configure and build"
build_preset "${presets[0]}"
npm_tools_ready
for i in "${!presets[@]}"; do
  preset=${presets[$i]}
  next=${presets[$((i + 1))]:-}
  if [ -n "$next" ]; then
    # Before the last preset's build is waited for, the Dockerfile's steps run after it
    # (scripts/check-container.sh): the asan suite leaves room beside it.
    container=0
    [ "$#" -eq 0 ] && [ -z "${presets[$((i + 2))]:-}" ] && container=1
    phase "${next}: configure and build$([ "$container" = 1 ] && echo ", then the Dockerfile's steps"), beside ${preset}'s suite (build/${next}-build.log)"
    setsid bash -c 'set -e; build_preset "$0"; if [ "$1" = 1 ]; then scripts/check-container.sh; fi' \
      "$next" "$container" >"build/${next}-build.log" 2>&1 &
    build_pid=$!
  elif [ "$#" -eq 0 ]; then
    # Beside the last suite: fuzzing and the report's smoke run (build/extras.log).
    phase "fuzz and bench/compare --smoke, beside ${preset}'s suite (build/extras.log)"
    setsid bash -c 'set -e; run_extras' >build/extras.log 2>&1 &
    extras_pid=$!
  fi
  phase "${preset}: test"
  # The long crash, outage and failover tests (a Redis Cluster's master killed, its
  # slots moved, a full disk) run once, in release: under the sanitizers they only
  # repeat the same code paths at a tenth of the speed. The framework adapters in
  # examples/ are built against the installed package and run after the release
  # suite. The tsan build has only the tests that run code on several threads
  # (tests/CMakeLists.txt, NO_TSAN).
  long_tests='RedisSpareCluster|ClusterFailover|DiskFull|RestartAndKillNineOfRedis'
  if [ "$preset" = tsan ]; then
    # Also without the kill -9 tests, whose forked writer starts threads after a
    # fork (which ThreadSanitizer does not support). tests/tsan.supp says why each of
    # its entries (all inside RocksDB) is there.
    ctest --preset tsan -j2 -E "KillNine|${long_tests}"
  elif [ "$preset" = asan ]; then
    ctest --preset asan -j2 -E "${long_tests}"
  elif [ "$quick" = 1 ]; then
    ctest --preset release -j2 -E "${long_tests}"
  else
    ctest --preset "$preset" -j2
  fi
  if [ "$preset" = release ] && [ "$quick" = 0 ]; then
    # The package as a user gets it: install, then build examples/ on its own against
    # the installed sessionctxConfig.cmake, and run the store-only program.
    phase "release: install, build examples/ against the installed package, run store_only, own_verifier, metrics_store and the adapters' end-to-end test"
    rm -rf build/install build/consumer
    # [embed:consumer-build]
    cmake --install build/release --prefix "$PWD/build/install" >/dev/null
    cmake -S examples -B build/consumer -DCMAKE_PREFIX_PATH="$PWD/build/install" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build/consumer -j2
    # [end:consumer-build]
    consumer_db=$(mktemp -d)
    build/consumer/store_only "$consumer_db/db"
    rm -rf "$consumer_db"
    if ldd build/consumer/store_only | grep -E 'libcrypto|libssl|libpq'; then
      echo "store_only must link neither OpenSSL nor libpq"
      exit 1
    fi
    # The handler with its own TokenVerifier (sessionctx::http alone) links no crypto.
    build/consumer/own_verifier
    if ldd build/consumer/own_verifier | grep -E 'libcrypto|libssl|libpq'; then
      echo "own_verifier (sessionctx::http without sessionctx::jwt) must link neither OpenSSL nor libpq"
      exit 1
    fi
    build/consumer/metrics_store >/dev/null
    # Each framework adapter, built against the installed package, passes the one
    # end-to-end test over a real socket (none may be missing).
    for adapter in beast_server httplib_server poco_server pistache_server cpprest_server \
                   civetweb_server libevent_server; do
      phase "release: adapter_e2e_test against build/consumer/$adapter"
      test -x "build/consumer/$adapter" || { echo "examples/$adapter was not built"; exit 1; }
      SESSIONCTX_ADAPTER_BIN="$PWD/build/consumer/$adapter" build/release/bin/adapter_e2e_test \
        --gtest_brief=1
    done
  fi
  if [ -n "$next" ]; then
    if ! wait "$build_pid"; then
      tail -n 150 "build/${next}-build.log"
      echo "the ${next} build failed (all of its output: build/${next}-build.log)"
      exit 1
    fi
    build_pid=""
    phase "${next}: built ($(grep -c '^\[' "build/${next}-build.log") steps)"
  fi
done
if [ -n "$extras_pid" ]; then
  extras_status=0
  wait "$extras_pid" || extras_status=$?
  extras_pid=""
  cat build/extras.log
  if [ "$extras_status" -ne 0 ]; then
    echo "fuzzing or bench/compare --smoke failed (build/extras.log)"
    exit 1
  fi
fi
phase "done"
