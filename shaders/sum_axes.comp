#version 450
// Sum over chosen axes. Each invocation produces one output element: it walks the reduced
// index space (dims red_dims, input strides red_strides) from the element's base offset (its
// kept coordinates times kept_strides). Sequential f32 sum, so results are deterministic.
#include "index.glsl"
#include "broadcast.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push {
    uint n_out;
    uint n_red;
    uint rank;
    uint kept_dims[MAX_RANK];
    uint kept_strides[MAX_RANK];
    uint red_dims[MAX_RANK];
    uint red_strides[MAX_RANK];
};

void main() {
    uint i = flat_index();
    if (i >= n_out) return;
    uint base = strided_offset(i, rank, kept_dims, kept_strides);
    float acc = 0.0;
    for (uint j = 0u; j < n_red; ++j) {
        acc += x[base + strided_offset(j, rank, red_dims, red_strides)];
    }
    result[i] = acc;
}
