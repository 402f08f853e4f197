# A Hugging Face folder (TinyStories-656K) through every command: generate (against an
# independent python reference), convert to GGUF (same text, same perplexity), calibrate,
# prune to GGUF and to an HF folder (which reloads with the same perplexity), pack and
# mipr-run.
. "$(dirname "$0")/../cli_lib.sh"
: "${MIPR_RUN:?MIPR_RUN must name the mipr-run binary (ctest sets it)}"
HF="$D/tinystories-656k"
REF="$(dirname "$0")/../hf/ref_forward.py"
TXT="$D/text/tinystories/validation_100.txt"
strip() { sed -e 's/[[:space:]]*$//'; }

# greedy text against python's float64 re-statement of transformers' forward pass (40
# positions; the decoders differ only in trailing spaces, which are stripped)
want=$(python3 "$REF" "$HF" --greedy 40 $("$MIPR" tokenize "$HF" -p "Once upon a time" --ids | tr -d '[],') | strip)
got=$("$MIPR" generate "$HF" -t 0 -n 40 -p "Once upon a time" 2>"$T/gen_err" | strip)
[ -n "$want" ] && [ "$got" = "$want" ] || fail "generate: '$got' vs the python reference '$want' ($(cat "$T/gen_err"))"
echo "$got" | grep -q "Lily" || fail "TinyStories text expected, got '$got'"
text=$("$MIPR" generate "$HF" -t 0 -n 120 2>/dev/null)

# convert: the GGUF gives the same text and perplexity (its logits equal the folder's: unit.hf)
"$MIPR" convert "$HF" -o "$T/ts.gguf" 2>"$T/conv_err" || fail "convert: $(cat "$T/conv_err")"
[ "$("$MIPR" generate "$T/ts.gguf" -t 0 -n 120 2>/dev/null)" = "$text" ] || fail "the converted GGUF generates other text"
head -c 12000 "$TXT" >"$T/eval.txt"
ppl() { "$MIPR" perplexity "$1" --text "$T/eval.txt" --window 128 --json 2>/dev/null |
        python3 -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["perplexity"])'; }
p_hf=$(ppl "$HF"); p_gguf=$(ppl "$T/ts.gguf")
[ -n "$p_hf" ] && [ "$p_hf" = "$p_gguf" ] || fail "perplexity: HF folder $p_hf, converted GGUF $p_gguf"
python3 -c "import sys; p=float(sys.argv[1]); assert 1.5 < p < 60, p" "$p_hf" || fail "perplexity '$p_hf' out of range"
"$MIPR" info "$HF" >"$T/info" || fail "info"
grep -q "Hugging Face folder" "$T/info" && grep -q "heads           8 (kv 4" "$T/info" || fail "info: $(cat "$T/info")"

# calibrate and prune, to GGUF and to a Hugging Face folder; the same pruned model both ways
"$MIPR" calibrate "$HF" --text "$TXT" --tokens 4096 --window 128 --heldout 1024 -o "$T/ts.mcal" \
  2>"$T/cal_err" || fail "calibrate: $(cat "$T/cal_err")"
common=(--calib "$T/ts.mcal" --ratio 0.25 --criterion magnitude --align 32 --eval-text "$T/eval.txt" --window 128)
"$MIPR" prune "$HF" "${common[@]}" --no-bias -o "$T/p.gguf" 2>"$T/pg_err" || fail "prune to GGUF: $(cat "$T/pg_err")"
"$MIPR" prune "$HF" "${common[@]}" --format hf -o "$T/pruned" --report "$T/rep.json" 2>"$T/ph_err" ||
  fail "prune to HF: $(cat "$T/ph_err")"
grep -q "wrote $T/pruned (Hugging Face folder, f32 safetensors)" "$T/ph_err" || fail "prune does not say what it wrote: $(tail -3 "$T/ph_err")"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -f "$T/pruned/$f" ] || fail "pruned folder lacks $f"
done
grep -q '"intermediate_size":	288' "$T/pruned/config.json" || fail "config.json: intermediate_size not 288: $(grep intermediate "$T/pruned/config.json")"
# the reloaded folder scores the text exactly as prune's model in memory did
read -r r_before r_after < <(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["eval_text"]; print("%.6f %.6f" % (e["perplexity_before"], e["perplexity_after"]))' "$T/rep.json")
p_ph=$(ppl "$T/pruned")
[ "$r_before" = "$p_hf" ] || fail "dense perplexity: prune says $r_before, mipr perplexity $p_hf"
[ -n "$p_ph" ] && [ "$p_ph" = "$r_after" ] || fail "pruned HF folder reloads with perplexity $p_ph, prune measured $r_after"
[ "$p_ph" != "$p_hf" ] || fail "pruning changed nothing"
echo "perplexity on 12 kB of TinyStories: dense $p_hf, pruned and reloaded $p_ph (prune: $r_after)"
# the same pruned model as GGUF: the same perplexity and text
p_pg=$(ppl "$T/p.gguf")
[ "$p_pg" = "$p_ph" ] || fail "pruned perplexity: GGUF $p_pg, HF folder $p_ph"
[ "$("$MIPR" generate "$T/p.gguf" -t 0 -n 80 2>/dev/null)" = "$("$MIPR" generate "$T/pruned" -t 0 -n 80 2>/dev/null)" ] ||
  fail "pruned GGUF and pruned HF folder generate different text"
# the pruned folder prunes and converts on like any other
"$MIPR" convert "$T/pruned" -o "$T/p2.gguf" 2>/dev/null || fail "convert the pruned folder"
# an existing folder is not overwritten; a refused run leaves no temporary
expect 1 "pruned already exists and is not empty" -- "$MIPR" prune "$HF" "${common[@]}" --format hf -o "$T/pruned"
ls -a "$T" | grep -q "mipr-tmp" && fail "temporary folder left behind: $(ls -a "$T")"

# pack and mipr-run: the same text
"$MIPR" pack "$HF" -o "$T/ts.mpk" -q 2>"$T/pack_err" || fail "pack: $(cat "$T/pack_err")"
[ "$("$MIPR_RUN" "$T/ts.mpk" -t 0 -n 120 2>/dev/null)" = "$text" ] || fail "mipr-run on the packed folder differs"
"$MIPR" pack "$T/pruned" -o "$T/p.mpk" -q 2>/dev/null || fail "pack the pruned folder"
[ -n "$("$MIPR_RUN" "$T/p.mpk" -t 0 -n 40 2>/dev/null)" ] || fail "mipr-run on the pruned pack"
finish
