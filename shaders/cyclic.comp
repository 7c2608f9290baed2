#version 450
// Cyclic folds of a flat tensor x (n elements) onto `parts` slots and back, one kernel per
// fold (build.rs's OP_VARIANTS defines one OP_ macro):
// OP_SUM: out[i] = sum_{j = i mod parts} x[j];  OP_SUM_SQUARES: the same over x[j]^2
// (i < parts);  OP_EXPAND: out[j] = x[j mod parts] (j < n).
// Invocation i of a fold reads x[i], x[i + parts], ...: neighbouring invocations read
// neighbouring elements, and each slot is a sequential f32 sum (deterministic).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push { uint n; uint parts; };

void main() {
    uint i = flat_index();
#if defined(OP_EXPAND)
    if (i >= n) return;
    STORE(result, i, LOAD(x, i % parts));
#elif defined(OP_SUM) || defined(OP_SUM_SQUARES)
    if (i >= parts) return;
    float acc = 0.0;
    for (uint j = i; j < n; j += parts) {
        float v = LOAD(x, j);
#if defined(OP_SUM_SQUARES)
        acc += v * v;
#else
        acc += v;
#endif
    }
    STORE(result, i, acc);
#else
#error "cyclic.comp is built once per OP_ define listed in build.rs"
#endif
}
