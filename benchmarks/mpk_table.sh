#!/usr/bin/env bash
# Markdown tables from benchmarks/mpk.sh's mpk.json (one object per line).
# usage: benchmarks/mpk_table.sh mpk.json > mpk.md
set -euo pipefail
J=$1
get() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[0-9.eE+-]*\|null\).*/\1/p" <<<"$2" | tr -d '"'; }
rows() { grep "\"model\":\"$1\"" "$J" | grep "\"file\":\"$2\"" || true; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "null" || b == "null" || b == 0) print "–"; else printf "%.2f×", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f %%", (a / b - 1) * 100 }'; }

echo "# .mpk: sizes, memory and speed"
echo
echo "Produced by \`benchmarks/mpk.sh\` (see its header for options); do not edit by hand."
echo
echo "## stories260K (real weights)"
echo
echo "Sizes in bytes. *no planes*: the same pack with \`--planes off\`; *raw*: \`--codec raw\`"
echo "(no compression, what firmware links into flash). Perplexity: \`tinystories_val.txt\`,"
echo "64 windows of 256 tokens. Peak RSS: \`mipr-run -n 200\`, the whole process."
echo
echo "| encoding | .mpk | no planes | plane gain | raw | GGUF of the same type | perplexity | vs f32 | load (s) | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
f32ppl=$(get perplexity "$(rows stories260K mpk | grep '"encoding":"f32"')")
while read -r r; do
  [ -n "$r" ] || continue
  e=$(get encoding "$r"); b=$(get bytes "$r"); np=$(get bytes_no_planes "$r"); p=$(get perplexity "$r")
  g=$(rows stories260K gguf | grep "\"encoding\":\"${e/q8/q8_0}\"" | grep -v q8_0_0 || true)
  [ "$e" = q4 ] && g=$(rows stories260K gguf | grep '"encoding":"q4_0"' || true)
  gb=$([ -n "$g" ] && get bytes "$g" || echo "–")
  echo "| $e | $b | $np | $(pct "$np" "$b" | tr -d +) | $(get bytes_raw "$r") | $gb | $p | $(pct "$p" "$f32ppl") | $(get load_s "$r") | $(get peak_rss_mib "$r") |"
done <<<"$(rows stories260K mpk)"

if [ -n "$(rows smollm2-135m-random mpk)" ]; then
  echo
  echo "## SmolLM2-135M shape, random weights (speed and memory only)"
  echo
  echo "Random weights compress like noise: sizes here show quantization, not zstd. GGUF of"
  echo "the same weights:"
  for t in f32 f16 q8_0; do
    echo "GGUF $t $(get bytes "$(rows smollm2-135m-random gguf | grep "\"encoding\":\"$t\"")") bytes;"
  done | tr '\n' ' '
  echo
  echo
  base=$(get peak_rss_mib "$(rows baseline mpk)")
  echo "Memory while generating 64 tokens (\`mipr-run -n 64\`, KV cache of 64 positions). The"
  echo "low-RAM goal is file + KV cache + under 1 MiB; *overhead* is peak RSS minus those two"
  echo "and minus the process's own baseline (${base} MiB: mipr-run with the 1 MB stories260K,"
  echo "i.e. code, libc, libzstd, XNNPACK's mapped pages). What remains is the 49,152-token"
  echo "tokenizer (12 bytes per token, a piece hash of 5 bytes a slot at most 3/4 full, and the"
  echo "piece bytes: under 1 MiB allocated, which the 512-token baseline hardly has), the"
  echo "decoder's chunk buffers (2 x 256 KiB when tensors are compressed, as f32's are: q8 and"
  echo "q4 tensors are stored raw and used in place) and the engine's activations (batches of"
  echo "8 in low-RAM mode)."
  echo
  echo "| encoding | .mpk bytes | load (s) | peak RSS (MiB) | load low-RAM (s) | peak RSS low-RAM (MiB) | file + KV (MiB) | overhead low-RAM (MiB) |"
  echo "|---|---|---|---|---|---|---|---|"
  while read -r r; do
    b=$(get bytes "$r"); kv=$(get kv_bytes "$r"); low=$(get peak_rss_low_mib "$r")
    fk=$(mib $((b + kv)))
    over=$(awk -v l="$low" -v f="$fk" -v z="$base" 'BEGIN { printf "%.2f", l - f - z }')
    echo "| $(get encoding "$r") | $b | $(get load_s "$r") | $(get peak_rss_mib "$r") | $(get load_low_s "$r") | $low | $fk | $over |"
  done <<<"$(rows smollm2-135m-random mpk)"
  echo
  r1=$(rows smollm2-135m-random mpk | head -1)
  echo "Speed, $(get threads "$r1") threads: prefill of a 512-token prompt, decode of 128 tokens from an"
  echo "empty context (llama-bench's pp512 and tg128). llama.cpp runs \`mipr unpack\` of each"
  echo ".mpk: the very same weight bytes (q4: Q4_0 layers, Q8_0 embedding/output)."
  echo
  echo "| encoding | mipr-run prefill tok/s | llama.cpp | ratio | mipr-run decode tok/s | llama.cpp | ratio | decode low-RAM tok/s |"
  echo "|---|---|---|---|---|---|---|---|"
  while read -r r; do
    p=$(get prefill_tps "$r"); lp=$(get llama_prefill_tps "$r"); d=$(get decode_tps "$r"); ld=$(get llama_decode_tps "$r")
    echo "| $(get encoding "$r") | $p | ${lp/null/–} | $(ratio "$p" "$lp") | $d | ${ld/null/–} | $(ratio "$d" "$ld") | $(get decode_low_tps "$r") |"
  done <<<"$(rows smollm2-135m-random mpk)"
fi
