#version 450
// out = a (op) b with numpy broadcasting: a and b are read through strides that are 0 along
// broadcast dimensions. op: 0 add, 1 sub, 2 mul, 3 div, 4 copy a (expand).
#include "index.glsl"
#include "broadcast.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push {
    uint n;
    uint op;
    uint rank;
    uint dims[MAX_RANK];
    uint a_strides[MAX_RANK];
    uint b_strides[MAX_RANK];
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    float x = a[strided_offset(i, rank, dims, a_strides)];
    if (op == 4u) { result[i] = x; return; }
    float y = b[strided_offset(i, rank, dims, b_strides)];
    float r;
    if (op == 0u) r = x + y;
    else if (op == 1u) r = x - y;
    else if (op == 2u) r = x * y;
    else r = x / y;
    result[i] = r;
}
