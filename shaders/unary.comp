#version 450
// out = f(x) elementwise. f: 0 x*c, 1 x+c, 2 x^2, 3 sqrt(x), 4 1/sqrt(x), 5 lrelu with slope c
// (relu when c = 0).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer x;
layout(binding = 1, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; uint f; float c; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float v = imageLoad(x, int(i)).x;
    float r;
    if (f == 0u) r = v * c;
    else if (f == 1u) r = v + c;
    else if (f == 2u) r = v * v;
    else if (f == 3u) r = sqrt(v);
    else if (f == 4u) r = inversesqrt(v);
    else r = v > 0.0 ? v : v * c;
    imageStore(result, int(i), vec4(r));
}
