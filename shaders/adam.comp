#version 450
// One Adam step (torch.optim.Adam without weight decay), in place on param, m and v:
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// t is a graph parameter (the step, from 1). `done` is the op's placeholder output.
// The build adam_scaled (FUSE_SCALED, ops::adam_step_scaled) takes g * coef for g, coef a
// one-element tensor (the gradient clipping's factor): the product is rounded on its own
// (`precise`), as the separate multiply rounds it, so both give the same bits.
// adam_vec4.comp is the same update four elements an invocation.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
INOUT_R32F(0, p);
INOUT_R32F(1, m);
INOUT_R32F(2, v);
IN_R32F(3, g);
OUT_R32F(4, done);
#ifdef FUSE_SCALED
IN_R32F(5, coef);
#endif
layout(push_constant) uniform Push { uint n; float lr; float beta1; float beta2; float eps; uint step; };

#define ADAM_T float
#include "adam_f.glsl"

void main() {
    uint i = flat_index();
    if (i == 0u) STORE(done, 0, 0.0);
    if (i >= n) return;
#ifdef FUSE_SCALED
    precise float gi = LOAD(g, i) * LOAD(coef, 0);
#else
    float gi = LOAD(g, i);
#endif
    float mi = LOAD(m, i);
    float vi = LOAD(v, i);
    float pi = adam_update(LOAD(p, i), mi, vi, gi, 1.0 - power(beta1, step), 1.0 - power(beta2, step));
    STORE(m, i, mi);
    STORE(v, i, vi);
    STORE(p, i, pi);
}
