#version 450
// out[i] = alpha * x[i] + beta * y[i]: the smallest kernel with two inputs and scalar push
// constants, used to check the runtime (barriers, replay, pooling) against the CPU.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; float alpha; float beta; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    result[i] = alpha * x[i] + beta * y[i];
}
