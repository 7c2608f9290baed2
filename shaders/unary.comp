#version 450
#extension GL_EXT_control_flow_attributes : require
// out = f(x) elementwise (common/unary_f.glsl), for tensors whose length is not a multiple of
// 4 (the rest take unary_vec4.comp). Each invocation takes four consecutive elements: CPU
// drivers run that as straight-line vector code, faster per element than one element per
// invocation or four strided a workgroup apart.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push { uint n; float c; };

#define UNARY_T float
#define UNARY_POSITIVE(v) ((v) > 0.0)
#include "unary_f.glsl"

void main() {
    uint i0 = flat_index() * 4u;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint i = i0 + j;
        if (i >= n) return;
        STORE(result, i, f(LOAD(x, i)));
    }
}
