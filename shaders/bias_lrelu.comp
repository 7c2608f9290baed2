#version 450
// out = lrelu(x + bias[channel]) with x [B, C, inner...] and bias [C]: StyleGAN2's bias and
// activation after every convolution (src/ops/bias_leaky_relu.rs).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Bias { float bias[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint c; uint inner; float slope; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float v = x[i] + bias[(i / inner) % c];
    result[i] = v > 0.0 ? v : v * slope;
}
