#version 450
// One Adam step (torch.optim.Adam without weight decay), in place on param, m and v:
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// t is a graph parameter (the step, from 1). `done` is the op's placeholder output.
// The build adam_scaled (FUSE_SCALED, ops::adam_step_scaled) takes g * coef for g, coef a
// one-element tensor (the gradient clipping's factor): the product is rounded on its own
// (`precise`), as the separate multiply rounds it, so both give the same bits.
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

// b^t by repeated squaring: only correctly rounded multiplications, so every device agrees.
float power(float b, uint t) {
    precise float r = 1.0;
    precise float x = b;
    while (t != 0u) {
        if ((t & 1u) != 0u) r = r * x;
        x = x * x;
        t >>= 1;
    }
    return r;
}

void main() {
    uint i = flat_index();
    if (i == 0u) STORE(done, 0, 0.0);
    if (i >= n) return;
    float bc1 = 1.0 - power(beta1, step);
    float bc2 = 1.0 - power(beta2, step);
#ifdef FUSE_SCALED
    precise float gi = LOAD(g, i) * LOAD(coef, 0);
#else
    float gi = LOAD(g, i);
#endif
    float mi = beta1 * LOAD(m, i) + (1.0 - beta1) * gi;
    float vi = beta2 * LOAD(v, i) + (1.0 - beta2) * gi * gi;
    STORE(m, i, mi);
    STORE(v, i, vi);
    float denom = sqrt(vi) / sqrt(bc2) + eps;
    STORE(p, i, LOAD(p, i) - (lr / bc1) * mi / denom);
}
