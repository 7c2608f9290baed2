#version 450
// out[i] = x[offset of i's coordinates under the permuted input strides]: each invocation
// gathers one output element, so writes are contiguous and reads follow the permutation.
#include "io.glsl"
#include "index.glsl"
#include "broadcast.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push {
    uint n;
    uint rank;
    uint dims[MAX_RANK];        // output shape
    uint src_strides[MAX_RANK]; // input stride of the axis that lands on each output axis
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    STORE(result, i, LOAD(x, strided_offset(i, rank, dims, src_strides)));
}
