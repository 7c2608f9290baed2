#version 450
// StyleGAN2's down(x) on planes [P, 2H, 2W] -> [P, H, W]: the [1,2,1]x[1,2,1]/16 smoothing with
// replication padding, then the mean of each 2x2 block. Separable: along an axis output q is
// (1, 3, 3, 1)/8 of inputs clamp(2q-1), 2q, 2q+1, clamp(2q+2) (see src/ops/downsample.rs).
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
// h, w: the output's size.
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
    uint qy = fast_div(rem, row_magic, row_log);
    uint qx = rem - qy * w;
    uint w2 = 2u * w;
    uint base = plane * 4u * hw;
    uint rows[4] = uint[4](qy > 0u ? 2u * qy - 1u : 0u, 2u * qy, 2u * qy + 1u, min(2u * qy + 2u, 2u * h - 1u));
    uint c0 = qx > 0u ? 2u * qx - 1u : 0u;
    uint c3 = min(2u * qx + 2u, w2 - 1u);
    const float wr[4] = float[4](1.0, 3.0, 3.0, 1.0);
    float acc = 0.0;
    for (int r = 0; r < 4; ++r) {
        uint o = base + rows[r] * w2;
        float s = LOAD(x, o + c0) + 3.0 * (LOAD(x, o + 2u * qx) + LOAD(x, o + 2u * qx + 1u)) + LOAD(x, o + c3);
        acc += wr[r] * s;
    }
    STORE(result, i, acc * (1.0 / 64.0));
}
