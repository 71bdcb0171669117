#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly's recommended rules (npm @redocly/cli, installed
# into build/tools/redocly like Prism; docs/redocly.yaml switches off two rules and
# says why). Fails on any error or warning, so the document cannot turn invalid.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.34.5  # the 1.x line runs on Debian's Node.js 18 too
DIR=build/tools/redocly
BIN=$DIR/node_modules/.bin/redocly
if [ ! -x "$BIN" ] || ! grep -q "\"version\": \"$VERSION\"" \
    "$DIR/node_modules/@redocly/cli/package.json" 2>/dev/null; then
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "@redocly/cli@$VERSION" >&2
fi
out=$(cd docs && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "../$BIN" lint openapi.yaml --config redocly.yaml --format=summary 2>&1) || {
  echo "$out"
  echo "lint-openapi: docs/openapi.yaml has errors"
  exit 1
}
if echo "$out" | grep -qE '^(warning|error) '; then
  echo "$out"
  echo "lint-openapi: docs/openapi.yaml has warnings; fix them or switch the rule off in docs/redocly.yaml with a reason"
  exit 1
fi
echo "lint-openapi: docs/openapi.yaml is valid (redocly $VERSION, recommended rules)"
