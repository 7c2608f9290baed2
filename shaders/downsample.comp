#version 450
#extension GL_EXT_control_flow_attributes : require
// StyleGAN2's down(x) on planes [P, 2H, 2W] -> [P, H, W]: the [1,2,1]x[1,2,1]/16 smoothing with
// replication padding, then the mean of each 2x2 block. Separable: along an axis output q is
// (1, 3, 3, 1)/8 of inputs clamp(2q-1), 2q, 2q+1, clamp(2q+2) (see src/ops/downsample.rs).
// Each invocation writes a 2x2 block of outputs (2b, 2b+1) x (2b', 2b'+1) from the 6x6 inputs
// under it, loaded once: 36 loads for 4 results instead of 64.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
// n: the 2x2 output blocks; h, w: the output's size.
// The plane and row divisions (by the blocks a plane and a row) are multiply-highs
// (fastdiv.glsl) with host-computed constants.
layout(push_constant) uniform Push {
    uint n; uint h; uint w;
    uint plane_magic; uint plane_log; uint row_magic; uint row_log;
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint bh = (h + 1u) / 2u;
    uint bw = (w + 1u) / 2u;
    uint plane = fast_div(i, plane_magic, plane_log);
    uint rem = i - plane * bh * bw;
    uint by = fast_div(rem, row_magic, row_log);
    uint bx = rem - by * bw;
    uint h2 = 2u * h;
    uint w2 = 2u * w;
    // Input rows and columns 4b-1 .. 4b+4, clamped into the plane: output 2b + k takes
    // entries 2k .. 2k+3 of them.
    uint rows[6];
    uint cols[6];
    [[unroll]] for (int j = 0; j < 6; j++) {
        rows[j] = uint(clamp(int(4u * by) - 1 + j, 0, int(h2) - 1));
        cols[j] = uint(clamp(int(4u * bx) - 1 + j, 0, int(w2) - 1));
    }
    uint base = plane * 4u * h * w;
    float v[6][6];
    [[unroll]] for (int r = 0; r < 6; r++)
        [[unroll]] for (int c = 0; c < 6; c++) v[r][c] = LOAD(x, base + rows[r] * w2 + cols[c]);
    const float wr[4] = float[4](1.0, 3.0, 3.0, 1.0);
    [[unroll]] for (uint ky = 0u; ky < 2u; ky++) {
        uint qy = 2u * by + ky;
        [[unroll]] for (uint kx = 0u; kx < 2u; kx++) {
            uint qx = 2u * bx + kx;
            float acc = 0.0;
            [[unroll]] for (uint r = 0u; r < 4u; r++) {
                uint vr = 2u * ky + r;
                uint c = 2u * kx;
                float s = v[vr][c] + 3.0 * (v[vr][c + 1u] + v[vr][c + 2u]) + v[vr][c + 3u];
                acc += wr[r] * s;
            }
            if (qy < h && qx < w)
                STORE(result, (plane * h + qy) * w + qx, acc * (1.0 / 64.0));
        }
    }
}
