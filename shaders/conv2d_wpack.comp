#version 450
// Repacks a convolution kernel for conv2d_w8/conv2d_w4: packed[(c*K*K + ky*K + kx)*O4 + o/4][o%4]
// = w[w_base + o*w_so + c*w_sc + ky*w_sky + kx*w_skx], zero for o >= O. Four output channels
// then arrive in one vec4 load (lavapipe loads memory lane by lane, so fewer, wider loads
// are what counts), and the strides express both the forward kernel and the flipped,
// transposed one of the input gradient.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer w;
layout(binding = 1, r32f) writeonly uniform imageBuffer packed;
layout(push_constant) uniform Push {
    uint C; uint O; uint O4; uint K;
    int w_base; int w_so; int w_sc; int w_sky; int w_skx;
};

void main() {
    uint i = flat_index();
    uint n = C * K * K * O4 * 4u;
    if (i >= n) return;
    uint o = i % (O4 * 4u);
    uint tap = i / (O4 * 4u);
    uint kx = tap % K;
    uint ky = (tap / K) % K;
    uint c = tap / (K * K);
    float v = 0.0;
    if (o < O) v = imageLoad(w, int(w_base + int(o) * w_so + int(c) * w_sc + int(ky) * w_sky + int(kx) * w_skx)).x;
    imageStore(packed, int(i), vec4(v));
}
