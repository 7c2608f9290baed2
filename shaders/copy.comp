#version 450
// dst[i] = src[i] for i < n.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) writeonly buffer Dst { float dst[]; };
layout(push_constant) uniform Push { uint n; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    dst[i] = src[i];
}
