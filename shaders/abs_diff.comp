#version 450
// |a - b| elementwise, same shapes (src/metrics/elementwise.rs).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint offset; };
#include "items.glsl"

void main() {
    uint i = item_index();
    if (i >= n) return;
    result[i] = abs(a[i] - b[i]);
}
