#version 450
// out = g * (x > 0 ? 1 : slope): the backward of leaky relu (relu when slope = 0).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; float slope; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    result[i] = x[i] > 0.0 ? g[i] : g[i] * slope;
}
