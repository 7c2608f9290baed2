#version 450
// out[b] = concat(a[b], s[b]) along channels: a [B, CA, HW], s [B, CS, HW] -> [B, CA+CS, HW].
// The channel append of minibatch_stddev (src/ops/minibatch_stddev.rs).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer a;
layout(binding = 1, r32f) readonly uniform imageBuffer s;
layout(binding = 2, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; uint ca; uint cs; uint hw; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint per_a = ca * hw;
    uint per_sample = per_a + cs * hw;
    uint b = i / per_sample;
    uint rem = i - b * per_sample;
    imageStore(result, int(i), vec4(rem < per_a ? imageLoad(a, int(b * per_a + rem)).x : imageLoad(s, int(b * cs * hw + rem - per_a)).x));
}
