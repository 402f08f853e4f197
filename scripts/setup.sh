#!/usr/bin/env bash
# Installs the Debian 12 packages mipr needs. Idempotent: packages already present are
# skipped, so a second run costs one dpkg query. Nothing is downloaded except by apt.
#   scripts/setup.sh            host build, tests, sanitizers
#   scripts/setup.sh --cross    also the aarch64/armhf/firmware toolchains and qemu
set -euo pipefail

host_pkgs=(build-essential cmake pkg-config ninja-build libzstd-dev libcpuinfo-dev
           libxnnpack-dev libpthreadpool-dev libcjson-dev clang lld llvm libclang-rt-14-dev python3)
cross_pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf
            libc6-dev-armhf-cross qemu-user-static gcc-arm-none-eabi
            libnewlib-arm-none-eabi qemu-system-arm)

want=("${host_pkgs[@]}")
if [[ "${1:-}" == "--cross" ]]; then want+=("${cross_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#want[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
for try in 1 2 3; do
  if $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq; then break; fi
  echo "setup: apt-get update failed (try $try), retrying" >&2; sleep 5
done
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
  --no-install-recommends "${missing[@]}"
