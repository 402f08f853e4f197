#!/usr/bin/env bash
# Builds the fuzz preset (clang, libFuzzer, ASan + UBSan) and runs every fuzz target of
# tests/fuzz for SECONDS each (default 60), two at a time, starting from the committed seed
# corpus and regression inputs. Fails when any target finds something: its input is left in
# build/fuzz/findings/TARGET/ (crash-*, leak-*, timeout-*, oom-*); fix the reader, then copy
# the input to tests/fuzz/regressions/TARGET/ so every test suite replays it.
#
# MIPR_FUZZ_SEED picks libFuzzer's seed: unset or 0 draws a new one each run (for hunting);
# scripts/test.sh fixes it so that a CI run is reproducible and does not fail on a commit
# that did not touch the readers. Long random-seed runs are what finds new bugs.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf llama2c tokbin tokenize tokjson calib mpk safetensors hfconfig)
export MIPR_TEST_DATA="${MIPR_TEST_DATA:-$(cd .. && pwd)/shared/data}"
if [ ! -f "$MIPR_TEST_DATA/stories260K/tok512.bin" ]; then
  echo "fuzz: test data missing in '$MIPR_TEST_DATA' (set MIPR_TEST_DATA)" >&2
  exit 1
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
B=build/fuzz
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

run() {
  local t=$1 work="$B/work/$1" found="$B/findings/$1"
  rm -rf "$found"
  mkdir -p "$work" "$found"
  # New inputs go to the scratch folder (first); the committed folders are only read.
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: no input may need 2 GB.
  if "$B/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -seed="${MIPR_FUZZ_SEED:-0}" \
       -print_final_stats=1 -artifact_prefix="$found/" \
       "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$B/fuzz_$t.log" 2>&1 &&
     [ -z "$(ls -A "$found")" ]; then
    echo "fuzz $t: ${secs}s, no finding ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
          "$B/fuzz_$t.log" | grep -o '[0-9]*$') inputs run)"
  else
    echo "fuzz $t: FINDING (log $B/fuzz_$t.log, input in $found/):" >&2
    grep -E "ERROR|SUMMARY|fuzz finding|runtime error" "$B/fuzz_$t.log" | head -5 >&2 || true
    return 1
  fi
}

# Two targets at a time: CI has two cores.
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for t in "${targets[@]:i:2}"; do
    run "$t" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
done
[ $status -eq 0 ] && echo "=== fuzz: every target ran ${secs}s without a finding"
exit $status
