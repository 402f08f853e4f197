# mipr prune from a calibration record: policy, report, deci export that our engine (and
# perplexity) reads back with the reported numbers; bad arguments fail early, leave nothing.
. "$(dirname "$0")/../cli_lib.sh"
M="$D/stories260K/stories260K.bin"; Z="$D/stories260K/tok512.bin"
TXT="$D/text/tinystories/tinystories_train_head.txt"
"$MIPR" calibrate "$M" -z "$Z" --text "$TXT" --tokens 12000 --samples 128 --heldout 512 \
  -o "$T/c.mcal" 2>"$T/cal.err" || fail "calibrate: $(cat "$T/cal.err")"

"$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 -o "$T/p.gguf" --report "$T/r.json" \
  2>"$T/p.err" || fail "prune: $(cat "$T/p.err")"
grep -q "policy" "$T/p.err" && grep -q "parameters  260032 ->" "$T/p.err" || fail "report: $(cat "$T/p.err")"
python3 - "$T/r.json" <<'PY' || fail "report JSON"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["policy"] and len(r["policy"]["candidates"]) == 10, r["policy"]
assert r["parameters_after"] < r["parameters_before"]
assert r["heldout"]["kl_after"] > 0 and r["heldout"]["perplexity_after"] > r["heldout"]["perplexity_before"]
assert len(r["layers"]) == 5 and r["peak_rss_mib"] > 0
print("criterion", r["criterion"], r["allocation"], "ppl", r["heldout"])
PY
"$MIPR" generate "$T/p.gguf" -p "Once upon a time" -t 0 -n 40 >"$T/g" 2>/dev/null || fail "pruned model does not generate"
grep -q "^Once upon a time" "$T/g" || fail "pruned text: $(cat "$T/g")"

# adaptive widths -> deci; same seed -> same bytes
for f in a b; do
  "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.25 --criterion flap --allocation adaptive \
    --bias -o "$T/$f.gguf" 2>"$T/$f.err" || fail "prune flap: $(cat "$T/$f.err")"
done
cmp -s "$T/a.gguf" "$T/b.gguf" || fail "prune is not deterministic"
# the written deci model, read back by mipr perplexity, gives the report's numbers
VAL="$T/val.txt"; head -c 15000 "$D/text/tinystories/validation_100.txt" >"$VAL"
"$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.25 --criterion flap --allocation adaptive \
  --bias --eval-text "$VAL" --window 128 -o "$T/e.gguf" --report "$T/e.json" 2>/dev/null || fail "prune --eval-text"
"$MIPR" perplexity "$T/e.gguf" --text "$VAL" --window 128 --reference "$M" --json >"$T/e.ppl" 2>/dev/null \
  || fail "perplexity of the pruned deci model"
python3 - "$T/e.json" "$T/e.ppl" <<'PY' || fail "perplexity differs from the report"
import json, sys
rep = json.load(open(sys.argv[1]))["eval_text"]; ppl = json.load(open(sys.argv[2]))
assert rep["tokens"] == ppl["tokens"], (rep, ppl)
assert abs(rep["perplexity_after"] - ppl["perplexity"]) < 1e-5 * ppl["perplexity"], (rep, ppl)
assert abs(rep["kl_after"] - ppl["kl"]) < 1e-6, (rep, ppl)
print("report", rep, "perplexity", ppl["perplexity"], "kl", ppl["kl"])
PY
grep -q "(deci" "$T/a.err" || fail "adaptive widths did not give deci: $(tail -3 "$T/a.err")"
"$MIPR" info "$T/a.gguf" >"$T/info" || fail "info on deci"
grep -q "ffn widths" "$T/info" || fail "info: $(cat "$T/info")"

# the output keeps the input's type (F16 in -> F16 out), widths default to multiples of 32
"$MIPR" convert "$M" -z "$Z" --type f16 -o "$T/h.gguf" 2>/dev/null || fail "convert f16"
"$MIPR" calibrate "$T/h.gguf" --text "$TXT" --tokens 6000 --samples 64 --heldout 256 \
  -o "$T/h.mcal" 2>/dev/null || fail "calibrate f16"
"$MIPR" prune "$T/h.gguf" --calib "$T/h.mcal" --ratio 0.3 --criterion magnitude -o "$T/hp.gguf" \
  2>"$T/hp.err" || fail "prune f16: $(cat "$T/hp.err")"
grep -q "wrote $T/hp.gguf: f16 weights (input f16" "$T/hp.err" || fail "f16 not kept: $(tail -3 "$T/hp.err")"
[ "$(stat -c %s "$T/hp.gguf")" -lt "$(stat -c %s "$T/h.gguf")" ] || fail "pruned f16 model grew"
grep -Eq "layers      (172->(32|64|96|128|160) ?)+$" "$T/hp.err" || fail "widths not 32-aligned: $(grep layers "$T/hp.err")"
"$MIPR" prune "$T/h.gguf" --calib "$T/h.mcal" --ratio 0.3 --criterion magnitude --align 128 --type q8_0 \
  -o "$T/hq.gguf" 2>"$T/hq.err" || fail "prune --align 128: $(cat "$T/hq.err")"
grep -q "q8_0 weights" "$T/hq.err" && grep -q "172->128 " "$T/hq.err" || fail "--align 128 --type q8_0: $(cat "$T/hq.err")"
expect 2 "1, 8, 16, 32, 64, 128 or 256" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.2 --align 48 -o "$T/x.gguf"

# bad arguments: exit 2 (usage) or 1, a message, no output file
expect 2 "ratio" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 1.5 -o "$T/x.gguf"
expect 2 "strictly between 0 and 1" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0 -o "$T/x.gguf"
expect 1 "layers 0..4" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.2 --layers 2-9 -o "$T/x.gguf"
expect 1 "not writable" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.2 -o "$T/nodir/x.gguf"
expect 1 "missing.mcal" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/missing.mcal" --ratio 0.2 -o "$T/x.gguf"
"$MIPR" calibrate "$D/babyllama-tok105/model5000.bin" -z "$D/babyllama-tok105/tok105.bin" --text "$TXT" \
  --tokens 3000 --samples 32 --heldout 256 -o "$T/other.mcal" 2>/dev/null || fail "calibrate babyllama"
expect 1 "another model|neurons" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/other.mcal" --ratio 0.2 -o "$T/x.gguf"
expect 1 "too short" -- "$MIPR" calibrate "$M" -z "$Z" --text "$TXT" --tokens 100 --samples 500 -o "$T/y.mcal"
[ ! -e "$T/x.gguf" ] && [ ! -e "$T/y.mcal" ] || fail "a failed command left an output file"
ls -a "$T" | grep -q "\.tmp\." && fail "temporary file left behind"
finish
