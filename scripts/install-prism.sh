#!/usr/bin/env bash
# Installs Stoplight Prism (from npm) into build/tools/prism for the OpenAPI contract
# test (tests/contract_test.cc) and prints the path of its executable. Idempotent.
set -euo pipefail
exec "$(dirname "$0")/npm-tool.sh" prism @stoplight/prism-cli 5.14.2 prism
