#!/usr/bin/env bash
# Builds the libFuzzer targets (in the asan preset's tree: clang-14, ASan+UBSan, the
# libraries with coverage instrumentation) and runs each, two at a time
# (SESSIONCTX_FUZZ_JOBS): first over its saved regressions (fuzz/regressions/TARGET/, inputs that once
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

# fuzz_target T: T's saved regressions, then SECONDS of fuzzing; prints what it did,
# returns non-zero when an input failed.
fuzz_target() {
  local t=$1 bin=build/asan/bin/${1}_fuzz
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    echo "=== fuzz $t: regressions"
    "$bin" fuzz/regressions/"$t"/* 2>&1 | tail -n 2 || { echo "fuzz $t: a saved regression FAILED"; return 1; }
  fi
  local corpus=build/fuzz-corpus/$t log=build/fuzz-findings/$t.log
  mkdir -p "$corpus"
  echo "=== fuzz $t: ${seconds}s"
  if ! "$bin" "$corpus" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="build/fuzz-findings/$t-" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $t: FAILED; the input is in build/fuzz-findings/"
    return 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | tr '\n' ' '
  echo "corpus: $(ls "$corpus" | wc -l) inputs"
}

# A fuzzer runs on one core: SESSIONCTX_FUZZ_JOBS targets (default 2, one per core) run
# at once, their reports printed in order once all are done.
jobs=${SESSIONCTX_FUZZ_JOBS:-2}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  rm -f "build/fuzz-findings/$t.status"
  ( status=1; if fuzz_target "$t"; then status=0; fi
    echo "$status" >"build/fuzz-findings/$t.status" ) >"build/fuzz-findings/$t.report" 2>&1 &
done
wait
failed=0
for t in "${targets[@]}"; do
  cat "build/fuzz-findings/$t.report"
  [ "$(cat "build/fuzz-findings/$t.status" 2>/dev/null)" = 0 ] || failed=1
done
exit "$failed"
