#version 450
#extension GL_EXT_control_flow_attributes : require
// Repacks a convolution kernel for conv2d_w8/w4/w2: packed[(c*K*K + ky*K + kx)*O4 + o/4][o%4]
// = w[w_base + o*w_so + c*w_sc + ky*w_sky + kx*w_skx], zero for o >= O. Four output channels
// then arrive in one vec4 load, and the strides express both the forward kernel and the
// flipped, transposed one of the input gradient. Each invocation writes the four channels of
// one vec4 of one tap, over a flat grid (full lanes however few channels a layer has); the
// index splits are multiply-highs (fastdiv.glsl), because CPU drivers divide lane by lane.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, w);
OUT_R32F(1, packed);
layout(push_constant) uniform Push {
    uint C; uint O; uint O4; uint K;
    int w_base; int w_so; int w_sc; int w_sky; int w_skx;
    uint o4_magic; uint k_magic; uint logs; // ceil(log2 O4) | ceil(log2 K) << 5
};

void main() {
    uint idx = flat_index();
    if (idx >= C * K * K * O4) return;
    uint tap = fast_div(idx, o4_magic, logs & 31u);
    uint o4 = idx - tap * O4;
    uint k_log = (logs >> 5u) & 31u;
    uint row = fast_div(tap, k_magic, k_log);
    uint kx = tap - row * K;
    uint c = fast_div(row, k_magic, k_log);
    uint ky = row - c * K;
    int base = w_base + int(c) * w_sc + int(ky) * w_sky + int(kx) * w_skx;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint o = 4u * o4 + j;
        float v = 0.0;
        if (o < O) v = LOAD(w, base + int(o) * w_so);
        STORE(packed, idx * 4u + j, v);
    }
}
