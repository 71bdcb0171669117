#!/usr/bin/env bash
# The main job: installs what building and running the server needs (and nothing the
# tests or the benchmark report need), builds the server and sessionctl (the `server`
# preset, -j2, into build/server) and starts sessionctx-server on 127.0.0.1:8080 with
# its embedded default store (rocksdb:./data/sessions). Extra arguments go to the
# server, e.g. --store memory:
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh server
cmake --preset server >/dev/null
cmake --build --preset server --target sessionctx-server sessionctl
exec build/server/bin/sessionctx-server "$@"
