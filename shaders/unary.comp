#version 450
#extension GL_EXT_control_flow_attributes : require
// out = f(x) elementwise, one kernel per f (build.rs's OP_VARIANTS defines one OP_ macro):
// x*c, x+c, x^2, sqrt(x), 1/sqrt(x), leaky relu with slope c (relu when c = 0). Each
// invocation takes four consecutive elements: CPU drivers run that as straight-line vector
// code, faster per element than one element per invocation or four strided a workgroup apart.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push { uint n; float c; };

float f(float v) {
#if defined(OP_SCALE)
    return v * c;
#elif defined(OP_ADD_SCALAR)
    return v + c;
#elif defined(OP_SQUARE)
    return v * v;
#elif defined(OP_SQRT)
    return sqrt(v);
#elif defined(OP_RSQRT)
    return inversesqrt(v);
#elif defined(OP_LEAKY_RELU)
    return v > 0.0 ? v : v * c;
#else
#error "unary.comp is built once per OP_ define listed in build.rs"
#endif
}

void main() {
    uint i0 = flat_index() * 4u;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint i = i0 + j;
        if (i >= n) return;
        STORE(result, i, f(LOAD(x, i)));
    }
}
