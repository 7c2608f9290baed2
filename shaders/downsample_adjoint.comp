#version 450
// The transpose of downsample.comp: g [P, H, W] -> [P, 2H, 2W]. Along an axis, input i = 2m
// receives outputs m-1 and m with weights (1, 3)/8, input 2m+1 outputs m and m+1 with (3, 1)/8;
// the edge clamps add 1 to the weight of output 0 at input 0 and of output n-1 at input 2n-1.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, g);
OUT_R32F(1, result);
// h, w: the size of g.
// The plane and row divisions are multiply-highs (fastdiv.glsl) with host-computed constants.
layout(push_constant) uniform Push {
    uint n; uint h; uint w;
    uint plane_magic; uint plane_log; uint row_magic; uint row_log;
};

// The two candidate outputs of input `i` along an axis of output size `size`, clamped into
// range, and their weights (0 for a candidate outside it).
void axis_taps(uint i, uint size, out uint q[2], out float wt[2]) {
    uint m = i >> 1u;
    if ((i & 1u) == 0u) {
        q = uint[2](m > 0u ? m - 1u : 0u, m);
        wt = float[2](m > 0u ? 1.0 : 0.0, i == 0u ? 4.0 : 3.0);
    } else {
        bool last = m + 1u == size;
        q = uint[2](m, last ? m : m + 1u);
        wt = float[2](last ? 4.0 : 3.0, last ? 0.0 : 1.0);
    }
}

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint w2 = 2u * w;
    uint hw4 = 4u * h * w;
    uint plane = fast_div(idx, plane_magic, plane_log);
    uint rem = idx - plane * hw4;
    uint iy = fast_div(rem, row_magic, row_log);
    uint ix = rem - iy * w2;
    uint qy[2];
    uint qx[2];
    float wy[2];
    float wx[2];
    axis_taps(iy, h, qy, wy);
    axis_taps(ix, w, qx, wx);
    uint base = plane * h * w;
    float acc = 0.0;
    for (int a = 0; a < 2; ++a) {
        uint o = base + qy[a] * w;
        acc += wy[a] * (wx[0] * LOAD(g, o + qx[0]) + wx[1] * LOAD(g, o + qx[1]));
    }
    STORE(result, idx, acc * (1.0 / 64.0));
}
