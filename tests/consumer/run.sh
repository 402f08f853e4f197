# cmake --install into a temporary prefix, then build tests/consumer against it twice (CMake
# package, pkg-config) and check that the app prints what mipr-run prints for the same .mpk.
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
echo "consumer built against the installed package (CMake and pkg-config) and ran the model"
