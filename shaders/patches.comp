#version 450
// Random 7x7 patches of images [N, C, H, W] -> descriptors [N * P, C * 49] (row n * P + p,
// column (c * 7 + dy) * 7 + dx). Patch p of image n has its top-left corner at
// (mulhi(w.x, H - 6), mulhi(w.y, W - 6)) with w = philox(counter (n, p, seed_hi, 0), key
// (seed_lo, stream)): uniform over the positions where the patch fits, the same for any two
// image sets (src/metrics/patches.rs). One invocation per (patch, channel): 49 values.
#include "philox.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push {
    uint n;  // N * P * C
    uint P;
    uint C;
    uint H;
    uint W;
    uint seed_lo;
    uint seed_hi;
    uint stream;
    uint offset;
};
#include "items.glsl"

void main() {
    uint i = item_index();
    if (i >= n) return;
    uint row = i / C;
    uint c = i - row * C;
    uint img = row / P;
    uint p = row - img * P;
    uvec4 r = philox4x32_10(uvec4(img, p, seed_hi, 0u), uvec2(seed_lo, stream));
    uint hi, lo;
    umulExtended(r.x, H - 6u, hi, lo);
    uint y0 = hi;
    umulExtended(r.y, W - 6u, hi, lo);
    uint x0 = hi;
    uint src = ((img * C + c) * H + y0) * W + x0;
    uint dst = i * 49u;
    for (uint dy = 0u; dy < 7u; ++dy) {
        for (uint dx = 0u; dx < 7u; ++dx) {
            result[dst + dy * 7u + dx] = x[src + dy * W + dx];
        }
    }
}
