# Hugging Face folders given wrong: every error names the file and what is wrong, exits 1,
# and leaves no output behind.
. "$(dirname "$0")/../cli_lib.sh"
HF="$D/tinystories-656k"
# a copy whose files the cases below change (tokenizer files linked)
copy() {
  rm -rf "$T/$1"; mkdir "$T/$1"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    cp "$HF/$f" "$T/$1/$f"
  done
}
# rewrite the safetensors header of folder $1 with python expression $2 over h (the header)
lie() {
  python3 - "$T/$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
p, expr = sys.argv[1], sys.argv[2]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
exec(expr)
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
}

mkdir "$T/empty"
expect 1 "empty: a folder, but not a Hugging Face model folder: it has no config.json" -- \
  "$MIPR" info "$T/empty"
expect 1 "model.safetensors: a safetensors file; .*pass the folder" -- \
  "$MIPR" generate "$HF/model.safetensors" -n 4
copy noweights; rm "$T/noweights/model.safetensors"
expect 1 "noweights: Hugging Face folder without weights: neither model.safetensors nor" -- \
  "$MIPR" perplexity "$T/noweights" --text "$HF/config.json"

copy past; lie past 'h["model.norm.weight"]["data_offsets"] = [2623488, 2700000]'
expect 1 "past/model.safetensors: tensor model.norm.weight: data_offsets \[2623488, 2700000\] run past the end" -- \
  "$MIPR" info "$T/past"
copy cut; truncate -s 2000000 "$T/cut/model.safetensors"
expect 1 "cut/model.safetensors: tensor .*run past the end of the data" -- "$MIPR" info "$T/cut"
copy overlap; lie overlap 'h["model.norm.weight"]["data_offsets"] = [0, 512]'
expect 1 "overlap/model.safetensors: tensors .*overlap" -- "$MIPR" info "$T/overlap"
copy dtype; lie dtype 'h["model.norm.weight"]["dtype"] = "I32"'
expect 1 "dtype/model.safetensors: tensor model.norm.weight: dtype I32 is not read" -- \
  "$MIPR" info "$T/dtype"
copy bytes; lie bytes 'h["model.norm.weight"]["shape"] = [64]'
expect 1 "bytes/model.safetensors: tensor model.norm.weight: data_offsets span 512 bytes but shape and dtype need 256" -- \
  "$MIPR" info "$T/bytes"
copy shape; sed -i 's/"intermediate_size": 384/"intermediate_size": 400/' "$T/shape/config.json"
expect 1 "shape/model.safetensors: tensor model.layers.0.mlp.gate_proj.weight has shape \[384, 128\] but config.json gives \[400, 128\]" -- \
  "$MIPR" info "$T/shape"
copy arch; sed -i 's/"model_type": "llama"/"model_type": "gpt_neox"/' "$T/arch/config.json"
expect 1 "arch/config.json: model_type \"gpt_neox\" .* is not supported" -- "$MIPR" info "$T/arch"
copy json; echo '{"model_type": "llama",' >"$T/json/config.json"
expect 1 "json/config.json: not a JSON object" -- "$MIPR" info "$T/json"
copy shards; rm "$T/shards/model.safetensors"
echo '{"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors"}}' \
  >"$T/shards/model.safetensors.index.json"
expect 1 "shards/model.safetensors.index.json names shard .*model-00001-of-00002.safetensors, which is missing" -- \
  "$MIPR" info "$T/shards"
echo '{"weight_map": {"lm_head.weight": "../model.safetensors"}}' \
  >"$T/shards/model.safetensors.index.json"
expect 1 "index.json: shard \"../model.safetensors\" is not a file name in the folder" -- \
  "$MIPR" info "$T/shards"
expect 1 "a Hugging Face folder carries its tokenizer" -- \
  "$MIPR" info "$HF" -z "$D/stories260K/tok512.bin"

# a folder where a file is expected, and a file where a folder is: nothing written
expect 1 "empty: .*[Ii]s a directory" -- "$MIPR" convert "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" -o "$T/empty"
echo precious >"$T/file.gguf"
CAL="$T/ts.mcal"
"$MIPR" calibrate "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" \
  --text "$D/text/tinystories/validation_100.txt" --tokens 2048 --window 128 --heldout 512 \
  -o "$CAL" 2>/dev/null || fail "calibrate stories260K"
expect 1 "Hugging Face output needs a Hugging Face folder as input" -- \
  "$MIPR" prune "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" --calib "$CAL" \
  --ratio 0.2 --format hf -o "$T/hfo"
[ -e "$T/hfo" ] && fail "a refused HF prune left $T/hfo"
expect 2 "--format expects gguf or hf" -- "$MIPR" prune "$HF" --calib "$CAL" --ratio 0.2 --format safetensors -o "$T/hfo"
expect 2 "--type f32, f16 or bf16" -- "$MIPR" prune "$HF" --calib "$CAL" --ratio 0.2 --format hf --type q8_0 -o "$T/hfo"
expect 2 "drop --bias" -- "$MIPR" prune "$HF" --calib "$CAL" --ratio 0.2 --format hf --bias -o "$T/hfo"
ls -a "$T" | grep -q "mipr-tmp" && fail "temporary folder left behind: $(ls -a "$T")"
finish
