#!/usr/bin/env bash
# Builds a sysroot of target libraries for a cross build, without touching the system:
#   scripts/sysroot.sh arm64|armhf DESTDIR
# A private apt configuration (its own lists and cache dirs, an empty dpkg status file, the
# machine's Debian sources restricted to the target architecture) downloads the .deb files
# and dpkg-deb -x unpacks them under DESTDIR. No `dpkg --add-architecture`: the arm64
# cpuinfo/XNNPACK packages would conflict with the amd64 ones, and a second libc in the
# system makes threaded programs hang under qemu. DESTDIR/.complete marks a finished run.
set -euo pipefail

arch=${1:?usage: sysroot.sh arm64|armhf DESTDIR}
dest=${2:?usage: sysroot.sh arm64|armhf DESTDIR}
case "$arch" in
  arm64|armhf) ;;
  aarch64) arch=arm64 ;;
  *) echo "sysroot.sh: unknown architecture '$arch' (expected arm64 or armhf)" >&2; exit 2 ;;
esac
pkgs=(libcpuinfo-dev libcpuinfo0 libzstd-dev libzstd1 libpthreadpool-dev libpthreadpool0
      libxnnpack-dev libxnnpack0 libcjson-dev libcjson1)

if [[ -f "$dest/.complete" ]]; then
  echo "sysroot: $dest already complete"
  exit 0
fi
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work="$dest/.apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" \
         "$work/sources.list.d" "$work/preferences.d"
: > "$work/status"

# The machine's sources, each stanza limited to the target architecture (deb822 form), or
# the one-line form with [arch=...].
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  sed -e "/^Types:/a Architectures: $arch" /etc/apt/sources.list.d/debian.sources \
    > "$work/sources.list.d/debian.sources"
  : > "$work/sources.list"
elif [[ -f /etc/apt/sources.list ]]; then
  sed -E -e "s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?/deb [arch=$arch] /" \
    -e '/^deb-src/d' /etc/apt/sources.list > "$work/sources.list"
else
  echo "sysroot.sh: no apt sources found in /etc/apt" >&2; exit 1
fi

apt_opts=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
          -o "Dir::State=$work" -o "Dir::State::Lists=$work/lists"
          -o "Dir::State::status=$work/status" -o "Dir::Cache=$work/cache"
          -o "Dir::Etc::SourceList=$work/sources.list"
          -o "Dir::Etc::SourceParts=$work/sources.list.d"
          -o "Dir::Etc::Preferences=$work/preferences"
          -o "Dir::Etc::PreferencesParts=$work/preferences.d"
          -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")

# A mirror caught mid-sync fails one index (seen on bookworm-security); the packages may
# still be found in the others, so after three tries go on and let the download decide.
for try in 1 2 3; do
  if apt-get "${apt_opts[@]}" update -qq; then break; fi
  if [[ $try == 3 ]]; then
    echo "sysroot.sh: apt-get update had errors; trying the indexes it did fetch" >&2
  else
    sleep 5
  fi
done
if ! (cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq "${pkgs[@]/%/:$arch}"); then
  echo "sysroot.sh: could not download ${pkgs[*]} for $arch" >&2
  exit 1
fi
for deb in "$work/debs"/*.deb; do
  dpkg-deb -x "$deb" "$dest"
done

# Some -dev symlinks are absolute (/usr/lib/...): make them relative so they resolve
# inside the sysroot.
while IFS= read -r link; do
  target=$(readlink "$link")
  if [[ "$target" == /* ]]; then
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dest$target")" "$link"
  fi
done < <(find "$dest/usr" -type l)

rm -rf "$work/lists" "$work/cache"
touch "$dest/.complete"
echo "sysroot: $arch libraries in $dest"
