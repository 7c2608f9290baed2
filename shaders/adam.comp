#version 450
// One Adam step (torch.optim.Adam without weight decay), in place on param, m and v:
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// t is a graph parameter (the step, from 1). `done` is the op's placeholder output.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) uniform imageBuffer p;
layout(binding = 1, r32f) uniform imageBuffer m;
layout(binding = 2, r32f) uniform imageBuffer v;
layout(binding = 3, r32f) readonly uniform imageBuffer g;
layout(binding = 4, r32f) writeonly uniform imageBuffer done;
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
    if (i == 0u) imageStore(done, int(0), vec4(0.0));
    if (i >= n) return;
    float bc1 = 1.0 - power(beta1, step);
    float bc2 = 1.0 - power(beta2, step);
    float gi = imageLoad(g, int(i)).x;
    float mi = beta1 * imageLoad(m, int(i)).x + (1.0 - beta1) * gi;
    float vi = beta2 * imageLoad(v, int(i)).x + (1.0 - beta2) * gi * gi;
    imageStore(m, int(i), vec4(mi));
    imageStore(v, int(i), vec4(vi));
    float denom = sqrt(vi) / sqrt(bc2) + eps;
    imageStore(p, int(i), vec4(imageLoad(p, int(i)).x - (lr / bc1) * mi / denom));
}
