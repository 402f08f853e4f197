# Hostile and broken model files: a clear message naming the file, exit 1, never a signal.
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"; GG="$D/stories260K/stories260K.gguf"

# truncated files
head -c 100000 "$BIN" >"$T/trunc.bin"
expect 1 "trunc.bin: .*(truncated|bytes)" -- "$MIPR" generate "$T/trunc.bin" -z "$TOK" -n 5
head -c 5000 "$GG" >"$T/trunc.gguf"
expect 1 "trunc.gguf" -- "$MIPR" generate "$T/trunc.gguf" -n 5
head -c 3000 "$TOK" >"$T/trunc_tok.bin"
expect 1 "trunc_tok.bin" -- "$MIPR" generate "$BIN" -z "$T/trunc_tok.bin" -n 5
: >"$T/empty.bin"
expect 1 "empty.bin" -- "$MIPR" info "$T/empty.bin"

# flipped header fields: dim, n_layers, vocab
python3 - "$BIN" "$T" <<'PY'
import struct, sys
src, t = sys.argv[1], sys.argv[2]
data = bytearray(open(src, 'rb').read())
for name, off, val in [("dim", 0, 65), ("layers", 8, 6), ("vocab", 20, 700), ("huge", 0, 0x7fffffff),
                       ("neg", 4, -5), ("heads", 12, 7)]:
    d = bytearray(data); struct.pack_into('<i', d, off, val)
    open(f"{t}/flip_{name}.bin", 'wb').write(d)
g = bytearray(open(sys.argv[1].replace('.bin', '.gguf'), 'rb').read())
bad = bytearray(g); bad[0:4] = b'GGUX'; open(f"{t}/magic.gguf", 'wb').write(bad)
bad = bytearray(g); struct.pack_into('<Q', bad, 8, 1 << 60); open(f"{t}/ntensors.gguf", 'wb').write(bad)
bad = bytearray(g); struct.pack_into('<Q', bad, 16, 1 << 60); open(f"{t}/nkv.gguf", 'wb').write(bad)
PY
for f in dim layers vocab huge neg heads; do
  expect 1 "flip_$f.bin" -- "$MIPR" generate "$T/flip_$f.bin" -z "$TOK" -n 5
done
for f in magic ntensors nkv; do
  expect 1 "$f.gguf" -- "$MIPR" info "$T/$f.gguf"
done

# a tokenizer that does not match the model (105 tokens vs 512)
expect 1 "tok105.bin.*(105|512)" -- "$MIPR" generate "$BIN" -z "$D/babyllama-tok105/tok105.bin" -n 5
expect 1 "tok512.bin.*(105|512)" -- "$MIPR" generate "$D/babyllama-tok105/model5000.bin" -z "$TOK" -n 5
# an output whose folder is missing is named with what is wrong, before any work
for cmd in "pack $GG -o $T/no/such/dir/m.mpk" "convert $GG -o $T/no/such/dir/m.gguf" \
           "calibrate $GG --text $D/text/tinystories/validation_100.txt -o $T/no/such/dir/c.mcal"; do
  expect 1 "no/such/dir/.*: the folder it would go in does not exist" -- "$MIPR" $cmd
done
[ ! -e "$T/no" ] || fail "a missing output folder was created"
# a bad choice lists the choices
expect 2 "unknown 'foo' \\(expected auto, mi, magnitude, activation, wanda-sp, flap or random\\)" -- \
  "$MIPR" prune "$GG" --calib "$T/none.mcal" --ratio 0.2 --criterion foo -o "$T/x.gguf"
finish
