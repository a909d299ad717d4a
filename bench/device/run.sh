#!/usr/bin/env bash
# One call on a lent GPU machine (bench/device/README.md): sets up Deno and Vulkan from
# .device/ (bench/device/prepare.sh), then, each step under its own time limit:
#   1. the adapter rmt sees (`rmt info`) and the card (nvidia-smi)
#   2. bench:compare --torch-device cuda: rmt on the GPU next to PyTorch eager f32 on the same
#      card, with the GPU targets of issue #6 (writes compare.json and compare.txt)
#   3. the op and model tests on the GPU (every kernel against its reference, and the fused
#      dispatches bit-equal to the ops they replace; tests.txt)
# The steps' limits (60 + 270 + 200 s) and the setup fit the device tool's 600 s per call.
# Everything lands in $OUT (the device tool brings it back), else in /tmp/rmt-device-out.
# Here, without a GPU, RMT_TORCH_DEVICE=cpu RMT_DEVICE_QUICK=1 checks the script itself.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${OUT:-/tmp/rmt-device-out}"
mkdir -p "$out"
log="$out/log.txt"
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"; }

if [ ! -f .device/deno.xz ]; then
  say "no .device/deno.xz: run bench/device/prepare.sh here and carry .device"
  exit 2
fi

# The Vulkan loader, when the machine has none (the NVIDIA image ships the driver's ICD only).
if [ "$(ldconfig -p | grep -c 'libvulkan.so.1')" = 0 ]; then
  for f in .device/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  say "unpacked the Vulkan loader from .device/gl"
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi

deno=/tmp/rmt-deno
python3 - <<'PY'
import lzma, os, shutil
with lzma.open(".device/deno.xz") as src, open("/tmp/rmt-deno", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod("/tmp/rmt-deno", 0o755)
PY
export DENO_DIR=/tmp/rmt-device-denodir
rm -rf "$DENO_DIR" && cp -r .device/denodir "$DENO_DIR"
export DENO_WEBGPU_BACKEND="${DENO_WEBGPU_BACKEND:-vulkan}" RMT_NO_APT=1
torch_device="${RMT_TORCH_DEVICE:-cuda}"
quick=()
[ -n "${RMT_DEVICE_QUICK:-}" ] && quick=(--quick)
say "deno $("$deno" --version | head -1), torch device $torch_device"

say "1. the card and the adapter"
(nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv 2>&1 || true) |
  tee "$out/gpu.txt"
timeout 60 "$deno" run -A --cached-only main.ts info 2>&1 | tee "$out/info.txt"

say "2. bench:compare --torch-device $torch_device"
timeout 270 "$deno" run -A --cached-only bench/compare.ts --torch-device "$torch_device" \
  "${quick[@]}" --out "$out/compare.json" >"$out/compare.txt" 2>&1
say "bench:compare exit $?"
sed -n '1,/^full JSON/p' "$out/compare.txt"

say "3. op and model tests on this adapter"
timeout 200 "$deno" test -A --cached-only tests/ops tests/model/transformer_test.ts \
  tests/model/generate_test.ts tests/model/linear_test.ts >"$out/tests.txt" 2>&1
say "tests exit $?"
grep -E "FAILED|passed|failed" "$out/tests.txt" | tail -n 30
say "done: $out"
