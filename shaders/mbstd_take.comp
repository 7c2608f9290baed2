#version 450
// out = y[:, start:start+len] along channels: y [B, C, HW] -> [B, len, HW]. The gradient of
// minibatch_stddev's channel append (src/ops/minibatch_stddev.rs).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Y { float y[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint c; uint start; uint len; uint hw; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint per_out = len * hw;
    uint b = i / per_out;
    uint rem = i - b * per_out;
    result[i] = y[b * c * hw + start * hw + rem];
}
