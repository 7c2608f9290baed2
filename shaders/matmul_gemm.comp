#version 450
#extension GL_EXT_control_flow_attributes : require
// C[M,N] = alpha * op(A) op(B), the GPU family's matmul: a workgroup-tiled GEMM for any shape.
// Operands are read through strides, so either may be transposed in place:
// A[m,k] = a[m * a_sm + k * a_sk], B[k,n] = b[k * b_sk + n * b_sn] (bindings and push block
// as matmul_small.comp). A workgroup of 64 computes a 32 x 64 tile of C, staging 8 values of k
// of A and B at a time through 3 KB of shared memory; each invocation keeps 4 x 8 sums, its
// columns 8 apart so that neighbouring invocations write neighbouring outputs.
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

#define BM 32
#define BN 64
#define BK 8

shared float As[BK][BM];
shared float Bs[BK][BN];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint n0 = gl_WorkGroupID.x * uint(BN);
    uint m0 = gl_WorkGroupID.y * uint(BM);
    uint tm = (t / 8u) * 4u;
    uint tn = t % 8u;
    float acc[4][8];
    [[unroll]] for (int q = 0; q < 4; q++)
        [[unroll]] for (int j = 0; j < 8; j++) acc[q][j] = 0.0;

    for (uint k0 = 0u; k0 < K; k0 += uint(BK)) {
        // A: 8 x 32 values, four an invocation; B: 8 x 64, eight an invocation.
        [[unroll]] for (int r = 0; r < 4; r++) {
            uint e = t + 64u * uint(r);
            uint kk = e / uint(BM);
            uint mm = e % uint(BM);
            uint m = m0 + mm;
            uint k = k0 + kk;
            As[kk][mm] = (m < M && k < K) ? a[m * a_sm + k * a_sk] : 0.0;
        }
        [[unroll]] for (int r = 0; r < BK; r++) {
            uint n = n0 + t;
            uint k = k0 + uint(r);
            Bs[r][t] = (n < N && k < K) ? b[k * b_sk + n * b_sn] : 0.0;
        }
        barrier();
        [[unroll]] for (int kk = 0; kk < BK; kk++) {
            float av[4];
            [[unroll]] for (int q = 0; q < 4; q++) av[q] = As[kk][tm + uint(q)];
            [[unroll]] for (int j = 0; j < 8; j++) {
                float bv = Bs[kk][tn + 8u * uint(j)];
                [[unroll]] for (int q = 0; q < 4; q++) acc[q][j] += av[q] * bv;
            }
        }
        barrier();
    }

    [[unroll]] for (int q = 0; q < 4; q++) {
        uint m = m0 + tm + uint(q);
        if (m >= M) break;
        [[unroll]] for (int j = 0; j < 8; j++) {
            uint n = n0 + tn + 8u * uint(j);
            if (n < N) c[m * N + n] = alpha * acc[q][j];
        }
    }
}
