#version 450
// out = lrelu(x + bias[channel]) with x [B, C, inner...] and bias [C]: StyleGAN2's bias and
// activation after every convolution (src/ops/bias_leaky_relu.rs).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
IN_R32F(1, bias);
OUT_R32F(2, result);
layout(push_constant) uniform Push { uint n; uint c; uint inner; float slope; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float v = LOAD(x, i) + LOAD(bias, (i / inner) % c);
    STORE(result, i, v > 0.0 ? v : v * slope);
}
