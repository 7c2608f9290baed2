#version 450
// The output stage of a StyleGAN2 style block in one pass (src/ops/style_epilogue.rs):
//   out[b,o,p] = lrelu(y[b,o,p] * d[b,o] + scale * noise[b,0,p] + bias[o])
// with y [B, C, HW] the modulated convolution, d [B, C] its demodulation, noise [B, 1, HW] and
// scale [1] (both unread when has_noise is 0) and bias [C]. Row (b, o) and position p come from
// two multiply-high divisions (fastdiv.glsl), which CPU drivers run as vector code.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, y);
IN_R32F(1, d);
IN_R32F(2, noise);
IN_R32F(3, scale);
IN_R32F(4, bias);
OUT_R32F(5, result);
layout(push_constant) uniform Push {
    uint n;
    uint C;
    uint HW;
    uint hw_magic;
    uint hw_log;
    uint c_magic;
    uint c_log;
    uint has_noise;
    float slope;
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint row = fast_div(i, hw_magic, hw_log);
    uint p = i - row * HW;
    uint b = fast_div(row, c_magic, c_log);
    uint o = row - b * C;
    float v = LOAD(y, i) * LOAD(d, row) + LOAD(bias, o);
    if (has_noise != 0u) v += LOAD(scale, 0) * LOAD(noise, b * HW + p);
    STORE(result, i, v > 0.0 ? v : v * slope);
}
