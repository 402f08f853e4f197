#!/usr/bin/env bash
# The benchmark suite in one command: criteria on real models, then performance on random
# weights of real shapes, then the record (RESULTS.md, plots, perf.json) and its check.
#
#   bash benchmarks/run.sh [--quick] [--out DIR] [--no-build] [--jobs N] [--skip-criteria]
#                          [--model PATH[:TOKENIZER[:NAME]]] ...
#
# DIR (default: docs) receives RESULTS.md and results/{criteria,perf,plots}/; files of an
# earlier run there are replaced. --quick (CI's smoke run, a few minutes on 2 cores): two
# ratios, two seeds, 1024 tokens per evaluation set with small windows, 128 calibration
# samples and 512 held-out tokens (the policy's tournament), small perf shapes.
# --model adds a model (GGUF, or llama2.c with its tokenizer) to the criteria runs.
# --skip-criteria keeps DIR's criteria results and reruns the rest (perf, the record).
# Test data: MIPR_TEST_DATA (default ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full out=docs build=1 jobs=2 skip_criteria=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --no-build) build=0 ;;
    --skip-criteria) skip_criteria=1 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --model) extra+=("${2:?--model needs a path}"); shift ;;
    *) echo "usage: bash benchmarks/run.sh [--quick] [--out DIR] [--no-build] [--jobs N]" \
            "[--model PATH[:TOKENIZER[:NAME]]]..." >&2; exit 2 ;;
  esac
  shift
done

data=${MIPR_TEST_DATA:-../shared/data}
text=$data/text
for f in stories260K/stories260K.bin stories260K/tok512.bin babyllama-tok105/model5000.bin \
         babyllama-tok105/tok105.bin tinystories-656k/config.json \
         tinystories-656k/model.safetensors text/tinystories/tinystories_train_head.txt \
         text/tinystories/tinystories_val.txt text/wikitext-2/wiki.test.raw; do
  [ -f "$data/$f" ] || { echo "run.sh: $data/$f is missing: set MIPR_TEST_DATA to the test" \
                              "data folder (see README, \"Test data\")" >&2; exit 1; }
done

if [ $build = 1 ]; then
  cmake --preset host >/dev/null
  cmake --build --preset host
fi
bin=build/host/benchmarks
for b in bench_criteria bench_kernels bench_mi bench_engine bench_tokenizer bench_report; do
  [ -x "$bin/$b" ] || { echo "run.sh: $bin/$b is missing: build the host preset" >&2; exit 1; }
done

res=$out/results
mkdir -p "$res/criteria" "$res/perf" "$res/plots"
previous_criteria_seconds=$(sed -n 's/^criteria_seconds //p' "$res/run.txt" 2>/dev/null || true)
[ $skip_criteria = 1 ] || rm -f "$res"/criteria/*.csv "$res"/criteria/*.json "$res"/criteria/*.log
rm -f "$res"/perf/*.json "$res"/perf/*.log "$res"/plots/*.svg "$res/run.txt"

if [ $mode = quick ]; then
  crit_args=(--ratios 0.2,0.4 --seeds 2 --eval-tokens 1024 --calib-tokens 20000
             --samples 128 --heldout 512
             --eval "ts64=$text/tinystories/tinystories_val.txt:64"
             --eval "ts128=$text/tinystories/tinystories_val.txt:128"
             --eval "wiki128=$text/wikitext-2/wiki.test.raw:128")
else
  crit_args=(--ratios 0.1,0.2,0.3,0.4,0.5 --seeds 3 --eval-tokens 8192 --calib-tokens 100000
             --eval "ts128=$text/tinystories/tinystories_val.txt:128"
             --eval "ts512=$text/tinystories/tinystories_val.txt:512"
             --eval "wiki=$text/wikitext-2/wiki.test.raw:512")
fi
models=("$data/stories260K/stories260K.bin:$data/stories260K/tok512.bin:stories260K"
        "$data/babyllama-tok105/model5000.bin:$data/babyllama-tok105/tok105.bin:babyllama-tok105"
        "$data/tinystories-656k::tinystories-656k"
        ${extra[@]+"${extra[@]}"})

now() { date +%s; }
t0=$(now)

# One bench_criteria per model, at most $jobs at a time (each is single-threaded).
criteria() {
  local spec=$1 path tok name
  IFS=: read -r path tok name <<<"$spec"
  name=${name:-$(basename "${path%.*}")}
  local z=(); [ -n "$tok" ] && z=(-z "$tok")
  "$bin/bench_criteria" --model "$path" ${z[@]+"${z[@]}"} --name "$name" \
    --calib-text "$text/tinystories/tinystories_train_head.txt" "${crit_args[@]}" \
    --csv "$res/criteria/$name.csv" --json "$res/criteria/$name.json" \
    >"$res/criteria/$name.log" 2>&1 ||
    { echo "run.sh: bench_criteria failed for $name:" >&2; tail -5 "$res/criteria/$name.log" >&2
      return 1; }
  echo "criteria: $name done ($(( $(now) - t0 )) s)"
}
pids=()
[ $skip_criteria = 1 ] && models=()
for spec in ${models[@]+"${models[@]}"}; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  criteria "$spec" & pids+=($!)
done
fail=0
for p in ${pids[@]+"${pids[@]}"}; do wait "$p" || fail=1; done
[ $fail = 0 ] || exit 1
t1=$(now)
[ $skip_criteria = 1 ] && t0=$((t0 - ${previous_criteria_seconds:-0}))

# Performance: one program at a time, so they do not compete for the cores.
perf() {
  local name=$1; shift
  "$@" >"$res/perf/$name.log" 2>&1 ||
    { echo "run.sh: $name failed:" >&2; tail -5 "$res/perf/$name.log" >&2; exit 1; }
  echo "perf: $name done ($(( $(now) - t0 )) s)"
}
calib=$text/tinystories/tinystories_train_head.txt
if [ $mode = quick ]; then
  perf kernels "$bin/bench_kernels" --quick --json "$res/perf/kernels.json"
  perf tokenizer "$bin/bench_tokenizer" --data "$data" --quick --json "$res/perf/tokenizer.json"
  perf mi "$bin/bench_mi" --d 384 --n 256 --threads 2 --json "$res/perf/mi.json"
  perf engine-smollm2-q8_0 "$bin/bench_engine" --shape smollm2 --type q8_0 --threads 2 \
    --prefill 32 --decode 8 --batch 32 --calib-text "$calib" --calib-tokens 256 \
    --json "$res/perf/engine-smollm2-q8_0.json"
else
  perf kernels "$bin/bench_kernels" --json "$res/perf/kernels.json"
  perf tokenizer "$bin/bench_tokenizer" --data "$data" --json "$res/perf/tokenizer.json"
  perf mi "$bin/bench_mi" --threads 2 --model "$data/stories260K/stories260K.bin" \
    --tokenizer "$data/stories260K/tok512.bin" --text "$calib" --json "$res/perf/mi.json"
  for st in smollm2:f32 smollm2:q8_0 qwen05:f32 qwen05:q8_0 tinyllama:f32 tinyllama:q8_0; do
    shape=${st%:*} type=${st#*:}
    perf "engine-$shape-$type" "$bin/bench_engine" --shape "$shape" --type "$type" \
      --threads 2 --prefill 256 --decode 32 --batch 128 --calib-text "$calib" \
      --calib-tokens 512 --json "$res/perf/engine-$shape-$type.json"
  done
fi

# Pack / unpack throughput (.mpk): a random-weight model of a real shape written as GGUF by
# bench_engine, packed with `mipr pack --quant q8` (zstd) and unpacked back to GGUF, each
# timed once. The quick run uses the smaller Q8_0 GGUF of the same shape.
pack_unpack() {
  local mipr=build/host/tools/mipr type=f32 dir
  [ $mode = quick ] && type=q8_0
  [ -x "$mipr" ] || { echo "run.sh: $mipr is missing: build the host preset" >&2; exit 1; }
  dir=$(mktemp -d "${TMPDIR:-/tmp}/mipr-pack.XXXXXX")
  "$bin/bench_engine" --shape smollm2 --type $type --prefill 1 --decode 1 \
    --gguf "$dir/m.gguf" >"$res/perf/pack.log" 2>&1
  local a b c
  a=$(date +%s.%N)
  "$mipr" pack "$dir/m.gguf" -o "$dir/m.mpk" --quant q8 -q >>"$res/perf/pack.log" 2>&1
  b=$(date +%s.%N)
  "$mipr" unpack "$dir/m.mpk" -o "$dir/back.gguf" >>"$res/perf/pack.log" 2>&1
  c=$(date +%s.%N)
  printf '{"shape": "smollm2", "type": "%s", "quant": "q8", "gguf_bytes": %s, "mpk_bytes": %s, "unpacked_bytes": %s, "pack_seconds": %s, "unpack_seconds": %s}\n' \
    $type "$(stat -c %s "$dir/m.gguf")" "$(stat -c %s "$dir/m.mpk")" \
    "$(stat -c %s "$dir/back.gguf")" "$(awk "BEGIN{print $b - $a}")" \
    "$(awk "BEGIN{print $c - $b}")" >"$res/perf/pack.json"
  rm -rf "$dir"
  echo "perf: pack done ($(( $(now) - t0 )) s)"
}
pack_unpack
t2=$(now)

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
{
  echo "mode $mode"
  echo "seconds $((t2 - t0))"
  echo "criteria_seconds $((t1 - t0))"
  echo "perf_seconds $((t2 - t1))"
  echo "cpu ${cpu:-unknown}"
  echo "cores $(nproc 2>/dev/null || echo 1)"
} >"$res/run.txt"
"$bin/bench_report" "$out"
"$bin/bench_report" --check "$out"
echo "run.sh: $mode run done in $((t2 - t0)) s; record in $out/RESULTS.md"
