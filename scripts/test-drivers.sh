#!/usr/bin/env sh
# The whole test suite (every op test, the golden cases, the CLI tests: train through R1 steps,
# --resume, generate, mix, metrics, bench), four times, all under the Khronos validation layer:
#   1. lavapipe with its own limits (the CPU kernel family, texel-buffer I/O);
#   2. lavapipe held to the Vulkan 1.1 minimum limits (VKGAN_LIMITS=minimum: 65536-texel views,
#      so large tensors take the storage-buffer builds of the kernels);
#   3. lavapipe running the GPU kernel family (VKGAN_KERNELS=gpu);
#   4. SwiftShader, a second conformant implementation with small-GPU limits (the GPU kernel
#      family; fetched by scripts/fetch-swiftshader.sh into its cache directory);
#   5. data-parallel training under a real mpirun, 2 ranks on lavapipe (tests/cli_mpi.rs, built
#      with the `mpi` feature; needs `scripts/setup-debian.sh --mpi`).
# A failure in any pass fails the script; each pass prints its wall time.
# Extra arguments go to every `cargo test` (e.g. a test-name filter).
set -eu
cd "$(dirname "$0")/.."

lavapipe=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1)
if [ -z "$lavapipe" ]; then
    echo "test-drivers: lavapipe's ICD manifest is missing; run scripts/setup-debian.sh" >&2
    exit 1
fi
swiftshader=$(sh scripts/fetch-swiftshader.sh)
if ! command -v mpirun >/dev/null 2>&1; then
    echo "test-drivers: mpirun is missing; run scripts/setup-debian.sh --mpi" >&2
    exit 1
fi

pass() {
    name=$1
    shift
    echo "== test-drivers: $name"
    start=$(date +%s)
    env "$@" cargo test --release $CARGO_ARGS -- $EXTRA
    echo "== test-drivers: $name passed in $(($(date +%s) - start)) s"
}

EXTRA="$*"
CARGO_ARGS=""
cargo build --release --all-targets
pass "lavapipe, device limits" VK_ICD_FILENAMES="$lavapipe" VKGAN_LIMITS=device
pass "lavapipe, Vulkan 1.1 minimum limits" VK_ICD_FILENAMES="$lavapipe" VKGAN_LIMITS=minimum
pass "lavapipe, GPU kernel family" VK_ICD_FILENAMES="$lavapipe" VKGAN_LIMITS=device VKGAN_KERNELS=gpu
pass "SwiftShader" VK_ICD_FILENAMES="$swiftshader" VKGAN_LIMITS=device
# Last: the feature rebuilds the crate, and every pass above uses the build without it.
CARGO_ARGS="--features mpi --test cli_mpi"
pass "lavapipe, 2 MPI ranks" VK_ICD_FILENAMES="$lavapipe" VKGAN_LIMITS=device
echo "== test-drivers: all passes passed"
