# The layering rules of docs/ARCHITECTURE.md, checked on the sources:
# - arch/ includes no runtime/, core/ or tools/ header; runtime/ no core/ or tools/ header;
#   core/ no tools/ header (each library sees only the ones below it);
# - runtime/ and arch/ do no stdio: no FILE, streams or printing (snprintf-style formatting
#   into the caller's buffer is all they use), so a device build has no stdio to link.
# It fails naming the file, the line and the rule.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

headers_of() { (cd "$root/$1" && find . -name '*.h' -printf '%f\n') | sort -u; }
check_includes() { # dir, then the folders whose headers it must not include
  local dir=$1; shift
  for up in "$@"; do
    while read -r h; do
      grep -rnE --include='*.c' --include='*.h' "^#[[:space:]]*include[[:space:]]*\"([^\"]*/)?$h\"" \
        "$root/$dir" | while IFS= read -r hit; do
        echo "$hit: $dir/ includes $h of $up/"
      done
    done < <(headers_of "$up")
  done
}
bad=$(check_includes arch runtime core tools; check_includes runtime core tools;
      check_includes core tools)
[ -z "$bad" ] || fail "an upward include:
$bad"

stdio='\b(printf|fprintf|vfprintf|puts|fputs|fputc|putchar|putc|getchar|fgets|fgetc|fopen|fdopen|freopen|fclose|fread|fwrite|fflush|fseek|ftell|rewind|perror|stdout|stderr|stdin|FILE)\b'
hits=$(grep -rnE --include='*.c' --include='*.h' "$stdio" "$root/runtime" "$root/arch" |
       grep -vE ':[0-9]+:[[:space:]]*(/\*|\*)' | grep -v 'format(printf' || true)
[ -z "$hits" ] || fail "stdio in runtime/ or arch/:
$hits"

# The checks themselves must see something: the trees are there and hold sources.
for d in arch runtime core tools; do
  [ -n "$(find "$root/$d" -name '*.c' | head -1)" ] || fail "no sources under $d/"
done
[ "$fails" -eq 0 ] || exit 1
echo "layering: arch < runtime < core < tools holds; runtime/ and arch/ do no stdio"
