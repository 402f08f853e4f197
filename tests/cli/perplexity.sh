# mipr perplexity in both modes, text and JSON output, against a hand-checked invariant:
# the .bin and the GGUF of the same weights give the same numbers.
. "$(dirname "$0")/../cli_lib.sh"
TXT="$D/text/tinystories/validation_100.txt"
"$MIPR" perplexity "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" --text "$TXT" --window 256 --json >"$T/a.json" 2>"$T/a.err" || fail "perplexity .bin: $(cat "$T/a.err")"
"$MIPR" perplexity "$D/stories260K/stories260K.gguf" --text "$TXT" --window 256 --json >"$T/b.json" 2>"$T/b.err" || fail "perplexity .gguf: $(cat "$T/b.err")"
python3 - "$T/a.json" "$T/b.json" <<'PY' || fail "perplexity JSON checks"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in ("tokens", "bytes", "mean_nll", "perplexity", "bits_per_byte"):
    assert a[k] == b[k], (k, a[k], b[k])
assert a["mode"] == "stream" and a["window"] == 256
assert 1.0 < a["perplexity"] < 20.0, a          # a TinyStories model on TinyStories text
assert 0.2 < a["bits_per_byte"] < 3.0, a
assert a["tokens"] > 10000 and a["bytes"] > 70000, a
print("stream:", a)
PY
"$MIPR" perplexity "$D/stories260K/stories260K.gguf" --text "$TXT" --window 512 --doc-sep '<|endoftext|>' --json >"$T/c.json" 2>"$T/c.err" || fail "doc mode: $(cat "$T/c.err")"
python3 - "$T/c.json" <<'PY' || fail "doc-mode JSON checks"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["mode"] == "documents" and 95 <= c["windows"] <= 101, c
print("documents:", c)
PY
"$MIPR" perplexity "$D/stories260K/stories260K.gguf" --text "$TXT" --window 64 --max-windows 3 >"$T/d" 2>/dev/null || fail "text output"
grep -q "^perplexity " "$T/d" && grep -q "^bits per byte " "$T/d" || fail "text report: $(cat "$T/d")"
expect 1 "missing.txt" -- "$MIPR" perplexity "$D/stories260K/stories260K.gguf" --text "$T/missing.txt"
finish
