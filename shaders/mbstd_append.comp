#version 450
// out[b] = concat(a[b], s[b]) along channels: a [B, CA, HW], s [B, CS, HW] -> [B, CA+CS, HW].
// The channel append of minibatch_stddev (src/ops/minibatch_stddev.rs).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer S { float s[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint ca; uint cs; uint hw; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint per_a = ca * hw;
    uint per_sample = per_a + cs * hw;
    uint b = i / per_sample;
    uint rem = i - b * per_sample;
    result[i] = rem < per_a ? a[b * per_a + rem] : s[b * cs * hw + rem - per_a];
}
