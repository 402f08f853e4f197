# Same inputs and seed -> byte-identical outputs, across runs and across thread counts:
# calibrate (.mcal), prune (GGUF, JSON report without its timing fields), generate with
# temperature > 0, analyze --json and perplexity --json (without their "seconds"). docs/RELIABILITY.md lists the
# fields that may differ (timings, peak memory) and why.
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
TXT="$D/text/tinystories/tinystories_train_head.txt"
VAL="$T/val.txt"; head -c 20000 "$D/text/tinystories/validation_100.txt" >"$VAL"

# The report's timing fields, and the time perplexity took, are measurements, not results.
untimed() {
  sed -e 's/, "seconds": [0-9.]*//' -e 's/"seconds": [0-9.]*, //' "$1" |
    grep -v -e '^  "seconds": {' -e '"peak_rss_mib"'
}

# run1 uses one thread (and the environment's MIPR_THREADS is unset), run2 and run3 two;
# each writes to the same path, so the outputs and the report's "output" field are equal.
for r in 1 2 3; do
  th=$(( r == 1 ? 1 : 2 ))
  env -u MIPR_THREADS "$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT" --tokens 6000 --samples 96 \
    --heldout 384 --seed 7 --threads $th -o "$T/c.mcal" 2>"$T/err" || fail "calibrate: $(cat "$T/err")"
  cp "$T/c.mcal" "$T/c$r.mcal"
  for crit in mi flap; do
    env -u MIPR_THREADS "$MIPR" prune "$BIN" -z "$TOK" --calib "$T/c.mcal" --ratio 0.3 \
      --criterion $crit --seeds 2 --seed 3 --threads $th -o "$T/p.gguf" --report "$T/p.json" \
      2>"$T/err" || fail "prune $crit: $(cat "$T/err")"
    mv "$T/p.gguf" "$T/p_${crit}_$r.gguf"
    untimed "$T/p.json" >"$T/p_${crit}_$r.json"
  done
  env -u MIPR_THREADS "$MIPR" generate "$BIN" -z "$TOK" -p "Once upon a time" -t 0.9 --seed 1234 \
    -n 120 --threads $th >"$T/g$r.txt" 2>/dev/null || fail "generate"
  env -u MIPR_THREADS "$MIPR" generate "$BIN" -z "$TOK" -p "The cat" -t 1.0 --top-p 1 --seed 99 \
    -n 120 --threads $th >"$T/gp$r.txt" 2>/dev/null || fail "generate top-p"
  env -u MIPR_THREADS "$MIPR" analyze "$T/c.mcal" --approx 0.5 --seed 5 --json --threads $th \
    >"$T/an.json" 2>/dev/null || fail "analyze"
  untimed "$T/an.json" >"$T/an$r.json"
  env -u MIPR_THREADS "$MIPR" perplexity "$BIN" -z "$TOK" --text "$VAL" --window 128 --json \
    --threads $th >"$T/ppl.json" 2>/dev/null || fail "perplexity"
  untimed "$T/ppl.json" >"$T/ppl$r.json"
done

for r in 2 3; do
  what="run $r ($( ((r == 2)) && echo "1 vs 2 threads" || echo "2 threads again"))"
  cmp -s "$T/c1.mcal" "$T/c$r.mcal" || fail "calibrate: .mcal differs, $what"
  for crit in mi flap; do
    cmp -s "$T/p_${crit}_1.gguf" "$T/p_${crit}_$r.gguf" || fail "prune $crit: GGUF differs, $what"
    cmp -s "$T/p_${crit}_1.json" "$T/p_${crit}_$r.json" ||
      fail "prune $crit: report differs, $what: $(diff "$T/p_${crit}_1.json" "$T/p_${crit}_$r.json" | head -5)"
  done
  cmp -s "$T/g1.txt" "$T/g$r.txt" || fail "generate -t 0.9: text differs, $what"
  cmp -s "$T/gp1.txt" "$T/gp$r.txt" || fail "generate --top-p 1: text differs, $what"
  cmp -s "$T/ppl1.json" "$T/ppl$r.json" || fail "perplexity --json differs, $what"
  cmp -s "$T/an1.json" "$T/an$r.json" ||
    fail "analyze --json differs, $what: $(diff "$T/an1.json" "$T/an$r.json" | head -4)"
done
# the checks are not vacuous: sampling really samples, and the seed matters
grep -q "Once upon a time" "$T/g1.txt" || fail "generate: $(head -c 200 "$T/g1.txt")"
env -u MIPR_THREADS "$MIPR" generate "$BIN" -z "$TOK" -p "Once upon a time" -t 0.9 --seed 1235 -n 120 \
  >"$T/g_other.txt" 2>/dev/null
cmp -s "$T/g1.txt" "$T/g_other.txt" && fail "generate: another seed gives the same text"
grep -q '"perplexity"' "$T/ppl1.json" || fail "perplexity --json: $(cat "$T/ppl1.json")"
finish
