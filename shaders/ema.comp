#version 450
// One moving-average step in place: target = target * beta + value * fresh, with beta and
// fresh one-element tensors (the step's decay and 1 - decay, from the host). `precise` keeps
// the two products rounded before the sum, as the separate multiplies and add round them, so
// this gives their bits on any device. `done` is the op's placeholder output.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
INOUT_R32F(0, target);
IN_R32F(1, value);
IN_R32F(2, beta);
IN_R32F(3, fresh);
OUT_R32F(4, done);
layout(push_constant) uniform Push { uint n; };

void main() {
    uint i = flat_index();
    if (i == 0u) STORE(done, 0, 0.0);
    if (i >= n) return;
    precise float kept = LOAD(target, i) * LOAD(beta, 0);
    precise float added = LOAD(value, i) * LOAD(fresh, 0);
    precise float r = kept + added;
    STORE(target, i, r);
}
