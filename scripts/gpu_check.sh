#!/bin/bash
# vkgan on a machine with a GPU but no Rust (the project's lent NVIDIA machine): devices, the
# golden and op tests under validation, the PyTorch comparison, a profile and a short training
# run. Prepare, on the build machine, a git-ignored folder .carry/ holding:
#   vkgan (target/release/vkgan); libtests, golden, runtime, mlp (the test executables that
#   `cargo test --release --no-run` lists for src/lib.rs, tests/golden.rs, tests/runtime.rs,
#   tests/mlp_double_grad.rs); gl/*.deb (libvulkan1 and vulkan-validationlayers, fetched with
#   `apt-get download`); whl/labml_nn-0.5.1-py3-none-any.whl (`pip download --no-deps`).
# Then run `bash scripts/gpu_check.sh` from the repository root there; results go to $OUT.
C=.carry
OUT=${OUT:-/tmp/vkgan-gpu-check}
mkdir -p "$OUT"
for f in $C/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if ! $C/vkgan devices > "$OUT/devices.txt" 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  $C/vkgan devices > "$OUT/devices.txt" 2>&1
fi
cat "$OUT/devices.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $C/whl/*.whl && export PYTHONPATH=/tmp/site
# The GPU kernel family is the default off llvmpipe; the CPU family (large register tiles,
# Winograd) is timed too, for the family choice. 32x32 is the reference's size; 64x64 and
# 128x128 keep its feature sizes and batch 32.
for size in 32 64 128; do
  echo "== compare ${size}x${size} (gpu family)"; timeout 150 python3 scripts/bench_compare.py --vkgan $C/vkgan --python python3 --image-size $size --steps 10 2>&1 | tee "$OUT/compare-$size.txt" | tail -8
  echo "== bench ${size}x${size} (cpu family)"; VKGAN_KERNELS=cpu timeout 120 $C/vkgan bench --image-size $size --steps 3 --json 2>&1 | tail -1 | tee "$OUT/bench-cpu-family-$size.txt"
done
echo "== profile (gpu family)"; timeout 60 $C/vkgan bench --profile --steps 5 2>&1 | head -30 | tee "$OUT/profile.txt"
echo "== golden"; VKGAN_GOLDEN_DIR=tests/golden timeout 90 $C/golden --nocapture 2>&1 | tail -6 | tee "$OUT/golden.txt"
echo "== golden, Vulkan 1.1 minimum limits"; VKGAN_LIMITS=minimum VKGAN_GOLDEN_DIR=tests/golden timeout 90 $C/golden 2>&1 | tail -3 | tee "$OUT/golden-minimum.txt"
echo "== runtime"; timeout 60 $C/runtime 2>&1 | tail -3 | tee "$OUT/runtime.txt"
echo "== runtime, Vulkan 1.1 minimum limits"; VKGAN_LIMITS=minimum timeout 60 $C/runtime 2>&1 | tail -3 | tee "$OUT/runtime-minimum.txt"
echo "== mlp"; timeout 60 $C/mlp 2>&1 | tail -3
echo "== lib"; timeout 200 $C/libtests --test-threads 8 > "$OUT/libtests.txt" 2>&1; echo "rc=$?"; grep -E "FAILED|panicked|test result" "$OUT/libtests.txt" | head -30
echo "== train"; timeout 90 $C/vkgan train --steps 200 --sample-every 100 --checkpoint-every 200 --no-progress --out /tmp/vkgan-gpu-run 2>&1 | tail -4 | tee "$OUT/train.txt"
cp /tmp/vkgan-gpu-run/samples.png "$OUT/" 2>/dev/null
exit 0
