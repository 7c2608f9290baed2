#version 450
// C[M,N] = alpha * op(A) op(B) for the shapes the register-blocked `matmul` kernel cannot load
// as whole vec4s (odd sizes, which the model meets only in tiny products): one output element
// per invocation, operands read through strides, so either may be transposed in place.
// A[m,k] = a[m * a_sm + k * a_sk], B[k,n] = b[k * b_sk + n * b_sn].
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer C { float c[]; };
layout(push_constant) uniform Push {
    uint M;
    uint N;
    uint K;
    uint a_sm;
    uint a_sk;
    uint b_sk;
    uint b_sn;
    float alpha;
};

void main() {
    uint i = flat_index();
    if (i >= M * N) return;
    uint m = i / N;
    uint n = i % N;
    float acc = 0.0;
    for (uint k = 0u; k < K; ++k) acc += a[m * a_sm + k * a_sk] * b[k * b_sk + n * b_sn];
    c[i] = alpha * acc;
}
