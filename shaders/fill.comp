#version 450
// out[i] = value.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; float value; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    result[i] = value;
}
