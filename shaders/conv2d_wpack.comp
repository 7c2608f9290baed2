#version 450
#extension GL_EXT_control_flow_attributes : require
// Repacks a convolution kernel for conv2d_w8/w4/w2: packed[(c*K*K + ky*K + kx)*O4 + o/4][o%4]
// = w[w_base + o*w_so + c*w_sc + ky*w_sky + kx*w_skx], zero for o >= O. Four output channels
// then arrive in one vec4 load, and the strides express both the forward kernel and the
// flipped, transposed one of the input gradient. Each invocation writes the four channels of
// one vec4 of one tap; the workgroup's y coordinate is the tap, so the only integer divisions
// (which CPU drivers run lane by lane) split the tap, once per four elements.
#include "io.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, w);
OUT_R32F(1, packed);
layout(push_constant) uniform Push {
    uint C; uint O; uint O4; uint K;
    int w_base; int w_so; int w_sc; int w_sky; int w_skx;
};

void main() {
    uint o4 = gl_GlobalInvocationID.x;
    if (o4 >= O4) return;
    uint tap = gl_WorkGroupID.y;
    uint kx = tap % K;
    uint ky = (tap / K) % K;
    uint c = tap / (K * K);
    int base = w_base + int(c) * w_sc + int(ky) * w_sky + int(kx) * w_skx;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint o = 4u * o4 + j;
        float v = 0.0;
        if (o < O) v = LOAD(w, base + int(o) * w_so);
        STORE(packed, (tap * O4 + o4) * 4u + j, v);
    }
}
