#!/usr/bin/env bash
# ctest bench.check: bench_report --check accepts the committed record and rejects a record
# whose parts disagree or do not parse (a changed CSV number, a broken JSON file, a short
# CSV row, a missing plot).
#   check_test.sh BENCH_REPORT DOCS_DIR SCRATCH_DIR
set -uo pipefail
report=$1 docs=$2 tmp=$3/bench-check
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$report" --check "$docs" || fail "the committed record in $docs does not check"

fresh() { rm -rf "$tmp"; mkdir -p "$tmp"; cp -r "$docs/RESULTS.md" "$docs/results" "$tmp/"; }
rejects() { # WHAT PATTERN: --check must fail and say PATTERN
  local out
  if out=$("$report" --check "$tmp" 2>&1); then fail "$1: accepted"; fi
  grep -q -- "$2" <<<"$out" || fail "$1: no '$2' in: $out"
}

csv=$(ls "$docs"/results/criteria/*.csv | head -1)
name=$(basename "$csv")
fresh
# a perplexity in the first data row changed: RESULTS.md and the plots no longer match
awk -F, 'BEGIN{OFS=","} NR==2{$11=$11*2} {print}' "$csv" >"$tmp/results/criteria/$name"
rejects "changed CSV number" "differs from what the data gives"
fresh
sed -i '2s/,[^,]*$//' "$tmp/results/criteria/$name"
rejects "short CSV row" "not 21 fields"
fresh
json=$(ls "$tmp"/results/perf/*.json | head -1)
head -c 20 "$json" >"$json.tmp" && mv "$json.tmp" "$json"
rejects "truncated JSON" "not valid JSON"
fresh
rm "$(ls "$tmp"/results/plots/*.svg | head -1)"
rejects "missing plot" "missing"
rm -rf "$tmp"
[ $fails = 0 ] && echo "bench.check: all checks passed"
exit $((fails > 0))
