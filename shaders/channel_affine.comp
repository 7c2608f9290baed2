#version 450
// Per-channel affine map of rows, with zero padding: x [M, C * L] -> out [M, width],
// out[r, j] = (x[r, j] - shift[j / L]) * scale[j / L] for j < C * L, else 0
// (src/metrics/elementwise.rs).
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer x;
layout(binding = 1, r32f) readonly uniform imageBuffer shift;
layout(binding = 2, r32f) readonly uniform imageBuffer scale;
layout(binding = 3, r32f) writeonly uniform imageBuffer result;
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
        v = (imageLoad(x, int(r * cols + j)).x - imageLoad(shift, int(c)).x) * imageLoad(scale, int(c)).x;
    }
    imageStore(result, int(i), vec4(v));
}
