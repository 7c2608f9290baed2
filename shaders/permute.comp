#version 450
// out[i] = x[offset of i's coordinates under the permuted input strides]: each invocation
// gathers one output element, so writes are contiguous and reads follow the permutation.
#include "index.glsl"
#include "broadcast.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push {
    uint n;
    uint rank;
    uint dims[MAX_RANK];        // output shape
    uint src_strides[MAX_RANK]; // input stride of the axis that lands on each output axis
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    result[i] = x[strided_offset(i, rank, dims, src_strides)];
}
