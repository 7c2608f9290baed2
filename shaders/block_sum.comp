#version 450
// out[r] = sum of g[k, r] over the blocks k below the crossover (upper == 0) or at or above it
// (upper == 1). Sequential f32 sum per element: deterministic.
#include "index.glsl"
#include "crossover.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer C { float crossover[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push {
    uint row;      // B * d
    uint n_blocks;
    uint upper;
};

void main() {
    uint r = flat_index();
    if (r >= row) return;
    uint c = crossover_blocks(crossover[0], n_blocks);
    uint lo = upper == 0u ? 0u : c;
    uint hi = upper == 0u ? c : n_blocks;
    float acc = 0.0;
    for (uint k = lo; k < hi; ++k) {
        acc += g[k * row + r];
    }
    result[r] = acc;
}
