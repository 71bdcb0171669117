#!/usr/bin/env bash
# The main job: installs what is missing, builds (release preset, -j2) and starts
# sessionctx-server on 127.0.0.1:8080 with its embedded default store
# (rocksdb:./data/sessions). Extra arguments go to the server, e.g. --store memory:
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target sessionctx-server sessionctl
exec build/release/bin/sessionctx-server "$@"
