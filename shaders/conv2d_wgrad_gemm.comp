#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a K x K convolution as a workgroup-tiled GEMM, the GPU family's kernel:
//   dw[z][o, k] = sum_{n in split z} g[o, n] X[k, n],   n = (b, oy, ox),  k = (c, ky, kx),
//   X[k, n] = x[b, c, oy+ky-P, ox+kx-P] (zero outside the plane; im2col, never materialized).
// A workgroup of 64 computes 32 output channels x 32 values of k, staging 16 pixels of g and
// of X at a time through 4 KB of shared memory; each invocation keeps 4 x 4 sums. The
// workgroup's z coordinate is the batch split (images [z * per_split, ...)); with more than
// one split, conv2d_wgrad_reduce adds the splits in order. Sums run in a fixed order: no
// atomics. Bindings and push block are those of conv2d_wgrad_tile.glsl.
// The build conv2d_wgrad_gemm_scaled (FUSE_SCALED, build.rs) takes x * s[b, c] for x, s [B, C]
// at binding 3: each X element is scaled as it is staged, so the weight gradient of a
// modulated convolution (ops::conv2d_scaled) needs no scaled copy of its input. The product is
// rounded to f32 before the sums, as the unfused multiply's is, so both give the same bits.
#include "io.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
IN_R32F(1, g);
layout(std430, binding = 2) writeonly buffer Out { float dw[]; };
#ifdef FUSE_SCALED
IN_R32F(3, s);
#endif
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    int P;
    uint per_split;
};

#define BM 32
#define BN 32
#define BK 16

shared float Gs[BK][BM];
shared float Xs[BK][BN];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint k0 = gl_WorkGroupID.x * uint(BN);
    uint o0 = gl_WorkGroupID.y * uint(BM);
    uint KS = (H + 2u * uint(P) + 1u) - HO;
    uint KK = KS * KS;
    uint KTOT = C * KK;
    uint HWO = HO * WO;
    uint b_begin = gl_WorkGroupID.z * per_split;
    uint b_end = min(B, b_begin + per_split);
    uint n_begin = b_begin * HWO;
    uint n_end = b_end * HWO;

    // Loads: pixel column t % 16 of the chunk, rows t / 16 + 4 r of the g and X tiles.
    uint lcol = t % 16u;
    uint lrow = t / 16u;
    uint kc[8];
    int ky[8];
    int kx[8];
    bool k_ok[8];
    [[unroll]] for (int r = 0; r < 8; r++) {
        uint k = k0 + lrow + 4u * uint(r);
        k_ok[r] = k < KTOT;
        uint kk = k_ok[r] ? k : 0u;
        kc[r] = kk / KK;
        uint tap = kk - kc[r] * KK;
        ky[r] = int(tap / KS);
        kx[r] = int(tap) - ky[r] * int(KS);
    }

    uint to = (t / 8u) * 4u;
    uint tk = (t % 8u) * 4u;
    float acc[4][4];
    [[unroll]] for (int q = 0; q < 4; q++)
        [[unroll]] for (int j = 0; j < 4; j++) acc[q][j] = 0.0;

    for (uint n0 = n_begin; n0 < n_end; n0 += uint(BK)) {
        uint n = n0 + lcol;
        bool n_ok = n < n_end;
        uint b = n_ok ? n / HWO : 0u;
        uint p = n - b * HWO;
        int oy = int(p / WO);
        int ox = int(p) - oy * int(WO);
        [[unroll]] for (int r = 0; r < 8; r++) {
            uint o = o0 + lrow + 4u * uint(r);
            float gv = 0.0;
            if (n_ok && o < O) gv = LOAD(g, (b * O + o) * HWO + p);
            Gs[lcol][lrow + 4u * uint(r)] = gv;
            float xv = 0.0;
            int iy = oy + ky[r] - P;
            int ix = ox + kx[r] - P;
            if (n_ok && k_ok[r] && iy >= 0 && iy < int(H) && ix >= 0 && ix < int(W)) {
                xv = LOAD(x, ((b * C + kc[r]) * H + uint(iy)) * W + uint(ix));
#ifdef FUSE_SCALED
                xv *= LOAD(s, b * C + kc[r]);
#endif
            }
            Xs[lcol][lrow + 4u * uint(r)] = xv;
        }
        barrier();
        [[unroll]] for (int nn = 0; nn < BK; nn++) {
            float a[4];
            float xk[4];
            [[unroll]] for (int q = 0; q < 4; q++) a[q] = Gs[nn][to + uint(q)];
            [[unroll]] for (int j = 0; j < 4; j++) xk[j] = Xs[nn][tk + uint(j)];
            [[unroll]] for (int q = 0; q < 4; q++)
                [[unroll]] for (int j = 0; j < 4; j++) acc[q][j] += a[q] * xk[j];
        }
        barrier();
    }

    uint base = gl_WorkGroupID.z * O * KTOT;
    [[unroll]] for (int q = 0; q < 4; q++) {
        uint o = o0 + to + uint(q);
        [[unroll]] for (int j = 0; j < 4; j++) {
            uint k = k0 + tk + uint(j);
            if (o < O && k < KTOT) dw[base + o * KTOT + k] = acc[q][j];
        }
    }
}
