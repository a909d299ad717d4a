#!/usr/bin/env bash
# Builds .device/ (git-ignored): what bench/device/run.sh needs on a lent GPU machine, which
# reaches no network. Run here, once, from anywhere; then name .device in the device tool's
# `carry` (see bench/device/README.md). About 35 MiB:
#   .device/deno.xz     the pinned Deno (95 MB as a binary; the tool carries at most 64 MiB)
#   .device/denodir/    a DENO_DIR holding this project's npm packages (yaml, tokenizers, jinja)
#   .device/gl/*.deb    the Vulkan loader and the GL dispatch libraries (amd64): the GPU image
#                       has the NVIDIA driver but no loader (/work/.library/device/README.md)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mkdir -p .device/gl
./rmtw --version >/dev/null # installs the pinned Deno from npm if needed
deno="$(readlink -f tools/deno/node_modules/.bin/deno)"
echo "prepare: compressing $deno → .device/deno.xz" >&2
xz -T0 -6 -c "$deno" >.device/deno.xz.tmp && mv .device/deno.xz.tmp .device/deno.xz
echo "prepare: caching the npm packages in .device/denodir" >&2
rm -rf .device/denodir
DENO_DIR="$root/.device/denodir" "$deno" cache --quiet main.ts bench/compare.ts tests/
# Only what a run needs: the npm packages and their registry metadata.
find .device/denodir -mindepth 1 -maxdepth 1 ! -name npm -exec rm -rf {} +
echo "prepare: downloading the Vulkan loader (amd64) into .device/gl" >&2
lists=/tmp/rmt-device-apt-lists
mkdir -p "$lists/partial"
apt_options=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists")
apt-get "${apt_options[@]}" update -qq
# libvulkan1 is the loader; the NVIDIA ICD also needs the GL dispatch libraries (the device
# README's list).
(cd .device/gl && rm -f ./*.deb && apt-get "${apt_options[@]}" download libvulkan1 libglvnd0 \
  libegl1 libgl1 libglx0 libopengl0 libgles2 >/dev/null)
du -sh .device .device/* >&2
