# Every command has --help (exit 0); usage errors exit 2 with a hint; bad files exit 1.
. "$(dirname "$0")/../cli_lib.sh"
for c in info generate perplexity convert; do
  expect 0 "" -- "$MIPR" $c --help
  grep -q "usage: mipr $c" "$T/out" || fail "$c --help prints no usage"
  expect 2 "Try 'mipr $c --help'" -- "$MIPR" $c --bogus-option
done
expect 0 "" -- "$MIPR" --help
expect 2 "unknown command" -- "$MIPR" frobnicate
expect 2 "missing MODEL" -- "$MIPR" generate
expect 2 "--steps expects" -- "$MIPR" generate x.bin -n -3
expect 2 "--temperature expects" -- "$MIPR" generate x.bin -t abc
expect 2 "missing --text" -- "$MIPR" perplexity "$D/stories260K/stories260K.gguf"
expect 2 "--type expects" -- "$MIPR" convert "$D/stories260K/stories260K.gguf" -o "$T/x.gguf" --type q3
expect 1 "nope.bin: cannot open" -- "$MIPR" info "$T/nope.bin"
expect 1 "tokenizer" -- "$MIPR" generate "$D/stories260K/stories260K.bin" -n 5
expect 0 "" -- "$MIPR" info "$D/stories260K/stories260K.gguf"
grep -q "ffn widths      172 172 172 172 172" "$T/out" || fail "info: widths missing"
finish
