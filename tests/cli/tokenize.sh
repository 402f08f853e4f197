# mipr tokenize: llama-tokenize's output formats, each kind of MODEL, the model's BOS rule,
# ids that match published tokenizations (llama.cpp's .out files, made by the models' own
# tokenizers) and an independent reference (tests/ref/hf_spm_bpe.py), and clear errors.
. "$(dirname "$0")/../cli_lib.sh"
V=$D/vocab/llama.cpp
REF=$(dirname "$0")/../ref/hf_spm_bpe.py
# The ids the .out file gives for the case whose input is exactly $2.
published() {
  python3 - "$1" "$2" <<'PY'
import sys
inp = open(sys.argv[1] + ".inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
out = open(sys.argv[1] + ".out", encoding="utf-8").read().split("\n")
print(", ".join(out[inp.index(sys.argv[2])].split()))
PY
}
expect 0 "" -- "$MIPR" tokenize --help
grep -q "usage: mipr tokenize" "$T/out" || fail "--help prints no usage"
expect 2 "missing MODEL" -- "$MIPR" tokenize
expect 2 "exactly one of" -- "$MIPR" tokenize "$V/ggml-vocab-gpt-2.gguf"

# byte-level GGUF (no BOS for gpt-2), with the ids of the published case
want=$(published "$V/ggml-vocab-gpt-2.gguf" "Hello world")
expect 0 "" -- "$MIPR" tokenize "$V/ggml-vocab-gpt-2.gguf" -p "Hello world" --ids
[ "$(cat "$T/out")" = "[$want]" ] || fail "gpt-2: got $(cat "$T/out"), want [$want]"
# one "ID -> 'piece'" line per token, as llama-tokenize prints them
expect 0 "" -- "$MIPR" tokenize "$V/ggml-vocab-gpt-2.gguf" -p "Hello world"
printf '%6d -> %s\n' 15496 "'Hello'" 995 "' world'" | cmp -s - "$T/out" ||
  fail "gpt-2 pieces: $(cat "$T/out")"

# Llama 3 from a tokenizer.json folder: BOS 128000 first, then the published ids
want=$(published "$V/ggml-vocab-llama-bpe.gguf" " Hello, world!")
expect 0 "" -- "$MIPR" tokenize "$D/vocab/hf/llama3" -p " Hello, world!" --ids
[ "$(cat "$T/out")" = "[128000, $want]" ] || fail "llama3: $(cat "$T/out") vs [128000, $want]"
expect 0 "" -- "$MIPR" tokenize "$D/vocab/hf/llama3" -p " Hello, world!" --ids --no-bos
[ "$(cat "$T/out")" = "[$want]" ] || fail "llama3 --no-bos: $(cat "$T/out")"
# control tokens in the text are tokens (llama-tokenize's default), unless told otherwise
expect 0 "" -- "$MIPR" tokenize "$D/vocab/hf/llama3" -p "<|eot_id|>" --ids --no-bos
[ "$(cat "$T/out")" = "[128009]" ] || fail "llama3 special: $(cat "$T/out")"
expect 0 "" -- "$MIPR" tokenize "$D/vocab/hf/llama3" -p "<|eot_id|>" --ids --no-bos \
  --no-parse-special
grep -q "128009" "$T/out" && fail "--no-parse-special still matched <|eot_id|>"

# Qwen2.5 (no BOS) from tokenizer.json, text from a file
printf 'Hello world' >"$T/text"
want=$(published "$V/ggml-vocab-qwen2.gguf" "Hello world")
expect 0 "" -- "$MIPR" tokenize "$D/vocab/hf/qwen2.5/tokenizer.json" -f "$T/text" --ids
[ "$(cat "$T/out")" = "[$want]" ] || fail "qwen2: $(cat "$T/out") vs [$want]"
# escapes are processed by default (as llama-tokenize does): -p 'a\nb' is a, newline, b
printf '%s' 'Hello\nworld\t!' >"$T/esc"
printf 'Hello\nworld\t!' >"$T/raw"
"$MIPR" tokenize "$D/vocab/hf/qwen2.5" -f "$T/esc" --ids >"$T/a" || fail "qwen2 escapes"
"$MIPR" tokenize "$D/vocab/hf/qwen2.5" -f "$T/raw" --ids --no-escape >"$T/b" || fail "qwen2 raw"
cmp -s "$T/a" "$T/b" || fail "escaped text differs from the raw one: $(cat "$T/a") $(cat "$T/b")"
grep -q ", 198, " "$T/a" || fail "no newline token (198) in $(cat "$T/a")"

# SentencePiece-style tokenizer.json (TinyStories-656K): BOS 1, then the reference's ids
txt="Once upon a time, there was a little girl named Lily. She loved to play outside."
want=$(python3 "$REF" "$D/tinystories-656k/tokenizer.json" "$txt" | sed 's/ /, /g')
expect 0 "" -- "$MIPR" tokenize "$D/tinystories-656k" -p "$txt" --ids
[ "$(cat "$T/out")" = "[1, $want]" ] || fail "tinystories: $(cat "$T/out") vs [1, $want]"
# characters outside its 2,048 tokens (no byte tokens): one UNK per run (fuse_unk)
txt="Hi 😁😁 ok 我想 x"
want=$(python3 "$REF" "$D/tinystories-656k/tokenizer.json" "$txt" | sed 's/ /, /g')
expect 0 "" -- "$MIPR" tokenize "$D/tinystories-656k" -p "$txt" --ids --no-bos
[ "$(cat "$T/out")" = "[$want]" ] || fail "tinystories unknown: $(cat "$T/out") vs [$want]"

# SentencePiece GGUF and llama2.c with -z: BOS 1
want=$(published "$V/ggml-vocab-llama-spm.gguf" "Hello world")
expect 0 "" -- "$MIPR" tokenize "$V/ggml-vocab-llama-spm.gguf" -p "Hello world" --ids
[ "$(cat "$T/out")" = "[1, $want]" ] || fail "llama-spm: $(cat "$T/out")"
expect 0 "" -- "$MIPR" tokenize "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" \
  -p "Once upon a time" --ids
grep -q "^\[1, " "$T/out" || fail "llama2.c: $(cat "$T/out")"

# refused vocabularies and files name what is wrong
expect 1 "bert-bge.gguf: tokenizer model \"bert\" is not supported" -- \
  "$MIPR" tokenize "$V/ggml-vocab-bert-bge.gguf" -p x
echo '{"model": {"type": "Unigram"}}' >"$T/tokenizer.json"
expect 1 "tokenizer.json: model.type \"Unigram\" is not supported" -- \
  "$MIPR" tokenize "$T" -p x
expect 1 "nope.json: cannot open" -- "$MIPR" tokenize "$T/nope.json" -p x
finish
