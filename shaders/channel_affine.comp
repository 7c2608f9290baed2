#version 450
// Per-channel affine map of rows, with zero padding: x [M, C * L] -> out [M, width],
// out[r, j] = (x[r, j] - shift[j / L]) * scale[j / L] for j < C * L, else 0
// (src/metrics/elementwise.rs).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Shift { float shift[]; };
layout(std430, binding = 2) readonly buffer Scale { float scale[]; };
layout(std430, binding = 3) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint width; uint cols; uint len; uint offset; };
#include "items.glsl"

void main() {
    uint i = item_index();
    if (i >= n) return;
    uint r = i / width;
    uint j = i - r * width;
    float v = 0.0;
    if (j < cols) {
        uint c = j / len;
        v = (x[r * cols + j] - shift[c]) * scale[c];
    }
    result[i] = v;
}
