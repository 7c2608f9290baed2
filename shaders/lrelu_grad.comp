#version 450
#extension GL_EXT_control_flow_attributes : require
// out = g * (x > 0 ? 1 : slope): the backward of leaky relu (relu when slope = 0).
// Four consecutive elements per invocation, as in unary.comp.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer g;
layout(binding = 1, r32f) readonly uniform imageBuffer x;
layout(binding = 2, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; float slope; };

void main() {
    uint i0 = flat_index() * 4u;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint i = i0 + j;
        if (i >= n) return;
        float gi = imageLoad(g, int(i)).x;
        imageStore(result, int(i), vec4(imageLoad(x, int(i)).x > 0.0 ? gi : gi * slope));
    }
}
