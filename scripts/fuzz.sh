#!/usr/bin/env bash
# Builds the libFuzzer targets (in the asan preset's tree: clang-14, ASan+UBSan, the
# libraries with coverage instrumentation) and runs each:
# first over its saved regressions (fuzz/regressions/TARGET/, inputs that once
# failed), then fuzzing for SECONDS from the seed corpus (fuzz/corpus/TARGET/) plus
# what earlier runs found (build/fuzz-corpus/TARGET/, kept between runs).
# A crash leaves its input in build/fuzz-findings/ and ends the script non-zero.
#
#   scripts/fuzz.sh              # 60 s per target
#   scripts/fuzz.sh 600          # longer
#   scripts/fuzz.sh 20 token     # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(write_rules http_handler request token record_codec)

cmake --preset asan >/dev/null
# The fuzz targets and what they link (the test command has built them already).
cmake --build --preset asan --target "${targets[@]/%/_fuzz}"

mkdir -p build/fuzz-findings
for t in "${targets[@]}"; do
  bin=build/asan/bin/${t}_fuzz
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    echo "=== fuzz $t: regressions"
    "$bin" fuzz/regressions/"$t"/* 2>&1 | tail -n 2
  fi
  corpus=build/fuzz-corpus/$t
  mkdir -p "$corpus"
  echo "=== fuzz $t: ${seconds}s"
  log=build/fuzz-findings/$t.log
  if ! "$bin" "$corpus" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="build/fuzz-findings/$t-" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $t: FAILED; the input is in build/fuzz-findings/"
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | tr '\n' ' '
  echo "corpus: $(ls "$corpus" | wc -l) inputs"
done
