#version 450
// adam.comp's update for tensors of a multiple of 4 elements, one 4-float texel an invocation:
// the bias corrections' repeated squaring, which adam.comp runs for every element, once per
// four, and a texel per access (see unary_vec4.comp). n counts elements, a multiple of 4 here.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
INOUT_RGBA32F(0, p);
INOUT_RGBA32F(1, m);
INOUT_RGBA32F(2, v);
IN_RGBA32F(3, g);
OUT_R32F(4, done);
#ifdef FUSE_SCALED
IN_R32F(5, coef);
#endif
layout(push_constant) uniform Push { uint n; float lr; float beta1; float beta2; float eps; uint step; };

#define ADAM_T vec4
#include "adam_f.glsl"

void main() {
    uint i = flat_index();
    if (i == 0u) STORE(done, 0, 0.0);
    if (i >= n / 4u) return;
#ifdef FUSE_SCALED
    precise vec4 gi = LOAD4(g, i) * LOAD(coef, 0);
#else
    vec4 gi = LOAD4(g, i);
#endif
    vec4 mi = LOAD4(m, i);
    vec4 vi = LOAD4(v, i);
    vec4 pi = adam_update(LOAD4(p, i), mi, vi, gi, 1.0 - power(beta1, step), 1.0 - power(beta2, step));
    STORE4(m, i, mi);
    STORE4(v, i, vi);
    STORE4(p, i, pi);
}
