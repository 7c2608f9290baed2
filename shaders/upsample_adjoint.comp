#version 450
// The transpose of upsample.comp: g [P, 2H, 2W] -> [P, H, W]. Along an axis, input k receives
// output 2k-2+i with weight (1, 5, 10, 10, 5, 1)[i]/16, where the edge clamps add (5, 1) at
// i = 2, 3 for k = 0 and (1, 5) for k = n-1; outputs outside [0, 2n) contribute nothing.
// One invocation per 2x2 block of results: their windows overlap in an 8x8 patch of g, so each
// element of g is loaded once per block (16 loads per result instead of 36).
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, g);
OUT_R32F(1, result);
// n: planes * ceil(h/2) * ceil(w/2) blocks; h, w: the result's size.
// The plane and row divisions are multiply-highs (fastdiv.glsl) with host-computed constants.
layout(push_constant) uniform Push {
    uint n; uint h; uint w;
    uint plane_magic; uint plane_log; uint row_magic; uint row_log;
};

// Weights of result k (k may be `size` when size is odd: computed, never written) on the
// patch positions 2k0-2 .. 2k0+5, k0 = k & ~1.
void axis_weights(uint k, uint size, out float wt[8]) {
    bool first = k == 0u;
    bool last = k + 1u == size;
    float b0 = first ? 0.0 : 1.0;
    float b1 = first ? 0.0 : 5.0;
    float b2 = 10.0 + (first ? 5.0 : 0.0) + (last ? 1.0 : 0.0);
    float b3 = 10.0 + (first ? 1.0 : 0.0) + (last ? 5.0 : 0.0);
    float b4 = last ? 0.0 : 5.0;
    float b5 = last ? 0.0 : 1.0;
    // Constant indices only: an odd k's window starts two positions into the patch.
    if ((k & 1u) == 0u) wt = float[8](b0, b1, b2, b3, b4, b5, 0.0, 0.0);
    else wt = float[8](0.0, 0.0, b0, b1, b2, b3, b4, b5);
}

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint bh = (h + 1u) >> 1u;
    uint bw = (w + 1u) >> 1u;
    uint blocks = bh * bw;
    uint plane = fast_div(idx, plane_magic, plane_log);
    uint rem = idx - plane * blocks;
    uint by = fast_div(rem, row_magic, row_log);
    uint ky = 2u * by;
    uint kx = 2u * (rem - by * bw);
    float wy0[8];
    float wy1[8];
    float wx0[8];
    float wx1[8];
    axis_weights(ky, h, wy0);
    axis_weights(ky + 1u, h, wy1);
    axis_weights(kx, w, wx0);
    axis_weights(kx + 1u, w, wx1);
    int w2 = int(2u * w);
    int h2 = int(2u * h);
    uint base = plane * 4u * h * w;
    int cols[8];
    for (int b = 0; b < 8; ++b) cols[b] = clamp(int(2u * kx) - 2 + b, 0, w2 - 1);
    float a00 = 0.0, a01 = 0.0, a10 = 0.0, a11 = 0.0;
    for (int a = 0; a < 8; ++a) {
        // Zero-weight positions read a clamped (valid) element.
        int r = clamp(int(2u * ky) - 2 + a, 0, h2 - 1);
        uint o = base + uint(r * w2);
        float s0 = 0.0, s1 = 0.0;
        for (int b = 0; b < 8; ++b) {
            float v = LOAD(g, o + uint(cols[b]));
            s0 += wx0[b] * v;
            s1 += wx1[b] * v;
        }
        a00 += wy0[a] * s0;
        a01 += wy0[a] * s1;
        a10 += wy1[a] * s0;
        a11 += wy1[a] * s1;
    }
    const float k = 1.0 / 256.0;
    uint out0 = plane * h * w + ky * w + kx;
    bool right = kx + 1u < w;
    STORE(result, out0, a00 * k);
    if (right) STORE(result, out0 + 1u, a01 * k);
    if (ky + 1u < h) {
        STORE(result, out0 + w, a10 * k);
        if (right) STORE(result, out0 + w + 1u, a11 * k);
    }
}
