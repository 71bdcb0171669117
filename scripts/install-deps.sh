#!/usr/bin/env bash
# Installs the Debian packages sessionctx needs, by purpose. Idempotent: does nothing
# when every package is already there.
#
#   scripts/install-deps.sh server   # build and run sessionctx-server and sessionctl
#                                    # (scripts/run-server.sh)
#   scripts/install-deps.sh runtime  # only the shared libraries the two programs link
#                                    # (the Dockerfile's run stage)
#   scripts/install-deps.sh          # everything: the server's, plus what the test
#                                    # command adds (GoogleTest, Google Benchmark, Ninja,
#                                    # a PostgreSQL server and a Redis server, clang for
#                                    # the asan build and fuzzing, ss (iproute2) for the
#                                    # graceful-stop tests, the frameworks examples/ adapts: cpp-httplib,
#                                    # Poco, Pistache, cpprestsdk, CivetWeb, libevent) and what the
#                                    # benchmark report adds (nginx, wrk, perf, gnuplot),
#                                    # which the test command runs in its smoke mode
set -euo pipefail

SERVER=(
  build-essential cmake pkg-config
  libabsl-dev nlohmann-json3-dev libssl-dev
  librocksdb-dev libpqxx-dev libhiredis-dev
  libboost-dev prometheus-cpp-dev
  python3 python3-yaml curl
)
RUNTIME=(
  libabsl20220623 libhiredis0.14 libpq5 libpqxx-6.4 libprometheus-cpp-core1.0 libssl3
  libsnappy1v5 liblz4-1 libzstd1 zlib1g libbz2-1.0 libstdc++6 ca-certificates
)
TESTS=(
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libpoco-dev libpistache-dev libcpprest-dev libcivetweb-dev libevent-dev
  postgresql redis-server clang-14 libclang-rt-14-dev ninja-build iproute2 openssl
)
REPORT=(
  gnuplot-nox wrk nginx-light linux-perf rocksdb-tools
)
case "${1:-all}" in
  server) PACKAGES=("${SERVER[@]}") ;;
  runtime) PACKAGES=("${RUNTIME[@]}") ;;
  all) PACKAGES=("${SERVER[@]}" "${TESTS[@]}" "${REPORT[@]}") ;;
  *) echo "usage: scripts/install-deps.sh [server|runtime|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
