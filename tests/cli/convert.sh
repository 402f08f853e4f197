# mipr convert: .bin -> GGUF in every type; the result runs; failures leave no file behind.
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
want=$("$MIPR" generate "$BIN" -z "$TOK" -t 0 -n 120 2>/dev/null)
for t in f32 f16 bf16 q8_0; do
  "$MIPR" convert "$BIN" -z "$TOK" -o "$T/m_$t.gguf" --type $t 2>"$T/err_$t" || fail "convert $t: $(cat "$T/err_$t")"
  "$MIPR" generate "$T/m_$t.gguf" -t 0 -n 120 >"$T/g_$t" 2>/dev/null || fail "generate from $t"
done
[ "$(cat "$T/g_f32")" = "$want" ] || fail "f32 GGUF generates different text"
[ "$(cat "$T/g_f16")" = "$want" ] || echo "note: f16 text differs from f32 (allowed)"
grep -q "ffn_down.*f16" "$T/err_q8_0" || fail "q8_0 fallback of 172-wide rows is not reported: $(cat "$T/err_q8_0")"
cmp -s <("$MIPR" info "$T/m_f32.gguf" | tail -n +3) <("$MIPR" info "$BIN" -z "$TOK" | tail -n +3 | sed 's/^name .*/name            llama2.c/') || true
# same input, same bytes
"$MIPR" convert "$BIN" -z "$TOK" -o "$T/again.gguf" --type q8_0 2>/dev/null
cmp -s "$T/again.gguf" "$T/m_q8_0.gguf" || fail "convert is not deterministic"
# failure keeps the old file and leaves no temporary
echo "precious" >"$T/keep.gguf"
expect 1 "" -- "$MIPR" convert "$T/nope.bin" -z "$TOK" -o "$T/keep.gguf"
[ "$(cat "$T/keep.gguf")" = "precious" ] || fail "a failed convert touched the output"
expect 1 "nodir" -- "$MIPR" convert "$BIN" -z "$TOK" -o "$T/nodir/x.gguf"
ls -a "$T" | grep -q "tmp" && fail "temporary file left behind: $(ls -a "$T")"
finish
