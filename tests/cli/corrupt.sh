# Damaged llama2.c files through the CLI: single-byte corruptions of stories260K.bin (every
# header byte with several values, then positions spread over the weights) and of
# tok512.bin (positions over the whole file), and truncation at every 1/64 of each.
# Every run must exit 0 (a weight or score changed: nothing to detect, the model still
# runs) or 1 with a message naming the file; never a signal or any other status.
# A truncated file must always be refused (exit 1). (GGUF: tests/unit/test_gguf.c.)
# .mpk (checksummed): every corruption and every truncation must be refused, by mipr-run
# (which also runs tests/unit/test_mpk.c's library check over 1,392 damaged files).
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
refused=0; ran=0

# outcome FILE -- command...: the status and message rules above; counts refusals.
outcome() {
  local file=$1; shift 2
  "$@" >/dev/null 2>"$T/err"
  local rc=$?
  if [ $rc = 1 ]; then
    refused=$((refused + 1))
    grep -qF "$(basename "$file")" "$T/err" || fail "'$*': message does not name the file: $(head -c 300 "$T/err")"
  elif [ $rc != 0 ]; then
    fail "'$*' exited $rc (a signal is >= 128): $(head -c 300 "$T/err")"
  fi
  ran=$((ran + 1))
}

# corrupt SRC DST POS BYTE: DST is SRC with the byte at POS replaced.
corrupt() {
  cp "$1" "$2"
  printf "$(printf '\\%03o' "$4")" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}

# A fixed pseudo-random sequence (64-bit LCG), the same on every run.
rng=88172645463325252
next() { rng=$(( (rng * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff )); }

run_model() { outcome "$1" -- "$MIPR" generate "$1" -z "$TOK" -n 6 -t 0.8 --seed 1; }
run_tok() { outcome "$1" -- "$MIPR" generate "$BIN" -z "$1" -p "Once upon a time, Lily" -n 6 --seed 1; }

# stories260K.bin: 28 header bytes x 4 values (0, 0xFF, 0x80, a bit flip) = 112, and 100
# positions over the float arrays (a NaN or huge weight must not crash the engine)
size=$(stat -c %s "$BIN")
for ((pos = 0; pos < 28; pos++)); do
  orig=$(od -An -tu1 -j $pos -N1 "$BIN" | tr -d ' ')
  for v in 0 255 128 $((orig ^ 16)); do
    [ "$v" = "$orig" ] && v=$((orig ^ 1))
    corrupt "$BIN" "$T/bad.bin" $pos $v
    run_model "$T/bad.bin"
  done
done
header_refused=$refused
for ((i = 0; i < 100; i++)); do
  next; pos=$((28 + rng % (size - 28))); next
  corrupt "$BIN" "$T/bad.bin" $pos $(( i % 4 == 0 ? 255 : rng % 256 ))
  run_model "$T/bad.bin"
done
echo "stories260K.bin: $ran corruptions, $refused refused ($header_refused of 112 in the header)"
[ $header_refused -ge 100 ] || fail "only $header_refused of 112 header corruptions were refused"

# tok512.bin: 200 positions over the whole file (lengths, scores, pieces)
tsize=$(stat -c %s "$TOK"); ran=0; refused=0
for ((i = 0; i < 200; i++)); do
  next; pos=$((rng % tsize)); next
  corrupt "$TOK" "$T/bad_tok.bin" $pos $(( i % 3 == 0 ? (i % 2 ? 255 : 0) : rng % 256 ))
  run_tok "$T/bad_tok.bin"
done
echo "tok512.bin: $ran corruptions, $refused refused"
[ $refused -ge 20 ] || fail "only $refused of 200 tokenizer corruptions were refused"

# truncation at every 1/64: always refused
for ((k = 0; k < 64; k++)); do
  head -c $((size * k / 64)) "$BIN" >"$T/cut.bin"
  expect 1 "cut.bin" -- "$MIPR" generate "$T/cut.bin" -z "$TOK" -n 4
  head -c $((tsize * k / 64)) "$TOK" >"$T/cut_tok.bin"
  expect 1 "cut_tok.bin" -- "$MIPR" generate "$BIN" -z "$T/cut_tok.bin" -n 4
done
# a q8 .mpk: 220 single-byte changes over the whole file, every one refused by mipr-run
: "${MIPR_RUN:?MIPR_RUN must name the mipr-run binary (ctest sets it)}"
"$MIPR" pack "$BIN" -z "$TOK" -o "$T/m.mpk" --quant q8 --chunk 4 -q 2>/dev/null || fail "pack"
msize=$(stat -c %s "$T/m.mpk"); ran=0; refused=0
for ((i = 0; i < 220; i++)); do
  next; pos=$(( i < 64 ? i : rng % msize )); next
  orig=$(od -An -tu1 -j $pos -N1 "$T/m.mpk" | tr -d ' ')
  v=$(( i % 2 ? orig ^ (1 << (rng % 8)) : (orig + 1 + rng % 255) % 256 ))
  corrupt "$T/m.mpk" "$T/bad.mpk" $pos $v
  outcome "$T/bad.mpk" -- "$MIPR_RUN" "$T/bad.mpk" -n 4 -t 0
done
echo "m.mpk: $ran corruptions, $refused refused"
[ $refused = $ran ] || fail "only $refused of $ran .mpk corruptions were refused"
for ((k = 0; k < 64; k++)); do
  head -c $((msize * k / 64)) "$T/m.mpk" >"$T/cut.mpk"
  expect 1 "cut.mpk" -- "$MIPR_RUN" "$T/cut.mpk" -n 4
done
finish
