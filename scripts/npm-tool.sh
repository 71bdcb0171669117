#!/usr/bin/env bash
# Installs one npm package into build/tools/NAME (Node.js and npm from Debian first,
# when missing) and prints the path of its executable. Idempotent: nothing is fetched
# when that version is there already.
#
#   scripts/npm-tool.sh NAME PACKAGE VERSION BIN
#   scripts/npm-tool.sh prism @stoplight/prism-cli 5.14.2 prism
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=$1 PACKAGE=$2 VERSION=$3 EXE=$4
DIR=build/tools/$NAME
BIN=$DIR/node_modules/.bin/$EXE
if [ ! -x "$BIN" ] || ! grep -q "\"version\": \"$VERSION\"" \
    "$DIR/node_modules/$PACKAGE/package.json" 2>/dev/null; then
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "$PACKAGE@$VERSION" >&2
fi
echo "$PWD/$BIN"
