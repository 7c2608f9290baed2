#version 450
// out[i] = x[offset of i's coordinates under the permuted input strides]: each invocation
// gathers one output element, so writes are contiguous and reads follow the permutation.
#include "index.glsl"
#include "broadcast.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer x;
layout(binding = 1, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push {
    uint n;
    uint rank;
    uint dims[MAX_RANK];        // output shape
    uint src_strides[MAX_RANK]; // input stride of the axis that lands on each output axis
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    imageStore(result, int(i), vec4(imageLoad(x, int(strided_offset(i, rank, dims, src_strides))).x));
}
