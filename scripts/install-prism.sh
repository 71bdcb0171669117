#!/usr/bin/env bash
# Installs Stoplight Prism (from npm) into build/tools/prism for the OpenAPI contract
# test (tests/contract_test.cc) and prints the path of its executable. Installs
# Node.js and npm from Debian first when they are missing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=5.14.2
DIR=build/tools/prism
BIN=$DIR/node_modules/.bin/prism
if [ ! -x "$BIN" ] || ! grep -q "\"version\": \"$VERSION\"" \
    "$DIR/node_modules/@stoplight/prism-cli/package.json" 2>/dev/null; then
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
    "@stoplight/prism-cli@$VERSION" >&2
fi
echo "$PWD/$BIN"
