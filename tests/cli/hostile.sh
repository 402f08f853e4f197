# Hostile inputs and outputs (issue 17): each must be refused with exit 1 and a message
# naming the file, leave no temporary, and change no input and no special file.
. "$(dirname "$0")/../cli_lib.sh"
H="$(dirname "$0")"
M="$D/stories260K/stories260K.bin"; Z="$D/stories260K/tok512.bin"; G="$D/stories260K/stories260K.gguf"
TXT="$D/text/tinystories/validation_100.txt"
cp "$M" "$T/m.bin"; cp "$Z" "$T/z.bin"; cp "$G" "$T/g.gguf"; head -c 20000 "$TXT" >"$T/t.txt"
M="$T/m.bin"; Z="$T/z.bin"; G="$T/g.gguf"
mkfifo "$T/fifo"
ln -s fifo "$T/to_fifo"

sums() { (cd "$T" && sha256sum m.bin z.bin g.gguf t.txt c.mcal 2>/dev/null); }
no_temp() {
  local left; left=$(find "$T" -name '.*.tmp.*' | head -3)
  [ -z "$left" ] || { fail "$1: temporaries left: $left"; find "$T" -name '.*.tmp.*' -delete; }
}
# refused PATTERN -- command...: exit 1, stderr matching PATTERN, no temporary left.
refused() { expect 1 "$@"; no_temp "$3 $4 $5"; }

"$MIPR" calibrate "$M" -z "$Z" --text "$T/t.txt" --tokens 3000 --samples 16 --heldout 128 \
  --window 64 -o "$T/c.mcal" 2>"$T/cal.err" || fail "calibrate: $(cat "$T/cal.err")"
sums >"$T/before"

# -- 1, 5: calibration records with a planted flaw behind valid checksums ------------------
P=(prune "$M" -z "$Z" --ratio 0.3 -o "$T/p.gguf" --report "$T/p.json")
for flaw in hold_last hold_big hold_600; do
  python3 "$H/mcal.py" "$T/$flaw.mcal" --flaw "$flaw"
  refused "$flaw.mcal: section HOLD: held-out token [0-9]+ has the id .*outside the model's 512-token" \
    -- "$MIPR" "${P[@]}" --calib "$T/$flaw.mcal" --criterion mi --seeds 1
done
python3 "$H/mcal.py" "$T/hold_neg.mcal" --flaw hold_neg
refused "hold_neg.mcal: section HOLD: held-out token [0-9]+ has the negative id -1" \
  -- "$MIPR" "${P[@]}" --calib "$T/hold_neg.mcal"
for flaw in nan_mean inf_m2 neg_m2 nan_min inf_max nan_sumsq minmax big_mean mean_out big_sumsq; do
  python3 "$H/mcal.py" "$T/$flaw.mcal" --flaw "$flaw"
  refused "$flaw.mcal: section STAT \(layer 4\): .*neuron 86" \
    -- "$MIPR" "${P[@]}" --calib "$T/$flaw.mcal" --criterion magnitude
  refused "$flaw.mcal: section STAT" -- "$MIPR" analyze "$T/$flaw.mcal" --layer 0
done
for flaw in nan_sample inf_sample; do
  python3 "$H/mcal.py" "$T/$flaw.mcal" --flaw "$flaw"
  refused "$flaw.mcal: section SAMP \(layer 4\): sample [0-9]+ of neuron 86 is (nan|inf)" \
    -- "$MIPR" "${P[@]}" --calib "$T/$flaw.mcal" --criterion mi --seeds 1
  refused "$flaw.mcal: section SAMP" -- "$MIPR" analyze "$T/$flaw.mcal" --layer 4
  # checked when the record is opened, also by criteria that never read samples
  refused "$flaw.mcal: section SAMP \(layer 4\)" \
    -- "$MIPR" "${P[@]}" --calib "$T/$flaw.mcal" --criterion magnitude
done
[ ! -e "$T/p.gguf" ] && [ ! -e "$T/p.json" ] || fail "a refused prune wrote an output"
# the clean record of the same generator is accepted: the refusals are the flaws'
python3 "$H/mcal.py" "$T/clean.mcal"
"$MIPR" "${P[@]}" --calib "$T/clean.mcal" --criterion magnitude 2>"$T/err" || fail "clean record: $(cat "$T/err")"
rm -f "$T/p.gguf" "$T/p.json"

# -- 8: records of another model, too few samples -----------------------------------------
python3 "$H/mcal.py" "$T/l4.mcal" --layers 4
refused "l4.mcal: the calibration record has 4 layers, the model 5" \
  -- "$MIPR" "${P[@]}" --calib "$T/l4.mcal"
python3 "$H/mcal.py" "$T/ff.mcal" --ff 171
refused "ff.mcal: layer 0: the calibration record has 171 neurons" -- "$MIPR" "${P[@]}" --calib "$T/ff.mcal"
for n in 0 1; do
  python3 "$H/mcal.py" "$T/s$n.mcal" --samples $n
  refused "s$n.mcal: $n sampled tokens per neuron; --criterion mi needs at least 2" \
    -- "$MIPR" "${P[@]}" --calib "$T/s$n.mcal" --criterion mi
  refused "s$n.mcal: $n sampled tokens per neuron; --criterion auto" -- "$MIPR" "${P[@]}" --calib "$T/s$n.mcal"
  refused "s$n.mcal: layer 0 has 172 neurons and $n samples" -- "$MIPR" analyze "$T/s$n.mcal" --layer 0
done

# -- 8: texts ----------------------------------------------------------------------------
: >"$T/empty.txt"; printf 'Once' >"$T/short.txt"; printf '   \n\n ' >"$T/blank.txt"
# a short or blank text still has tokens to score (BOS, spaces): only calibration needs more
for t in empty short blank; do
  refused "$t.txt: " -- "$MIPR" calibrate "$M" -z "$Z" --text "$T/$t.txt" -o "$T/x.mcal"
done
refused "empty.txt: " -- "$MIPR" perplexity "$M" -z "$Z" --text "$T/empty.txt"
refused "empty.txt: " -- "$MIPR" perplexity "$M" -z "$Z" --text "$T/empty.txt" --doc-sep '<|end|>'
refused "empty.txt: " -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 --criterion magnitude \
  --eval-text "$T/empty.txt" -o "$T/x.gguf"
expect 2 "m.bin: --window 100000 exceeds the model's context of 512" \
  -- "$MIPR" calibrate "$M" -z "$Z" --text "$T/t.txt" --window 100000 -o "$T/x.mcal"
no_temp "calibrate --window"
expect 2 "m.bin: --window 513 exceeds the model's context of 512" \
  -- "$MIPR" perplexity "$M" -z "$Z" --text "$T/t.txt" --window 513
[ ! -e "$T/x.mcal" ] && [ ! -e "$T/x.gguf" ] || fail "a refused command wrote an output"

# -- 2: outputs that are special files (a FIFO, and a link to it) ---------------------------
for out in fifo to_fifo; do
  refused "$out: is a FIFO, not a regular file" -- "$MIPR" pack "$M" -z "$Z" -o "$T/$out"
  refused "$out: is a FIFO" -- "$MIPR" convert "$M" -z "$Z" -o "$T/$out"
  refused "$out: is a FIFO" -- "$MIPR" calibrate "$M" -z "$Z" --text "$T/t.txt" -o "$T/$out"
  refused "$out: is a FIFO" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 -o "$T/$out"
  refused "$out: is a FIFO" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 \
    -o "$T/x.gguf" --report "$T/$out"
done
"$MIPR" pack "$M" -z "$Z" -o "$T/s.mpk" >/dev/null 2>&1 || fail "pack"
refused "fifo: is a FIFO" -- "$MIPR" unpack "$T/s.mpk" -o "$T/fifo"
refused "$T: is a directory" -- "$MIPR" convert "$M" -z "$Z" -o "$T"
[ -p "$T/fifo" ] && [ -L "$T/to_fifo" ] && [ -p "$T/to_fifo" ] || fail "the FIFO was replaced"
[ ! -e "$T/x.gguf" ] || fail "a refused prune wrote its model"

# -- 3: outputs that are an input (same path, a symbolic link, a hard link) -----------------
ln -s m.bin "$T/m_link"; ln "$T/z.bin" "$T/z_hard"
refused "m.bin: is the same file as the input .*m.bin" -- "$MIPR" calibrate "$M" -z "$Z" --text "$T/t.txt" -o "$M"
refused "z_hard: is the same file as the input .*z.bin" -- "$MIPR" calibrate "$M" -z "$Z" --text "$T/t.txt" -o "$T/z_hard"
refused "t.txt: is the same file as the input" -- "$MIPR" calibrate "$M" -z "$Z" --text "$T/t.txt" -o "$T/t.txt"
refused "g.gguf: is the same file as the input" -- "$MIPR" convert "$G" -o "$G" --type f16
refused "m_link: is the same file as the input" -- "$MIPR" convert "$M" -z "$Z" -o "$T/m_link"
refused "m.bin: is the same file as the input" -- "$MIPR" pack "$M" -z "$Z" -o "$M"
refused "z.bin: is the same file as the input" -- "$MIPR" pack "$M" -z "$Z" -o "$Z"
refused "s.mpk: is the same file as the input" -- "$MIPR" unpack "$T/s.mpk" -o "$T/s.mpk"
refused "m.bin: is the same file as the input" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 -o "$M"
refused "c.mcal: is the same file as the input" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 -o "$T/c.mcal"
refused "t.txt: is the same file as the input" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 \
  --eval-text "$T/t.txt" -o "$T/x.gguf" --report "$T/t.txt"
refused "name the same file" -- "$MIPR" prune "$M" -z "$Z" --calib "$T/c.mcal" --ratio 0.3 -o "$T/x.gguf" --report "$T/x.gguf"
sums >"$T/after"
cmp -s "$T/before" "$T/after" || fail "an input changed: $(diff "$T/before" "$T/after")"
[ -L "$T/m_link" ] || fail "the symbolic link was replaced"

# -- 4: NaN and infinite weights -------------------------------------------------------------
python3 "$H/gguf_edit.py" "$G" "$T/nan.gguf" poke blk.2.ffn_down.weight 17 nan
python3 "$H/gguf_edit.py" "$G" "$T/inf.gguf" poke blk.1.attn_q.weight 5 -inf
python3 "$H/gguf_edit.py" "$G" "$T/big.gguf" poke blk.0.ffn_up.weight 3 1e9
for f in nan inf; do
  for ty in q8_0 q4_0 f16 bf16; do
    refused "$f.gguf.tmp|$f.out.gguf: tensor blk\.[12]\.(ffn_down|attn_q)\.weight row 0 column (17|5): the weight is (NaN|infinite)" \
      -- "$MIPR" convert "$T/$f.gguf" -o "$T/$f.out.gguf" --type $ty
  done
  refused "$f.mpk: tensor blk\.[12]\.(ffn_down|attn_q)\.weight row 0 column (17|5)" -- "$MIPR" pack "$T/$f.gguf" -o "$T/$f.mpk" --quant q8
  refused "$f.gguf: the model's log-likelihood is (NaN|infinite)" -- "$MIPR" perplexity "$T/$f.gguf" --text "$T/t.txt" --max-windows 1
  for isa in generic ""; do
    refused "$f.gguf: the model's logits at position 0 are not finite" \
      -- env MIPR_ISA=$isa "$MIPR" generate "$T/$f.gguf" -n 4 -t 0
  done
done
refused "big.out.gguf: tensor blk.0.ffn_up.weight row 0 column 3: the weight 1e\+09 is too large for q8_0" \
  -- "$MIPR" convert "$T/big.gguf" -o "$T/big.out.gguf" --type q8_0
refused "big.out.gguf: .*too large for f16" -- "$MIPR" convert "$T/big.gguf" -o "$T/big.out.gguf" --type f16
ls "$T"/*.out.gguf "$T"/nan.mpk "$T"/inf.mpk >/dev/null 2>&1 && fail "a refused conversion wrote its output"

# -- 6: contradictory GGUF ---------------------------------------------------------------------
python3 "$H/gguf_edit.py" "$G" "$T/b4.gguf" set-u32 llama.block_count 4
refused "b4.gguf: tensor blk.4.attn_q.weight belongs to layer 4, but llama.block_count is 4" \
  -- "$MIPR" generate "$T/b4.gguf" -n 4
python3 "$H/gguf_edit.py" "$G" "$T/b6.gguf" set-u32 llama.block_count 6
refused "b6.gguf: tensor blk.5.attn_norm.weight is missing" -- "$MIPR" info "$T/b6.gguf"
python3 "$H/gguf_edit.py" "$G" "$T/drop.gguf" drop blk.3.ffn_up.weight
refused "drop.gguf: tensor blk.3.ffn_up.weight is missing" -- "$MIPR" info "$T/drop.gguf"
python3 "$H/gguf_edit.py" "$G" "$T/piece.gguf" piece 300 1100
refused "piece.gguf: tokenizer.ggml.tokens\[300\]: .*1100 bytes \(limit 1024\)" -- "$MIPR" info "$T/piece.gguf"

# -- 4 (.mpk): every byte of META, changed, is refused by mipr verify ------------------------
python3 - "$T/s.mpk" "$T/meta" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
d, n = struct.unpack_from('<QI', b, 24)
for i in range(n):
    e = b[d + 48 * i:d + 48 * i + 48]
    if e[:4] == b'META':
        off, size = struct.unpack_from('<QQ', e, 16)
        for k in range(off, off + size):
            c = bytearray(b); c[k] ^= 0x20
            open(f"{sys.argv[2]}.{k}", 'wb').write(c)
        print(size)
PY
n=0
for f in "$T"/meta.*; do
  n=$((n + 1))
  "$MIPR" verify -q "$f" >/dev/null 2>"$T/err" && fail "verify accepted $f"
  grep -q "$(basename "$f"): section META checksum mismatch" "$T/err" || fail "verify: $(cat "$T/err")"
done
[ "$n" -gt 20 ] || fail "only $n META bytes tried"
finish
