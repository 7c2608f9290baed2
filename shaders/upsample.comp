#version 450
// StyleGAN2's up(x) on planes [P, H, W] -> [P, 2H, 2W]: bilinear x2 (align_corners=False) then the
// [1,2,1]x[1,2,1]/16 smoothing with replication padding. Both stages are separable and equal
// their interior formulas on the edge-replicated input, so output 2k (2k+1) along an axis is
// (5, 10, 1)/16 (resp. (1, 10, 5)/16) of inputs clamp(k-1), k, clamp(k+1) (see src/ops/upsample.rs).
// One invocation per input pixel: its 3x3 neighbourhood gives the whole 2x2 output block.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
// The plane and row divisions are multiply-highs (fastdiv.glsl) with host-computed constants.
layout(push_constant) uniform Push {
    uint n; uint h; uint w;
    uint plane_magic; uint plane_log; uint row_magic; uint row_log;
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint hw = h * w;
    uint plane = fast_div(i, plane_magic, plane_log);
    uint rem = i - plane * hw;
    uint ky = fast_div(rem, row_magic, row_log);
    uint kx = rem - ky * w;
    uint base = plane * hw;
    uint rows[3] = uint[3](ky > 0u ? ky - 1u : 0u, ky, min(ky + 1u, h - 1u));
    uint c0 = kx > 0u ? kx - 1u : 0u;
    uint c2 = min(kx + 1u, w - 1u);
    // Per source row: the even and odd output columns' horizontal sums.
    float even_col[3];
    float odd_col[3];
    for (int r = 0; r < 3; ++r) {
        uint o = base + rows[r] * w;
        float a = LOAD(x, o + c0);
        float b = LOAD(x, o + kx);
        float c = LOAD(x, o + c2);
        even_col[r] = 5.0 * a + 10.0 * b + c;
        odd_col[r] = a + 10.0 * b + 5.0 * c;
    }
    const float k = 1.0 / 256.0;
    uint w2 = 2u * w;
    uint out0 = plane * 4u * hw + 2u * ky * w2 + 2u * kx;
    STORE(result, out0, (5.0 * even_col[0] + 10.0 * even_col[1] + even_col[2]) * k);
    STORE(result, out0 + 1u, (5.0 * odd_col[0] + 10.0 * odd_col[1] + odd_col[2]) * k);
    STORE(result, out0 + w2, (even_col[0] + 10.0 * even_col[1] + 5.0 * even_col[2]) * k);
    STORE(result, out0 + w2 + 1u, (odd_col[0] + 10.0 * odd_col[1] + 5.0 * odd_col[2]) * k);
}
