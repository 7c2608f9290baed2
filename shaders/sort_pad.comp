#version 450
// Row copy between strides for the bitonic sort: out[r, c] = in[r, c] for c < cols_in, +inf
// past it (padding that sorts last), for c < cols_out.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint cols_out; uint cols_in; uint stride_in; uint offset; };
#include "items.glsl"

void main() {
    uint i = item_index();
    if (i >= n) return;
    uint r = i / cols_out;
    uint c = i - r * cols_out;
    result[i] = c < cols_in ? x[r * stride_in + c] : uintBitsToFloat(0x7f800000u);
}
