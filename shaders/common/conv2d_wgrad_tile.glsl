// Weight gradient of a KS x KS convolution over the batches of split z:
//   dw[z][o,c,ky,kx] = sum_{b in split z, oy, ox} g[b,o,oy,ox] * x[b,c,oy+ky-P,ox+kx-P]
// The includer defines KS (kernel size), TO, TC and TW (ops::conv2d sizes its grid by them):
// each invocation keeps TO output channels x TC input channels x KS*KS taps of sums in
// registers and walks the output rows of its split TW columns at a time, loading each g
// element once for TC*KS*KS products and each x element once for up to TO*KS products. Sums
// run in a fixed order (deterministic, no atomics); with more than one split,
// conv2d_wgrad_reduce adds the splits.
#include "io.glsl"
#if !defined(KS) || !defined(TO) || !defined(TC) || !defined(TW)
#error "define KS, TO, TC and TW before including conv2d_wgrad_tile.glsl"
#endif
#define XW (TW + KS - 1)
layout(local_size_x = 64) in;
IN_R32F(0, x);
IN_R32F(1, g);
layout(std430, binding = 2) writeonly buffer Out { float dw[]; };
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    int P;
    uint per_split;
};

void main() {
    uint CB = (C + uint(TC) - 1u) / uint(TC);
    uint OB = (O + uint(TO) - 1u) / uint(TO);
    uint id = gl_GlobalInvocationID.x;
    if (id >= CB * OB) return;
    uint c0 = (id % CB) * uint(TC);
    uint o0 = (id / CB) * uint(TO);
    uint b_begin = gl_WorkGroupID.z * per_split;
    uint b_end = min(B, b_begin + per_split);

    float acc[TO][TC][KS * KS];
    [[unroll]] for (int t = 0; t < TO; t++)
        [[unroll]] for (int q = 0; q < TC; q++)
            [[unroll]] for (int k = 0; k < KS * KS; k++) acc[t][q][k] = 0.0;

    // Channels past the end repeat the last one; their sums are never stored.
    uint orow[TO];
    [[unroll]] for (int t = 0; t < TO; t++) orow[t] = min(o0 + uint(t), O - 1u);
    uint crow[TC];
    [[unroll]] for (int q = 0; q < TC; q++) crow[q] = min(c0 + uint(q), C - 1u);

    for (uint b = b_begin; b < b_end; b++) {
        for (uint oy = 0; oy < HO; oy++) {
            for (uint ox0 = 0; ox0 < WO; ox0 += uint(TW)) {
                float xr[TC][KS][XW];
                [[unroll]] for (int q = 0; q < TC; q++) {
                    uint plane = (b * C + crow[q]) * H * W;
                    [[unroll]] for (int ky = 0; ky < KS; ky++) {
                        int iy = int(oy) + ky - P;
                        bool row_ok = iy >= 0 && iy < int(H);
                        uint rowbase = plane + uint(clamp(iy, 0, int(H) - 1)) * W;
                        [[unroll]] for (int j = 0; j < XW; j++) {
                            int ix = int(ox0) - P + j;
                            float v = LOAD(x, int(rowbase) + clamp(ix, 0, int(W) - 1));
                            xr[q][ky][j] = (row_ok && ix >= 0 && ix < int(W)) ? v : 0.0;
                        }
                    }
                }
                [[unroll]] for (int t = 0; t < TO; t++) {
                    uint grow = ((b * O + orow[t]) * HO + oy) * WO;
                    float gv[TW];
                    [[unroll]] for (int j = 0; j < TW; j++) {
                        uint ox = min(ox0 + uint(j), WO - 1u);
                        float v = LOAD(g, grow + ox);
                        gv[j] = ox0 + uint(j) < WO ? v : 0.0;
                    }
                    [[unroll]] for (int q = 0; q < TC; q++)
                        [[unroll]] for (int ky = 0; ky < KS; ky++)
                            [[unroll]] for (int kx = 0; kx < KS; kx++) {
                                float s = 0.0;
                                [[unroll]] for (int j = 0; j < TW; j++) s += gv[j] * xr[q][ky][j + kx];
                                acc[t][q][ky * KS + kx] += s;
                            }
                }
            }
        }
    }

    uint base = gl_WorkGroupID.z * O * C * uint(KS * KS);
    [[unroll]] for (int t = 0; t < TO; t++) {
        uint o = o0 + uint(t);
        [[unroll]] for (int q = 0; q < TC; q++) {
            uint c = c0 + uint(q);
            if (o < O && c < C) {
                [[unroll]] for (int k = 0; k < KS * KS; k++)
                    dw[base + (o * C + c) * uint(KS * KS) + uint(k)] = acc[t][q][k];
            }
        }
    }
}
