#!/usr/bin/env sh
# Installs what vkgan needs on Debian or Ubuntu: the Vulkan loader, lavapipe (Vulkan on the
# CPU, so vkgan runs without a GPU), the Khronos validation layer (the tests run under it),
# and the shaderc/glslang libraries build.rs compiles the shaders with.
# With --mpi, also Open MPI (mpirun and its headers) and libclang, which the `mpi` cargo
# feature's bindings are generated with: what multi-GPU training and its tests need.
# lavapipe is the distribution's own (Debian 12: Mesa 22.3): bookworm-backports' Mesa 25.0 ran
# the training step slower on both an AMD EPYC and an Intel Xeon (README, Performance).
set -eu

PACKAGES="build-essential pkg-config libvulkan1 libvulkan-dev mesa-vulkan-drivers \
vulkan-validationlayers vulkan-tools libshaderc-dev glslang-dev spirv-tools curl brotli"
for arg in "$@"; do
    case "$arg" in
        --mpi) PACKAGES="$PACKAGES libopenmpi-dev openmpi-bin libclang-dev" ;;
        *) echo "vkgan setup: unknown option $arg (known: --mpi)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "vkgan setup: installing$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        echo "vkgan setup: cargo is in ~/.cargo/bin; run: . \"\$HOME/.cargo/env\"" >&2
    else
        echo "vkgan setup: Rust is missing; install it with:" >&2
        echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
    fi
    exit 1
fi
echo "vkgan setup: done"
