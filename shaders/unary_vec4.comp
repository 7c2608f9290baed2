#version 450
#extension GL_EXT_control_flow_attributes : require
// out = f(x) elementwise (common/unary_f.glsl) for tensors of a multiple of 4 elements, one
// 4-float texel an invocation: llvmpipe moves a texel in one access where unary.comp's four
// floats take four (scale of 2M elements: 2.3 -> 1.7 ns an element).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_RGBA32F(0, x);
OUT_RGBA32F(1, result);
// n counts elements, as in unary.comp; it is a multiple of 4 here.
layout(push_constant) uniform Push { uint n; float c; };

#define UNARY_T vec4
#define UNARY_POSITIVE(v) greaterThan(v, vec4(0.0))
#include "unary_f.glsl"

void main() {
    uint i = flat_index();
    if (i >= n / 4u) return;
    STORE4(result, i, f(LOAD4(x, i)));
}
