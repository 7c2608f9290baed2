#version 450
// out[k, r] = k < c ? w1[r] : w2[r] for block k of n_blocks, r over the flattened [B, d].
#include "index.glsl"
#include "crossover.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer W1 { float w1[]; };
layout(std430, binding = 1) readonly buffer W2 { float w2[]; };
layout(std430, binding = 2) readonly buffer C { float crossover[]; };
layout(std430, binding = 3) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push {
    uint n;        // n_blocks * row
    uint row;      // B * d
    uint n_blocks;
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint k = i / row;
    uint r = i % row;
    uint c = crossover_blocks(crossover[0], n_blocks);
    result[i] = k < c ? w1[r] : w2[r];
}
