#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly's recommended rules (npm @redocly/cli, installed
# into build/tools/redocly like Prism; docs/redocly.yaml switches off two rules and
# says why). Fails on any error or warning, so the document cannot turn invalid.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.34.5  # the 1.x line runs on Debian's Node.js 18 too
BIN=$(scripts/npm-tool.sh redocly @redocly/cli "$VERSION" redocly)
out=$(cd docs && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$BIN" lint openapi.yaml --config redocly.yaml --format=summary 2>&1) || {
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
