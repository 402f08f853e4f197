#!/usr/bin/env bash
# The whole test suite: installs what it needs, then builds and runs every ctest suite
# (host Release, host ASan+UBSan, and the cross builds under qemu once they exist).
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
suite sanitize
# Every fuzz target for MIPR_FUZZ_SECONDS (default 60) from the committed corpus.
bash scripts/fuzz.sh "${MIPR_FUZZ_SECONDS:-60}"
for p in aarch64 armhf; do
  if grep -q "\"name\": \"$p\"" CMakePresets.json; then suite "$p"; fi
done
echo "=== all suites passed"
