#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled default model (stories260K):
# calibrate on TinyStories training text, prune 20 % of the FFN neurons with the size-aware
# policy, compare size and perplexity before and after, tell a story with the result, then
# pack it as a q8 .mpk and run that with the device runtime in low-RAM mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset host >/dev/null
cmake --build --preset host
D="${MIPR_TEST_DATA:-../shared/data}"
M="$D/stories260K/stories260K.bin"; Z="$D/stories260K/tok512.bin"
OUT="${MIPR_DEMO_OUT:-build/demo}"
mipr=./build/host/tools/mipr
mkdir -p "$OUT"

echo "== 1. calibrate: FFN activations of stories260K on TinyStories training text"
$mipr calibrate "$M" -z "$Z" --text "$D/text/tinystories/tinystories_train_head.txt" \
  --tokens 60000 --samples 512 -o "$OUT/stories260K.mcal"
echo "== 2. prune 20 % of the FFN neurons (--criterion auto: the size-aware policy decides)"
$mipr prune "$M" -z "$Z" --calib "$OUT/stories260K.mcal" --ratio 0.2 \
  --eval-text "$D/text/tinystories/validation_100.txt" \
  -o "$OUT/stories260K-pruned.gguf" --report "$OUT/prune-report.json"
echo "== 3. a story from the pruned model"
$mipr generate "$OUT/stories260K-pruned.gguf" -p "Once upon a time" -t 0 -n 200
echo "== 4. pack for a device: q8, zstd, checksummed; verify it; run it with the runtime alone"
$mipr pack "$OUT/stories260K-pruned.gguf" -o "$OUT/stories260K-pruned.mpk" --quant q8 -q
$mipr verify -q "$OUT/stories260K-pruned.mpk"
./build/host/tools/mipr-run "$OUT/stories260K-pruned.mpk" -p "Once upon a time" -t 0 -n 200 \
  --low-ram
echo "== 5. sizes"
ls -l "$M" "$OUT/stories260K-pruned.gguf" "$OUT/stories260K-pruned.mpk" | awk '{print $5, $9}'
