#version 450
#extension GL_EXT_control_flow_attributes : require
// The transpose of downsample.comp: g [P, H, W] -> [P, 2H, 2W]. Along an axis, input i = 2m
// receives outputs m-1 and m with weights (1, 3)/8, input 2m+1 outputs m and m+1 with (3, 1)/8;
// the edge clamps add 1 to the weight of output 0 at input 0 and of output n-1 at input 2n-1.
// Each invocation writes the 2x2 block of inputs (2m, 2m+1) x (2m', 2m'+1) from the 3x3
// values of g around (m, m'), loaded once: 9 loads for 4 results instead of 16.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, g);
OUT_R32F(1, result);
// n: the elements of g; h, w: its size.
// The plane and row divisions are multiply-highs (fastdiv.glsl) with host-computed constants.
layout(push_constant) uniform Push {
    uint n; uint h; uint w;
    uint plane_magic; uint plane_log; uint row_magic; uint row_log;
};

// The weights of the two taps of input 2m + parity along an axis of size `size`: of g at
// m - 1 and m (parity 0) or at m and m + 1 (parity 1), clamped taps weighing 0.
void axis_weights(uint m, uint parity, uint size, out float wt[2]) {
    if (parity == 0u) {
        wt = float[2](m > 0u ? 1.0 : 0.0, m == 0u ? 4.0 : 3.0);
    } else {
        bool last = m + 1u == size;
        wt = float[2](last ? 4.0 : 3.0, last ? 0.0 : 1.0);
    }
}

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint hw = h * w;
    uint plane = fast_div(idx, plane_magic, plane_log);
    uint rem = idx - plane * hw;
    uint my = fast_div(rem, row_magic, row_log);
    uint mx = rem - my * w;
    // v[r][c]: g at rows my-1, my, my+1 and columns mx-1, mx, mx+1, clamped into the plane.
    uint rows[3] = uint[3](my > 0u ? my - 1u : 0u, my, min(my + 1u, h - 1u));
    uint cols[3] = uint[3](mx > 0u ? mx - 1u : 0u, mx, min(mx + 1u, w - 1u));
    float v[3][3];
    [[unroll]] for (int r = 0; r < 3; r++)
        [[unroll]] for (int c = 0; c < 3; c++)
            v[r][c] = LOAD(g, plane * hw + rows[r] * w + cols[c]);
    uint w2 = 2u * w;
    uint out_base = plane * 4u * hw;
    [[unroll]] for (uint py = 0u; py < 2u; py++) {
        float wy[2];
        axis_weights(my, py, h, wy);
        [[unroll]] for (uint px = 0u; px < 2u; px++) {
            float wx[2];
            axis_weights(mx, px, w, wx);
            float acc = 0.0;
            [[unroll]] for (uint a = 0u; a < 2u; a++) {
                uint r = py + a;
                acc += wy[a] * (wx[0] * v[r][px] + wx[1] * v[r][px + 1u]);
            }
            STORE(result, out_base + (2u * my + py) * w2 + 2u * mx + px, acc * (1.0 / 64.0));
        }
    }
}
