# mipr pack / unpack / verify and mipr-run: round trips, the oracle text, damage, atomicity.
. "$(dirname "$0")/../cli_lib.sh"
: "${MIPR_RUN:?MIPR_RUN must name the mipr-run binary (ctest sets it)}"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
want=$("$MIPR" generate "$BIN" -z "$TOK" -t 0 -n 120 2>/dev/null)
for q in f32 f16 bf16 q8 q4; do
  "$MIPR" pack "$BIN" -z "$TOK" -o "$T/m_$q.mpk" --quant $q -q 2>"$T/err_$q" || fail "pack $q: $(cat "$T/err_$q")"
  "$MIPR" verify -q "$T/m_$q.mpk" >"$T/v_$q" || fail "verify $q: $(cat "$T/v_$q")"
  "$MIPR_RUN" "$T/m_$q.mpk" -t 0 -n 120 >"$T/r_$q" 2>"$T/rerr_$q" || fail "mipr-run $q: $(cat "$T/rerr_$q")"
  "$MIPR_RUN" "$T/m_$q.mpk" -t 0 -n 120 --low-ram >"$T/rl_$q" 2>/dev/null || fail "mipr-run --low-ram $q"
  cmp -s "$T/r_$q" "$T/rl_$q" || fail "$q: --low-ram generates different text"
done
[ "$(cat "$T/r_f32")" = "$want" ] || fail "mipr-run on the f32 .mpk differs from mipr generate on the .bin"
[ "$(cat "$T/r_f16")" = "$want" ] || fail "mipr-run on the f16 .mpk differs from the f32 text"
grep -qE "tok/s.*peak RSS [0-9.]+ MiB" "$T/rerr_f32" || fail "mipr-run prints no speed/memory line: $(cat "$T/rerr_f32")"
# the table of mipr verify
"$MIPR" verify "$T/m_q4.mpk" >"$T/table" || fail "verify q4"
grep -qE "blk\.0\.ffn_down\.weight +q4_0 +64 x 172" "$T/table" || fail "verify table lacks ffn_down: $(head -20 "$T/table")"
grep -qE "token_embd\.weight +q8_0" "$T/table" || fail "q4 pack should keep embeddings q8_0"
# mipr generate and perplexity read .mpk too; raw packs work the same
"$MIPR" pack "$BIN" -z "$TOK" -o "$T/raw.mpk" --codec raw -q 2>/dev/null || fail "pack --codec raw"
[ "$("$MIPR_RUN" "$T/raw.mpk" -t 0 -n 120 2>/dev/null)" = "$want" ] || fail "raw pack text differs"
[ "$("$MIPR" generate "$T/m_f32.mpk" -t 0 -n 120 2>/dev/null)" = "$want" ] || fail "mipr generate on .mpk differs"
# unpack: GGUF back, same text (f32), q8 stays q8_0 where GGUF allows
"$MIPR" unpack "$T/m_f32.mpk" -o "$T/back.gguf" 2>/dev/null || fail "unpack f32"
[ "$("$MIPR" generate "$T/back.gguf" -t 0 -n 120 2>/dev/null)" = "$want" ] || fail "unpacked GGUF differs"
"$MIPR" unpack "$T/m_q8.mpk" -o "$T/back8.gguf" 2>"$T/uerr" || fail "unpack q8: $(cat "$T/uerr")"
grep -q "ffn_down.*f16" "$T/uerr" || fail "unpack q8 does not report 172-wide rows becoming f16: $(cat "$T/uerr")"
[ "$("$MIPR" generate "$T/back8.gguf" -t 0 -n 120 2>/dev/null)" != "" ] || fail "unpacked q8 GGUF does not run"
# determinism
"$MIPR" pack "$BIN" -z "$TOK" -o "$T/again.mpk" --quant q4 -q 2>/dev/null
cmp -s "$T/again.mpk" "$T/m_q4.mpk" || fail "pack is not deterministic"
# damage: a flipped byte and a truncation are clear errors, exit 1, never a signal
size=$(stat -c %s "$T/m_q8.mpk")
for at in 3 30 100 $((size / 3)) $((size / 2)) $((size - 30)); do
  cp "$T/m_q8.mpk" "$T/bad.mpk"
  printf '\x55' | dd of="$T/bad.mpk" bs=1 seek=$at conv=notrunc 2>/dev/null
  cmp -s "$T/bad.mpk" "$T/m_q8.mpk" && printf '\xAA' | dd of="$T/bad.mpk" bs=1 seek=$at conv=notrunc 2>/dev/null
  expect 1 "bad.mpk" -- "$MIPR" verify "$T/bad.mpk"
  expect 1 "bad.mpk" -- "$MIPR_RUN" "$T/bad.mpk" -n 8
done
head -c $((size / 2)) "$T/m_q8.mpk" >"$T/half.mpk"
expect 1 "half.mpk.*truncated" -- "$MIPR_RUN" "$T/half.mpk" -n 8
expect 1 "nope.mpk" -- "$MIPR_RUN" "$T/nope.mpk"
expect 1 "not an .mpk" -- "$MIPR" verify "$BIN"
# usage errors
expect 2 "quant" -- "$MIPR" pack "$BIN" -z "$TOK" -o "$T/x.mpk" --quant q3
expect 2 "level" -- "$MIPR" pack "$BIN" -z "$TOK" -o "$T/x.mpk" --level 40
expect 2 "missing -o" -- "$MIPR" pack "$BIN" -z "$TOK"
expect 2 "unknown option" -- "$MIPR_RUN" "$T/m_f32.mpk" --bogus 1
expect 2 "bad value" -- "$MIPR_RUN" "$T/m_f32.mpk" -n -3
expect 0 "" -- "$MIPR_RUN" --help
# a failed pack keeps the old file and leaves no temporary
echo "precious" >"$T/keep.mpk"
expect 1 "" -- "$MIPR" pack "$T/nope.bin" -z "$TOK" -o "$T/keep.mpk"
[ "$(cat "$T/keep.mpk")" = "precious" ] || fail "a failed pack touched the output"
ls -a "$T" | grep -q "\.tmp\." && fail "temporary file left behind: $(ls -a "$T")"
finish
