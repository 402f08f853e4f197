# mipr generate reproduces llama2.c's published greedy outputs, from .bin and from GGUF.
. "$(dirname "$0")/../cli_lib.sh"
want=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(next(o["expected_stdout"] for o in d["stories260K_greedy_text"] if o["id"]=="llama2c_test_all_n200"))' "$D/oracles/oracles.json")

"$MIPR" generate "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" -t 0 -n 200 >"$T/a" 2>"$T/a.err" || fail "generate .bin: $(cat "$T/a.err")"
[ "$(cat "$T/a")" = "$want" ] || fail "generate .bin differs from oracle llama2c_test_all_n200: $(head -c 300 "$T/a")"
grep -q "tok/s" "$T/a.err" || fail "no statistics on stderr"

"$MIPR" generate "$D/stories260K/stories260K.gguf" -t 0 -n 200 >"$T/b" 2>"$T/b.err" || fail "generate .gguf: $(cat "$T/b.err")"
[ "$(cat "$T/b")" = "$want" ] || fail "generate .gguf differs from the oracle"

# sampling is seeded: same seed, same text
"$MIPR" generate "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" -t 0.8 --seed 7 -n 60 >"$T/s1" 2>/dev/null
"$MIPR" generate "$D/stories260K/stories260K.bin" -z "$D/stories260K/tok512.bin" -t 0.8 --seed 7 -n 60 >"$T/s2" 2>/dev/null
cmp -s "$T/s1" "$T/s2" || fail "same seed gave different text"
[ -s "$T/s1" ] || fail "sampled text is empty"

# a prompt is printed, then continued
"$MIPR" generate "$D/babyllama-tok105/model5000.bin" -z "$D/babyllama-tok105/tok105.bin" -p "Once upon a time" -t 0 -n 80 >"$T/c" 2>/dev/null || fail "babyllama generate"
grep -q "^Once upon a time, there was a little girl" "$T/c" || fail "babyllama text: $(cat "$T/c")"
finish
