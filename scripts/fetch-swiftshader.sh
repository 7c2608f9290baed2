#!/usr/bin/env sh
# Fetches Google's SwiftShader (a second conformant Vulkan implementation, on the CPU, with the
# small limits of mobile GPUs: 65536 texels, 256 invocations, subgroups of 4) and prints the path
# of its ICD manifest. Select it with `VK_ICD_FILENAMES=$(sh scripts/fetch-swiftshader.sh)`.
#
# SwiftShader ships inside the npm package @sparticuz/chromium as bin/swiftshader.tar.br, a
# brotli-compressed tar of libvk_swiftshader.so and vk_swiftshader_icd.json. Idempotent: the
# unpacked driver is kept in the cache directory (first argument, else $VKGAN_SWIFTSHADER_DIR,
# else ~/.cache/vkgan/swiftshader) and a second run only prints its path.
set -eu

VERSION=153.0.0
CACHE=${1:-${VKGAN_SWIFTSHADER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vkgan/swiftshader}}
DEST="$CACHE/$VERSION"
ICD="$DEST/vk_swiftshader_icd.json"

if [ -f "$ICD" ] && [ -f "$DEST/libvk_swiftshader.so" ]; then
    echo "$ICD"
    exit 0
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

tgz="$work/chromium.tgz"
url="https://registry.npmjs.org/@sparticuz/chromium/-/chromium-$VERSION.tgz"
if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$tgz" "$url"
elif command -v npm >/dev/null 2>&1; then
    (cd "$work" && npm pack --silent "@sparticuz/chromium@$VERSION" >/dev/null)
    mv "$work"/sparticuz-chromium-*.tgz "$tgz"
else
    echo "fetch-swiftshader: needs curl or npm to download $url" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$work" package/bin/swiftshader.tar.br

# brotli from Debian's package when present, else Node's zlib (the machine's Node.js has it).
if command -v brotli >/dev/null 2>&1; then
    brotli -d -c "$work/package/bin/swiftshader.tar.br" >"$work/swiftshader.tar"
elif command -v node >/dev/null 2>&1; then
    node -e 'const fs=require("fs"),z=require("zlib");fs.writeFileSync(process.argv[2],z.brotliDecompressSync(fs.readFileSync(process.argv[1])))' \
        "$work/package/bin/swiftshader.tar.br" "$work/swiftshader.tar"
else
    echo "fetch-swiftshader: needs brotli (apt-get install brotli) or node to unpack SwiftShader" >&2
    exit 1
fi
mkdir -p "$work/out"
tar -xf "$work/swiftshader.tar" -C "$work/out"
so=$(find "$work/out" -name libvk_swiftshader.so | head -n 1)
json=$(find "$work/out" -name vk_swiftshader_icd.json | head -n 1)
if [ -z "$so" ] || [ -z "$json" ]; then
    echo "fetch-swiftshader: the archive holds no libvk_swiftshader.so / vk_swiftshader_icd.json" >&2
    exit 1
fi
# The manifest names the library relative to itself; keep both side by side and point it at the
# absolute path, so the manifest works from any working directory.
mkdir -p "$work/final"
cp "$so" "$work/final/libvk_swiftshader.so"
sed -e "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$DEST/libvk_swiftshader.so\"|" \
    "$json" >"$work/final/vk_swiftshader_icd.json"
rm -rf "$DEST"
mv "$work/final" "$DEST"
echo "$ICD"
