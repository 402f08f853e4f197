# mipr calibrate: writes a well-formed .mcal (checked here against docs/CALIB_FORMAT.md with an
# independent reader), is deterministic, and fails with a message and no file left behind.
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
TXT="$D/text/tinystories/tinystories_train_head.txt"
CAL=("$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT")

"${CAL[@]}" --tokens 8000 --samples 128 -o "$T/c.mcal" 2>"$T/c.err" || fail "calibrate: $(cat "$T/c.err")"
[ -s "$T/c.mcal" ] || fail "no calibration file written"
grep -qE "calibrated 8000 tokens \(window 256\) over 5 layers, 128 samples" "$T/c.err" || fail "summary: $(cat "$T/c.err")"
grep -qE "tokens/s; wrote .*c\.mcal \([0-9]+ bytes\)" "$T/c.err" || fail "summary: $(cat "$T/c.err")"
python3 - "$T/c.mcal" <<'PY' || fail "the file does not follow docs/CALIB_FORMAT.md"
import struct, sys, zlib
f = open(sys.argv[1], 'rb').read()
assert f[:8] == b'MIPRCAL\0', f[:8]
ver, nl, dim, window, ns, res, tokens, seed = struct.unpack_from('<6I2Q', f, 8)
assert (ver, nl, dim, window, ns, res, tokens, seed) == (1, 5, 64, 256, 128, 0, 8000, 0), (ver, nl, dim, window, ns, tokens, seed)
off = 48
dff = struct.unpack_from('<%dI' % nl, f, off); off += 4 * nl
assert dff == (172,) * 5, dff
names = []
for _ in range(2):
    (n,) = struct.unpack_from('<I', f, off); names.append(f[off + 4:off + 4 + n].decode()); off += 4 + n
assert names[0].endswith('stories260K.bin') and names[1].endswith('tinystories_train_head.txt'), names
assert struct.unpack_from('<I', f, off)[0] == zlib.crc32(f[:off]); off += 4
seen = {}
while off < len(f):
    tag, layer, raw, stored, zero, crc = struct.unpack_from('<2I2Q2I', f, off)
    assert zero == 0 and crc == zlib.crc32(f[off + 32:off + 32 + stored], zlib.crc32(f[off:off + 28])), off
    frame = f[off + 32:off + 32 + stored]
    assert frame[:4] == b'\x28\xb5\x2f\xfd' and frame[4] & 4, 'zstd frame with checksum flag'
    seen[(struct.pack('<I', tag).decode(), layer)] = raw
    off += 32 + stored
assert off == len(f)
assert seen[('SPOS', 0)] == 8 * 128
for l in range(5):
    assert seen[('STAT', l)] == 8 + 40 * 172 and seen[('SAMP', l)] == 4 * 172 * 128, seen
print("format ok:", len(f), "bytes,", len(seen), "sections")
PY

# same arguments, same bytes; another seed, another file
"${CAL[@]}" --tokens 8000 --samples 128 --threads 1 -o "$T/again.mcal" 2>/dev/null || fail "second run"
cmp -s "$T/c.mcal" "$T/again.mcal" || fail "calibrate is not deterministic"
"${CAL[@]}" --tokens 1000 --samples 16 --seed 5 --window 64 --level 19 -o "$T/s5.mcal" 2>/dev/null || fail "seed 5 run"
grep -qE "calibrated 1000 tokens \(window 64\)" <("${CAL[@]}" --tokens 1000 --samples 16 --window 64 -o "$T/s0.mcal" 2>&1) || fail "window/tokens not honoured"
cmp -s "$T/s0.mcal" "$T/s5.mcal" && fail "different seeds give the same file"

expect 0 "" -- "$MIPR" calibrate --help
grep -q "usage: mipr calibrate" "$T/out" || fail "--help prints no usage"
grep -q -- "--samples N" "$T/out" || fail "--help does not list --samples"

# usage errors (exit 2) and failures (exit 1) leave no output
expect 2 "missing --text" -- "$MIPR" calibrate "$BIN" -z "$TOK" -o "$T/x.mcal"
expect 2 "missing -o" -- "$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT"
expect 2 "missing MODEL" -- "$MIPR" calibrate --text "$TXT" -o "$T/x.mcal"
expect 2 "samples expects" -- "${CAL[@]}" --samples 0 -o "$T/x.mcal"
expect 2 "window expects" -- "${CAL[@]}" --window 1 -o "$T/x.mcal"
expect 2 "level expects" -- "${CAL[@]}" --level 30 -o "$T/x.mcal"
expect 2 "exceeds the model's context of 512" -- "${CAL[@]}" --window 1024 -o "$T/x.mcal"
expect 1 "too short: 100 tokens, asked for 512 samples" -- "${CAL[@]}" --tokens 100 -o "$T/x.mcal"
expect 1 "missing.txt" -- "$MIPR" calibrate "$BIN" -z "$TOK" --text "$T/missing.txt" -o "$T/x.mcal"
expect 1 "nodir/x.mcal" -- "${CAL[@]}" --tokens 500 --samples 8 -o "$T/nodir/x.mcal"
if [ "$(id -u)" != 0 ]; then  # root writes anywhere
  mkdir "$T/ro" && chmod 555 "$T/ro"
  expect 1 "ro/x.mcal" -- "${CAL[@]}" --tokens 500 --samples 8 -o "$T/ro/x.mcal"
  [ -z "$(ls -A "$T/ro")" ] || fail "files left in a read-only directory"
fi
[ -e "$T/x.mcal" ] && fail "a failed run left $T/x.mcal"
ls -a "$T" | grep -q "tmp" && fail "temporary file left behind: $(ls -a "$T")"
finish
