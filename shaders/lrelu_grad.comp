#version 450
#extension GL_EXT_control_flow_attributes : require
// out = g * (x > 0 ? 1 : slope): the backward of leaky relu (relu when slope = 0).
// Four consecutive elements per invocation, as in unary.comp.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, g);
IN_R32F(1, x);
OUT_R32F(2, result);
layout(push_constant) uniform Push { uint n; float slope; };

void main() {
    uint i0 = flat_index() * 4u;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint i = i0 + j;
        if (i >= n) return;
        float gi = LOAD(g, i);
        STORE(result, i, LOAD(x, i) > 0.0 ? gi : gi * slope);
    }
}
