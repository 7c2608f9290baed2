#version 450
// C[M,N] = alpha * op(A) op(B), op(A) logical [M,K], op(B) logical [K,N], all row-major.
// a and b come through rgba32f texel views (lavapipe moves texels with vector code, storage-
// buffer elements lane by lane).
// ta: a is stored [K,M] (A = a^T); tb: b is stored [N,K] (B = b^T). Transposes are read in
// place through the layout, never copied.
//
// Register-blocked, no shared memory and no barrier (lavapipe runs a workgroup on one thread
// and turns barriers into coroutine switches): each invocation accumulates a TM x 4 tile of C
// over K in steps of 4, with every load a vec4 along whichever axis is contiguous in memory.
// x runs along column tiles; a workgroup covers one row tile (gl_WorkGroupID.y), so the A loads
// are uniform across the group. The host picks this kernel only when the vec4 loads are whole:
// (ta ? M : K) % 4 == 0 and (tb ? K : N) % 4 == 0, and K % 4 == 0 unless ta && !tb (the only
// layout that loads nothing along K, so it takes K's remainder one step at a time).
#include "io.glsl"
#define TM 8
layout(local_size_x = 64) in;
IN_RGBA32F(0, a4);
IN_RGBA32F(1, b4);
OUT_R32F(2, c);
layout(push_constant) uniform Push {
    uint M;
    uint N;
    uint K;
    uint ta;
    uint tb;
    float alpha;
};

vec4 acc[TM];

void tile(bool trans_a, bool trans_b, uint m0, uint n0) {
    for (int r = 0; r < TM; ++r) acc[r] = vec4(0.0);
    // Rows past M (the last row tile) and columns past N (tb only) are clamped to valid
    // memory; their results are never stored.
    uint mrow[TM];
    for (int r = 0; r < TM; ++r) mrow[r] = min(m0 + uint(r), M - 1u);
    uint m4[TM / 4];
    for (int q = 0; q < TM / 4; ++q) m4[q] = min(m0 / 4u + uint(q), M / 4u - 1u);
    uint ncol[4];
    for (int j = 0; j < 4; ++j) ncol[j] = min(n0 + uint(j), N - 1u);
    uint K4 = K / 4u, M4 = M / 4u, N4 = N / 4u;
    for (uint k4 = 0u; k4 < K4; ++k4) {
        uint k0 = k4 * 4u;
        // arow[r][kk] = A[m0 + r, k0 + kk]
        vec4 arow[TM];
        if (!trans_a) {
            for (int r = 0; r < TM; ++r) arow[r] = LOAD4(a4, mrow[r] * K4 + k4);
        } else {
            for (int q = 0; q < TM / 4; ++q) {
                vec4 col0 = LOAD4(a4, (k0 + 0u) * M4 + m4[q]);
                vec4 col1 = LOAD4(a4, (k0 + 1u) * M4 + m4[q]);
                vec4 col2 = LOAD4(a4, (k0 + 2u) * M4 + m4[q]);
                vec4 col3 = LOAD4(a4, (k0 + 3u) * M4 + m4[q]);
                for (int r = 0; r < 4; ++r) {
                    arow[4 * q + r] = vec4(col0[r], col1[r], col2[r], col3[r]);
                }
            }
        }
        // bk[kk][j] = B[k0 + kk, n0 + j]
        vec4 bk[4];
        if (!trans_b) {
            for (int kk = 0; kk < 4; ++kk) bk[kk] = LOAD4(b4, (k0 + uint(kk)) * N4 + n0 / 4u);
        } else {
            vec4 col[4];
            for (int j = 0; j < 4; ++j) col[j] = LOAD4(b4, ncol[j] * K4 + k4);
            for (int kk = 0; kk < 4; ++kk) {
                bk[kk] = vec4(col[0][kk], col[1][kk], col[2][kk], col[3][kk]);
            }
        }
        for (int r = 0; r < TM; ++r) {
            acc[r] += arow[r].x * bk[0];
            acc[r] += arow[r].y * bk[1];
            acc[r] += arow[r].z * bk[2];
            acc[r] += arow[r].w * bk[3];
        }
    }
    if (trans_a && !trans_b) {
        for (uint k = K4 * 4u; k < K; ++k) {
            vec4 brow = LOAD4(b4, k * N4 + n0 / 4u);
            for (int q = 0; q < TM / 4; ++q) {
                vec4 col = LOAD4(a4, k * M4 + m4[q]);
                for (int r = 0; r < 4; ++r) acc[4 * q + r] += col[r] * brow;
            }
        }
    }
}

void main() {
    uint n0 = gl_GlobalInvocationID.x * 4u;
    uint m0 = gl_WorkGroupID.y * uint(TM);
    if (n0 >= N) return;
    // Constant arguments let the optimiser specialise each call's loop.
    if (ta == 0u) {
        if (tb == 0u) tile(false, false, m0, n0); else tile(false, true, m0, n0);
    } else {
        if (tb == 0u) tile(true, false, m0, n0); else tile(true, true, m0, n0);
    }
    for (int r = 0; r < TM; ++r) {
        uint m = m0 + uint(r);
        if (m >= M) break;
        for (int j = 0; j < 4; ++j) {
            if (n0 + uint(j) < N) STORE(c, m * N + n0 + uint(j), alpha * acc[r][j]);
        }
    }
}
