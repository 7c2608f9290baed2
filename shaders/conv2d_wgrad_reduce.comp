#version 450
// out[i] = sum over splits s, in order, of part[s*n + i]: the second, deterministic pass of a
// split convolution weight gradient.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Part { float part[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint splits; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float s = 0.0;
    for (uint k = 0; k < splits; k++) s += part[k * n + i];
    result[i] = s;
}
