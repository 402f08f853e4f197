#!/usr/bin/env bash
# The whole test suite: installs what it needs, then builds and runs every ctest suite
# (host Release, host ASan+UBSan, the cross builds under qemu-user, the Android smoke build,
# and the firmware under qemu-system-arm).
# Test data comes from MIPR_TEST_DATA (default: ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --cross

suite() {
  local preset=$1
  echo "=== $preset: configure, build, test"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
}

suite host
# The benchmark suite's smoke run: every output produced and checked (bench_report --check),
# into the build tree so the committed record in docs/ is never touched.
echo "=== benchmarks: quick run"
bash benchmarks/run.sh --quick --no-build --out build/host/bench-quick
suite sanitize
# Every fuzz target for MIPR_FUZZ_SECONDS (default 60) from the committed corpus.
# A fixed seed (MIPR_FUZZ_SEED, default 1): the same commit fuzzes the same way every run.
MIPR_FUZZ_SEED="${MIPR_FUZZ_SEED:-1}" bash scripts/fuzz.sh "${MIPR_FUZZ_SECONDS:-60}"
for p in aarch64 armhf android-smoke firmware-m7 firmware-m55; do
  if grep -q "\"name\": \"$p\"" CMakePresets.json; then suite "$p"; fi
done
# firmware footprint and instructions per token: build/firmware-*/bench_firmware.json
for p in firmware-m7 firmware-m55; do
  cmake --build --preset "$p" --target bench_firmware
done
echo "=== all suites passed"
