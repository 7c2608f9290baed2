#version 450
// Per-channel affine map of rows, with zero padding: x [M, C * L] -> out [M, width],
// out[r, j] = (x[r, j] - shift[j / L]) * scale[j / L] for j < C * L, else 0
// (src/metrics/elementwise.rs).
#include "io.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
IN_R32F(1, shift);
IN_R32F(2, scale);
OUT_R32F(3, result);
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
        v = (LOAD(x, r * cols + j) - LOAD(shift, c)) * LOAD(scale, c);
    }
    STORE(result, i, v);
}
