#version 450
#extension GL_EXT_control_flow_attributes : require
// 2-D convolution (and its input gradient) as a workgroup-tiled implicit GEMM, the GPU
// family's kernel:
//   y[o, n] = bias[o] + sum_k A[k, o] X[k, n],   n = (b, oy, ox),  k = (c, ky, kx),
//   A[k, o] = the kernel packed by conv2d_wpack (4 output channels a texel),
//   X[k, n] = x[b, c, oy+ky-P, ox+kx-P] (zero outside the plane: im2col, never materialized).
// A workgroup of 64 computes a BM x BN = 32-channel x 64-pixel tile, BK = 8 values of k at a
// time staged through 3 KB of shared memory: each A and X element loaded from memory is used
// by 8 and 32 invocations' products. Each invocation keeps 4 channels x 8 pixels of sums; its
// pixels are 8 apart so that neighbouring invocations write neighbouring outputs.
// Bindings and push block: conv2d_layout.glsl (tiles_x is unused here).
// The build conv2d_gemm_scaled (FUSE_SCALED, build.rs) convolves x * s[b, c] instead, s [B, C]
// bound after the layout's bindings: each X element is scaled as it is staged, so the scaled
// input (a full activation in a style block) is never written nor read back. It rounds the
// product to f32 before the sums, as the unfused multiply does, so both give the same bits.
// The build conv2d_gemm_style (FUSE_STYLE, ops::style_conv) scales the same way and stores a
// style block's output stage instead of y:
//   out[b, o, p] = lrelu(y[b, o, p] * d[b, o] + scale * noise[b, 0, p] + bias[o])
// with d [B, O], noise [B, 1, HO WO] and scale [1] bound after s (the noise term only where
// has_noise), bias at the layout's binding (has_bias is 0: the convolution adds none itself)
// and the slope act_slope; the same operations in the same order as style_epilogue.comp, so
// that fused and unfused give the same bits where the compiler does not contract them.
#include "conv2d_layout.glsl"
#if defined(FUSE_SCALED) || defined(FUSE_STYLE)
#define SCALED_LOAD
IN_R32F(4, s);
#endif
#ifdef FUSE_STYLE
IN_R32F(5, demod);
IN_R32F(6, noise);
IN_R32F(7, noise_scale);
#endif

#define BM 32
#define BN 64
#define BK 8

shared float As[BK][BM];
shared float Xs[BK][BN];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint n0 = gl_WorkGroupID.x * uint(BN);
    uint o0 = gl_WorkGroupID.y * uint(BM);
    uint KK = K * K;
    uint KTOT = C * KK;
    uint HWO = HO * WO;
    uint N = B * HWO;
    uint O4 = (O + 3u) / 4u;

    // The pixel this invocation loads X for: column t of the tile.
    uint n_load = n0 + t;
    bool n_ok = n_load < N;
    uint lb = n_ok ? n_load / HWO : 0u;
    uint lp = n_load - lb * HWO;
    int loy = int(lp / WO);
    int lox = int(lp - uint(loy) * WO);
    // The A texel this invocation loads: row t / 8, channel group t % 8 of the tile.
    uint a_row = t / 8u;
    uint a_o4 = o0 / 4u + t % 8u;

    uint tm = (t / 8u) * 4u;
    uint tn = t % 8u;
    float acc[4][8];
    [[unroll]] for (int q = 0; q < 4; q++)
        [[unroll]] for (int j = 0; j < 8; j++) acc[q][j] = 0.0;

    for (uint k0 = 0u; k0 < KTOT; k0 += uint(BK)) {
        uint ka = k0 + a_row;
        vec4 av = vec4(0.0);
        if (ka < KTOT && a_o4 < O4) av = LOAD4(w4, ka * O4 + a_o4);
        As[a_row][(t % 8u) * 4u] = av.x;
        As[a_row][(t % 8u) * 4u + 1u] = av.y;
        As[a_row][(t % 8u) * 4u + 2u] = av.z;
        As[a_row][(t % 8u) * 4u + 3u] = av.w;

        uint c = k0 / KK;
        uint tap = k0 - c * KK;
        [[unroll]] for (int r = 0; r < BK; r++) {
            float v = 0.0;
            if (n_ok && c < C) {
                uint ky = tap / K;
                int iy = loy + int(ky) - P;
                int ix = lox + int(tap - ky * K) - P;
                if (iy >= 0 && iy < int(H) && ix >= 0 && ix < int(W)) {
                    v = LOAD(x, ((lb * C + c) * H + uint(iy)) * W + uint(ix));
#ifdef SCALED_LOAD
                    v *= LOAD(s, lb * C + c);
#endif
                }
            }
            Xs[r][t] = v;
            tap++;
            if (tap == KK) {
                tap = 0u;
                c++;
            }
        }
        barrier();

        [[unroll]] for (int kk = 0; kk < BK; kk++) {
            float a[4];
            [[unroll]] for (int q = 0; q < 4; q++) a[q] = As[kk][tm + uint(q)];
            [[unroll]] for (int j = 0; j < 8; j++) {
                float xv = Xs[kk][tn + 8u * uint(j)];
                [[unroll]] for (int q = 0; q < 4; q++) acc[q][j] += a[q] * xv;
            }
        }
        barrier();
    }

    [[unroll]] for (int j = 0; j < 8; j++) {
        uint n = n0 + tn + 8u * uint(j);
        if (n >= N) break;
        uint b = n / HWO;
        uint p = n - b * HWO;
        [[unroll]] for (int q = 0; q < 4; q++) {
            uint o = o0 + tm + uint(q);
            if (o < O) {
                float v = acc[q][j] + (has_bias != 0u ? bias[o] : 0.0);
#ifdef FUSE_STYLE
                v = v * LOAD(demod, b * O + o) + bias[o];
                if (has_noise != 0u) v += LOAD(noise_scale, 0) * LOAD(noise, b * HWO + p);
#endif
                y[(b * O + o) * HWO + p] = activate(v);
            }
        }
    }
}
