#version 450
// out = f(x) elementwise. f: 0 x*c, 1 x+c, 2 x^2, 3 sqrt(x), 4 1/sqrt(x), 5 lrelu with slope c
// (relu when c = 0).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint f; float c; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float v = x[i];
    float r;
    if (f == 0u) r = v * c;
    else if (f == 1u) r = v + c;
    else if (f == 2u) r = v * v;
    else if (f == 3u) r = sqrt(v);
    else if (f == 4u) r = inversesqrt(v);
    else r = v > 0.0 ? v : v * c;
    result[i] = r;
}
