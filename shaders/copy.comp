#version 450
// dst[i] = src[i] for i < n.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer src;
layout(binding = 1, r32f) writeonly uniform imageBuffer dst;
layout(push_constant) uniform Push { uint n; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    imageStore(dst, int(i), vec4(imageLoad(src, int(i)).x));
}
