#!/usr/bin/env bash
# The .mpk benchmark: sizes per encoding next to GGUF, byte-plane gain, load time, peak
# memory while generating (decoded at load and low-RAM), the perplexity cost of q8/q4 on
# real text, and mipr-run's prefill/decode speed against llama.cpp on the same weights.
#
# usage: benchmarks/mpk.sh [--build DIR] [--out DIR] [--threads N] [--llama-bench PATH]
#                          [--quick]
#   --build        a host build with mipr, mipr-run and bench_engine (default build/host)
#   --out          where mpk.json and mpk.md go (default DIR/bench-mpk); the committed
#                  table is docs/results/mpk.md, made with --out docs/results
#   --llama-bench  llama.cpp's llama-bench, built elsewhere (never by this repo): adds the
#                  comparison on the same GGUF bytes (mipr unpack of each .mpk)
#   --quick        stories260K only (seconds; CI smoke use)
# Speed figures are one run on whatever else the machine is doing: compare ratios measured
# in the same run, not absolute numbers between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/host out= threads=2 llama_bench= quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --llama-bench) llama_bench=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mpk.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
out=${out:-$build/bench-mpk}
MIPR=$build/tools/mipr RUN=$build/tools/mipr-run ENGINE=$build/benchmarks/bench_engine
for b in "$MIPR" "$RUN" "$ENGINE"; do
  [ -x "$b" ] || { echo "mpk.sh: $b not built (cmake --build --preset host)" >&2; exit 1; }
done
D=${MIPR_TEST_DATA:-../shared/data}
[ -f "$D/stories260K/stories260K.bin" ] || { echo "mpk.sh: test data missing in $D (MIPR_TEST_DATA)" >&2; exit 1; }
mkdir -p "$out"
W=$(mktemp -d "${TMPDIR:-/tmp}/mpk-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
json="$W/rows.jsonl"; : >"$json"
size() { stat -c %s "$1"; }
row() { echo "$1" >>"$json"; }

# field NAME FILE: a number after "NAME " in mipr-run's statistics line
field() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" "$2" | head -1; }

echo "== stories260K (real weights): sizes, byte planes, perplexity" >&2
BIN=$D/stories260K/stories260K.bin TOK=$D/stories260K/tok512.bin
VAL=$D/text/tinystories/tinystories_val.txt
[ -f "$VAL" ] || VAL=$(ls "$D"/text/tinystories/*val* | head -1)
for t in f32 f16 q8_0 q4_0; do
  "$MIPR" convert "$BIN" -z "$TOK" -o "$W/s_$t.gguf" --type $t 2>/dev/null
  row "{\"model\":\"stories260K\",\"file\":\"gguf\",\"encoding\":\"$t\",\"bytes\":$(size "$W/s_$t.gguf")}"
done
ppl() { "$MIPR" perplexity "$1" --text "$VAL" --window 256 --max-windows 64 --json 2>/dev/null |
        sed -n 's/.*"perplexity": *\([0-9.]*\).*/\1/p' | head -1; }
for q in f32 f16 bf16 q8 q4; do
  for planes in auto off; do
    "$MIPR" pack "$BIN" -z "$TOK" -o "$W/s_${q}_$planes.mpk" --quant $q --planes $planes -q 2>/dev/null
  done
  "$MIPR" pack "$BIN" -z "$TOK" -o "$W/s_${q}_raw.mpk" --quant $q --codec raw -q 2>/dev/null
  p=$(ppl "$W/s_${q}_auto.mpk")
  "$RUN" "$W/s_${q}_auto.mpk" -t 0 -n 200 >/dev/null 2>"$W/run"
  row "{\"model\":\"stories260K\",\"file\":\"mpk\",\"encoding\":\"$q\",\"bytes\":$(size "$W/s_${q}_auto.mpk"),\"bytes_no_planes\":$(size "$W/s_${q}_off.mpk"),\"bytes_raw\":$(size "$W/s_${q}_raw.mpk"),\"perplexity\":$p,\"load_s\":$(field load "$W/run"),\"peak_rss_mib\":$(field "peak RSS" "$W/run")}"
done

if [ $quick = 0 ]; then
  echo "== SmolLM2-135M shape (random weights: speed and memory only)" >&2
  "$ENGINE" --shape smollm2 --type f32 --prefill 1 --decode 1 --gguf "$W/m_f32.gguf" >/dev/null
  for q in f32 q8 q4; do
    "$MIPR" pack "$W/m_f32.gguf" -o "$W/m_$q.mpk" --quant $q -q 2>/dev/null
    "$MIPR" unpack "$W/m_$q.mpk" -o "$W/u_$q.gguf" 2>/dev/null  # the same bytes for llama.cpp
    prompt=$(head -c 510 /dev/zero | tr '\0' x)                    # 512 tokens with BOS
    "$RUN" "$W/m_$q.mpk" -t 0 -p "$prompt" -n 513 --threads "$threads" >/dev/null 2>"$W/pre"
    "$RUN" "$W/m_$q.mpk" -t 0 -n 129 --threads "$threads" >/dev/null 2>"$W/dec"
    "$RUN" "$W/m_$q.mpk" -t 0 -n 64 --threads "$threads" --low-ram >/dev/null 2>"$W/low"
    "$RUN" "$W/m_$q.mpk" -t 0 -n 64 --threads "$threads" >/dev/null 2>"$W/full"
    pre=$(sed -n 's/.*prompt [0-9]* tokens \([0-9.]*\) tok.*/\1/p' "$W/pre")
    dec=$(sed -n 's/.*generated [0-9]* tokens \([0-9.]*\) tok.*/\1/p' "$W/dec")
    lowdec=$(sed -n 's/.*generated [0-9]* tokens \([0-9.]*\) tok.*/\1/p' "$W/low")
    lp=null ld=null
    if [ -n "$llama_bench" ]; then
      "$llama_bench" -m "$W/u_$q.gguf" -p 512 -n 128 -t "$threads" -r 2 -o json >"$W/lb.json" 2>/dev/null
      lp=$(tr -d '\n ' <"$W/lb.json" | grep -o '"n_prompt":512,"n_gen":0[^}]*"avg_ts":[0-9.]*' | sed 's/.*"avg_ts"://')
      ld=$(tr -d '\n ' <"$W/lb.json" | grep -o '"n_prompt":0,"n_gen":128[^}]*"avg_ts":[0-9.]*' | sed 's/.*"avg_ts"://')
    fi
    # KV cache of 64 positions: layers x 64 x kv_dim x (K, V) x 4 bytes
    kv=$((30 * 64 * 192 * 2 * 4))
    row "{\"model\":\"smollm2-135m-random\",\"file\":\"mpk\",\"encoding\":\"$q\",\"bytes\":$(size "$W/m_$q.mpk"),\"gguf_bytes\":$(size "$W/u_$q.gguf"),\"load_s\":$(field load "$W/full"),\"load_low_s\":$(field load "$W/low"),\"peak_rss_mib\":$(field "peak RSS" "$W/full"),\"peak_rss_low_mib\":$(field "peak RSS" "$W/low"),\"kv_bytes\":$kv,\"prefill_tps\":$pre,\"decode_tps\":$dec,\"decode_low_tps\":$lowdec,\"llama_prefill_tps\":${lp:-null},\"llama_decode_tps\":${ld:-null},\"threads\":$threads}"
  done
  for t in f16 q8_0; do
    "$MIPR" convert "$W/m_f32.gguf" -o "$W/m_$t.gguf" --type $t 2>/dev/null
    row "{\"model\":\"smollm2-135m-random\",\"file\":\"gguf\",\"encoding\":\"$t\",\"bytes\":$(size "$W/m_$t.gguf")}"
  done
  row "{\"model\":\"smollm2-135m-random\",\"file\":\"gguf\",\"encoding\":\"f32\",\"bytes\":$(size "$W/m_f32.gguf")}"
  # what the process costs before any model: mipr-run on the 1 MB stories260K, raw f32
  "$RUN" "$W/s_f32_raw.mpk" -t 0 -n 8 >/dev/null 2>"$W/base"
  row "{\"model\":\"baseline\",\"file\":\"mpk\",\"encoding\":\"f32-raw-stories260K\",\"bytes\":$(size "$W/s_f32_raw.mpk"),\"peak_rss_mib\":$(field "peak RSS" "$W/base")}"
fi

{ echo "["; sed '$!s/$/,/' "$json"; echo "]"; } >"$out/mpk.json"
bash benchmarks/mpk_table.sh "$out/mpk.json" >"$out/mpk.md"
echo "wrote $out/mpk.json and $out/mpk.md" >&2
