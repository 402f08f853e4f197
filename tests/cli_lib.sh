# Shared by tests/cli/*.sh: locate the binary and data, and check outcomes.
set -u
: "${MIPR:?MIPR must name the mipr binary (ctest sets it)}"
D="${MIPR_TEST_DATA:-../shared/data}"
if [ ! -f "$D/stories260K/stories260K.bin" ]; then
  echo "test data missing in '$D': set MIPR_TEST_DATA to the folder with the mipr test assets" \
       "(README.md, section 'Test data', lists their public sources)" >&2
  exit 1
fi
T=$(mktemp -d "${MIPR_TEST_TMP:-/tmp}/cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE PATTERN -- command...: exit status CODE and stderr matching PATTERN (grep -E).
expect() {
  local code=$1 pat=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" != "$code" ]; then
    fail "'$*' exited $got, expected $code; stderr: $(head -c 400 "$T/err")"
  elif [ -n "$pat" ] && ! grep -qE -e "$pat" "$T/err"; then
    fail "'$*' stderr does not match /$pat/: $(head -c 400 "$T/err")"
  fi
}

finish() {
  if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed" >&2; exit 1; fi
  echo "all checks passed"
}
