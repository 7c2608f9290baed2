#version 450
// out = g * (x > 0 ? 1 : slope): the backward of leaky relu (relu when slope = 0).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer g;
layout(binding = 1, r32f) readonly uniform imageBuffer x;
layout(binding = 2, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; float slope; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    imageStore(result, int(i), vec4(imageLoad(x, int(i)).x > 0.0 ? imageLoad(g, int(i)).x : imageLoad(g, int(i)).x * slope));
}
