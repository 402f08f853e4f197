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
# The benchmark suite's smoke run: every output produced and checked (bench_report --check),
# into the build tree so the committed record in docs/ is never touched.
echo "=== benchmarks: quick run"
bash benchmarks/run.sh --quick --no-build --out build/host/bench-quick
suite sanitize
for p in aarch64 armhf; do
  if grep -q "\"name\": \"$p\"" CMakePresets.json; then suite "$p"; fi
done
echo "=== all suites passed"
