#version 450
// Cyclic folds of a flat tensor x (n elements) onto `parts` slots and back:
// mode 0: out[i] = sum_{j = i mod parts} x[j];  mode 1: the same over x[j]^2 (i < parts);
// mode 2: out[j] = x[j mod parts] (j < n).
// Invocation i of a fold reads x[i], x[i + parts], ...: neighbouring invocations read
// neighbouring elements, and each slot is a sequential f32 sum (deterministic).
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push { uint n; uint parts; uint mode; };

void main() {
    uint i = flat_index();
    if (mode == 2u) {
        if (i >= n) return;
        STORE(result, i, LOAD(x, i % parts));
        return;
    }
    if (i >= parts) return;
    float acc = 0.0;
    if (mode == 1u) {
        for (uint j = i; j < n; j += parts) {
            float v = LOAD(x, j);
            acc += v * v;
        }
    } else {
        for (uint j = i; j < n; j += parts) {
            acc += LOAD(x, j);
        }
    }
    STORE(result, i, acc);
}
