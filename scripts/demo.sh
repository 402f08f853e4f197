#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled default model (stories260K):
# information about the model, then a story generated from a prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset host >/dev/null
cmake --build --preset host
D="${MIPR_TEST_DATA:-../shared/data}"
M="$D/stories260K/stories260K.bin"; Z="$D/stories260K/tok512.bin"
./build/host/tools/mipr info "$M" -z "$Z"
echo
./build/host/tools/mipr generate "$M" -z "$Z" -p "Once upon a time" -t 0 -n 200
