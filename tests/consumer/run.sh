# cmake --install into a temporary prefix, then build tests/consumer against it twice (CMake
# package, pkg-config) and check that the app prints what mipr-run prints for the same .mpk.
# Then the same against a shared build (-DBUILD_SHARED_LIBS=ON) of this source tree: SONAMEs,
# only mipr_* symbols exported, mipr_version() equal to the header's MIPR_VERSION_STRING.
set -eu
: "${MIPR_BUILD_DIR:?}" "${MIPR:?}" "${MIPR_RUN:?}" "${MIPR_TEST_DATA:?}"
src=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${MIPR_TEST_TMP:-/tmp}/consumer.XXXXXX")
trap 'rm -rf "$T"' EXIT
cmake --install "$MIPR_BUILD_DIR" --prefix "$T/prefix" >/dev/null
for f in include/mipr/mipr_runtime.h include/mipr/mipr_arch.h lib/libmipr_runtime.a \
         lib/cmake/mipr/miprConfig.cmake lib/pkgconfig/mipr.pc bin/mipr-run; do
  [ -e "$T/prefix/$f" ] || { echo "FAIL: $f not installed" >&2; exit 1; }
done
cmake -S "$src" -B "$T/build" -G Ninja -DCMAKE_PREFIX_PATH="$T/prefix" >/dev/null
cmake --build "$T/build" >/dev/null
D=$MIPR_TEST_DATA/stories260K
"$MIPR" pack "$D/stories260K.bin" -z "$D/tok512.bin" -o "$T/m.mpk" --quant q8 -q 2>/dev/null
want=$("$MIPR_RUN" "$T/m.mpk" -t 0 -n 80 2>/dev/null)
got=$("$T/build/story" "$T/m.mpk" 80)
[ "$got" = "$want" ] || { echo "FAIL: the consumer (CMake package) printed: $got" >&2; exit 1; }
# the same app through pkg-config
PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" cc -std=c11 -o "$T/story-pc" "$src/main.c" \
  $(PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" pkg-config --cflags --libs mipr)
got=$("$T/story-pc" "$T/m.mpk" 80)
[ "$got" = "$want" ] || { echo "FAIL: the consumer (pkg-config) printed: $got" >&2; exit 1; }

# The shared libraries: configure and build the libraries and tools only, then install.
srcdir=$(cd "$src/../.." && pwd)
cmake -S "$srcdir" -B "$T/shared-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DMIPR_BUILD_TESTS=OFF -DMIPR_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$T/shared-build" >/dev/null
cmake --install "$T/shared-build" --prefix "$T/shared" >/dev/null
for lib in arch runtime xnnpack core; do
  so="$T/shared/lib/libmipr_$lib.so"
  [ -e "$so" ] || { echo "FAIL: $so not installed" >&2; exit 1; }
  soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  [ "$soname" = "libmipr_$lib.so.0" ] || { echo "FAIL: $so has SONAME '$soname'" >&2; exit 1; }
  bad=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^mipr_' || true)
  [ -z "$bad" ] || { echo "FAIL: $so exports non-mipr symbols: $bad" >&2; exit 1; }
done
# The device side never links XNNPACK (the prefill provider is libmipr_xnnpack's).
for f in "$T/shared/bin/mipr-run" "$T/shared/lib/libmipr_runtime.so"; do
  ! ldd "$f" | grep -qi xnnpack || { echo "FAIL: $f links XNNPACK" >&2; exit 1; }
done
! PKG_CONFIG_PATH="$T/shared/lib/pkgconfig" pkg-config --libs --static mipr-runtime | grep -q XNNPACK ||
  { echo "FAIL: mipr-runtime.pc names XNNPACK" >&2; exit 1; }
cmake -S "$src" -B "$T/build-shared" -G Ninja -DCMAKE_PREFIX_PATH="$T/shared" >/dev/null
cmake --build "$T/build-shared" >/dev/null
ldd "$T/build-shared/story" | grep -q "libmipr_runtime.so.0 => $T/shared" ||
  { echo "FAIL: the consumer does not load the shared runtime: $(ldd "$T/build-shared/story")" >&2; exit 1; }
got=$("$T/build-shared/story" "$T/m.mpk" 80)
[ "$got" = "$want" ] || { echo "FAIL: the consumer (shared, CMake package) printed: $got" >&2; exit 1; }
PKG_CONFIG_PATH="$T/shared/lib/pkgconfig" cc -std=c11 -o "$T/story-pc-shared" "$src/main.c" \
  $(PKG_CONFIG_PATH="$T/shared/lib/pkgconfig" pkg-config --cflags --libs mipr-runtime) \
  -Wl,-rpath,"$T/shared/lib"
got=$("$T/story-pc-shared" "$T/m.mpk" 80)
[ "$got" = "$want" ] || { echo "FAIL: the consumer (shared, pkg-config) printed: $got" >&2; exit 1; }
ver=$("$T/story-pc-shared" --version)
[ "$ver" = "$(sed -n 's/^#define MIPR_VERSION_STRING "\(.*\)"/\1/p' "$srcdir/arch/mipr_arch.h")" ] ||
  { echo "FAIL: mipr_version() says '$ver'" >&2; exit 1; }
echo "consumer built against the installed package (static and shared; CMake and pkg-config) and ran the model"
