#version 450
// out = y[:, start:start+len] along channels: y [B, C, HW] -> [B, len, HW]. The gradient of
// minibatch_stddev's channel append (src/ops/minibatch_stddev.rs).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, y);
OUT_R32F(1, result);
layout(push_constant) uniform Push { uint n; uint c; uint start; uint len; uint hw; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint per_out = len * hw;
    uint b = i / per_out;
    uint rem = i - b * per_out;
    STORE(result, i, LOAD(y, b * c * hw + start * hw + rem));
}
