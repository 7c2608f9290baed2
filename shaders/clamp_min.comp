#version 450
// out = max(x, lo) elementwise.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; float lo; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    result[i] = max(x[i], lo);
}
