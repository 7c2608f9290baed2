#version 450
// out = max(x, lo) elementwise.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer x;
layout(binding = 1, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; float lo; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    imageStore(result, int(i), vec4(max(imageLoad(x, int(i)).x, lo)));
}
