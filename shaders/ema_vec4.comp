#version 450
// ema.comp's update for tensors of a multiple of 4 elements, one 4-float texel an invocation
// (see unary_vec4.comp), the same rounding on each component. n counts elements, a multiple
// of 4 here.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
INOUT_RGBA32F(0, target);
IN_RGBA32F(1, value);
IN_R32F(2, beta);
IN_R32F(3, fresh);
OUT_R32F(4, done);
layout(push_constant) uniform Push { uint n; };

void main() {
    uint i = flat_index();
    if (i == 0u) STORE(done, 0, 0.0);
    if (i >= n / 4u) return;
    precise vec4 kept = LOAD4(target, i) * LOAD(beta, 0);
    precise vec4 added = LOAD4(value, i) * LOAD(fresh, 0);
    precise vec4 r = kept + added;
    STORE4(target, i, r);
}
