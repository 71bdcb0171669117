#!/usr/bin/env bash
# Installs the Debian packages sessionctx needs to build, test, run and benchmark
# (bench/compare: Redis, hiredis, gnuplot, wrk, nginx). Idempotent:
# does nothing when every package is already there.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libabsl-dev nlohmann-json3-dev libssl-dev
  librocksdb-dev libpqxx-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev
  redis-server gnuplot-nox wrk nginx-light
  libboost-dev libcpp-httplib-dev prometheus-cpp-dev
  postgresql curl python3 python3-yaml
  clang-14 libclang-rt-14-dev
)

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
