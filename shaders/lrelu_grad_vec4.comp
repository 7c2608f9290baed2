#version 450
#extension GL_EXT_control_flow_attributes : require
// out = g * (x > 0 ? 1 : slope), as lrelu_grad.comp, for tensors of a multiple of 4 elements:
// one 4-float texel of each an invocation (see unary_vec4.comp).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_RGBA32F(0, g);
IN_RGBA32F(1, x);
OUT_RGBA32F(2, result);
// n counts elements, as in lrelu_grad.comp; it is a multiple of 4 here.
layout(push_constant) uniform Push { uint n; float slope; };

void main() {
    uint i = flat_index();
    if (i >= n / 4u) return;
    vec4 gi = LOAD4(g, i);
    STORE4(result, i, mix(gi * slope, gi, greaterThan(LOAD4(x, i), vec4(0.0))));
}
