#version 450
// out = lrelu(x + bias[channel]) with x [B, C, inner...] and bias [C]: StyleGAN2's bias and
// activation after every convolution (src/ops/bias_leaky_relu.rs).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer x;
layout(binding = 1, r32f) readonly uniform imageBuffer bias;
layout(binding = 2, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; uint c; uint inner; float slope; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float v = imageLoad(x, int(i)).x + imageLoad(bias, int((i / inner) % c)).x;
    imageStore(result, int(i), vec4(v > 0.0 ? v : v * slope));
}
