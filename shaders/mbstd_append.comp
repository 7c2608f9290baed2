#version 450
// out[b] = concat(a[b], s[b]) along channels: a [B, CA, HW], s [B, CS, HW] -> [B, CA+CS, HW].
// The channel append of minibatch_stddev (src/ops/minibatch_stddev.rs).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, a);
IN_R32F(1, s);
OUT_R32F(2, result);
layout(push_constant) uniform Push { uint n; uint ca; uint cs; uint hw; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint per_a = ca * hw;
    uint per_sample = per_a + cs * hw;
    uint b = i / per_sample;
    uint rem = i - b * per_sample;
    STORE(result, i, rem < per_a ? LOAD(a, b * per_a + rem) : LOAD(s, b * cs * hw + rem - per_a));
}
