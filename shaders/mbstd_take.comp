#version 450
// out = y[:, start:start+len] along channels: y [B, C, HW] -> [B, len, HW]. The gradient of
// minibatch_stddev's channel append (src/ops/minibatch_stddev.rs).
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer y;
layout(binding = 1, r32f) writeonly uniform imageBuffer result;
layout(push_constant) uniform Push { uint n; uint c; uint start; uint len; uint hw; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint per_out = len * hw;
    uint b = i / per_out;
    uint rem = i - b * per_out;
    imageStore(result, int(i), vec4(imageLoad(y, int(b * c * hw + start * hw + rem)).x));
}
