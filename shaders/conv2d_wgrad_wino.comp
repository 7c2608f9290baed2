#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 3x3 convolution by Winograd's F(2x2, 3x3) run backwards, over the
// batches of split z:
//   dw[z][o,c,ky,kx] = sum_{b in split z, oy, ox} g[b,o,oy,ox] * x[b,c,oy+ky-P,ox+kx-P].
// The forward F(2x2, 3x3) writes a 2x2 block of outputs as Y = A^T [(G w G^T) (.) (B^T d B)] A,
// a trilinear form in (Y's cotangent E, w, d); its derivative in w is, per 2x2 block of g (E)
// and the 4x4 patch d of x under it,
//   dw = G^T [ (A E A^T) (.) (B^T d B) ] G,
// with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1] and
// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. The products are summed over every block and
// image in the transformed domain (16 products per block and channel pair where the direct
// form, conv2d_wgrad3.comp, needs 36), and G^T M G runs once per invocation at the end.
//
// Each invocation keeps TO output x TC input channels x 16 sums and walks its split's output
// rows two at a time, TW columns (TW / 2 blocks) a step; a step's products are added to the
// sums once at its end, because llvmpipe loads, blends and stores every loop-carried value
// once per iteration. Sums run in a fixed order (deterministic, no atomics); with more than
// one split, conv2d_wgrad_reduce adds the splits.
#include "io.glsl"
#define TO 16
#define TC 4
#define TW 4
#define BX (TW / 2)
#define XW (TW + 2)
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

    float m[TO][TC][16];
    [[unroll]] for (int t = 0; t < TO; t++)
        [[unroll]] for (int q = 0; q < TC; q++)
            [[unroll]] for (int e = 0; e < 16; e++) m[t][q][e] = 0.0;

    // Channels past the end repeat the last one; their sums are never stored.
    uint orow[TO];
    [[unroll]] for (int t = 0; t < TO; t++) orow[t] = min(o0 + uint(t), O - 1u);
    uint crow[TC];
    [[unroll]] for (int q = 0; q < TC; q++) crow[q] = min(c0 + uint(q), C - 1u);

    for (uint b = b_begin; b < b_end; b++) {
        for (uint oy = 0; oy < HO; oy += 2u) {
            for (uint ox0 = 0; ox0 < WO; ox0 += uint(TW)) {
                // v = B^T d B for every block and input channel: rows first, then columns.
                float v[TC][BX][16];
                [[unroll]] for (int q = 0; q < TC; q++) {
                    uint plane = (b * C + crow[q]) * H * W;
                    float xr[4][XW];
                    [[unroll]] for (int r = 0; r < 4; r++) {
                        int iy = int(oy) + r - P;
                        bool row_ok = iy >= 0 && iy < int(H);
                        uint rowbase = plane + uint(clamp(iy, 0, int(H) - 1)) * W;
                        [[unroll]] for (int j = 0; j < XW; j++) {
                            int ix = int(ox0) - P + j;
                            float xv = LOAD(x, int(rowbase) + clamp(ix, 0, int(W) - 1));
                            xr[r][j] = (row_ok && ix >= 0 && ix < int(W)) ? xv : 0.0;
                        }
                    }
                    [[unroll]] for (int bx = 0; bx < BX; bx++) {
                        float tr[4][4];
                        [[unroll]] for (int s = 0; s < 4; s++) {
                            float d0 = xr[0][2 * bx + s], d1 = xr[1][2 * bx + s];
                            float d2 = xr[2][2 * bx + s], d3 = xr[3][2 * bx + s];
                            tr[0][s] = d0 - d2;
                            tr[1][s] = d1 + d2;
                            tr[2][s] = d2 - d1;
                            tr[3][s] = d1 - d3;
                        }
                        [[unroll]] for (int r = 0; r < 4; r++) {
                            v[q][bx][4 * r] = tr[r][0] - tr[r][2];
                            v[q][bx][4 * r + 1] = tr[r][1] + tr[r][2];
                            v[q][bx][4 * r + 2] = tr[r][2] - tr[r][1];
                            v[q][bx][4 * r + 3] = tr[r][1] - tr[r][3];
                        }
                    }
                }
                [[unroll]] for (int t = 0; t < TO; t++) {
                    // The block's g values, zero past the plane's last row or column.
                    float gr[2][TW];
                    [[unroll]] for (int h = 0; h < 2; h++) {
                        uint gy = oy + uint(h);
                        uint grow = ((b * O + orow[t]) * HO + min(gy, HO - 1u)) * WO;
                        [[unroll]] for (int j = 0; j < TW; j++) {
                            uint ox = ox0 + uint(j);
                            float gv = LOAD(g, grow + min(ox, WO - 1u));
                            gr[h][j] = (gy < HO && ox < WO) ? gv : 0.0;
                        }
                    }
                    float s[TC][16];
                    [[unroll]] for (int bx = 0; bx < BX; bx++) {
                        // u = A E A^T: A e = (e0, e0 + e1, e0 - e1, -e1) along rows, then columns.
                        float ar[2][4];
                        [[unroll]] for (int h = 0; h < 2; h++) {
                            float e0 = gr[h][2 * bx], e1 = gr[h][2 * bx + 1];
                            ar[h][0] = e0;
                            ar[h][1] = e0 + e1;
                            ar[h][2] = e0 - e1;
                            ar[h][3] = -e1;
                        }
                        float u[16];
                        [[unroll]] for (int c = 0; c < 4; c++) {
                            u[c] = ar[0][c];
                            u[4 + c] = ar[0][c] + ar[1][c];
                            u[8 + c] = ar[0][c] - ar[1][c];
                            u[12 + c] = -ar[1][c];
                        }
                        [[unroll]] for (int q = 0; q < TC; q++)
                            [[unroll]] for (int e = 0; e < 16; e++) {
                                if (bx == 0) s[q][e] = u[e] * v[q][bx][e];
                                else s[q][e] += u[e] * v[q][bx][e];
                            }
                    }
                    [[unroll]] for (int q = 0; q < TC; q++)
                        [[unroll]] for (int e = 0; e < 16; e++) m[t][q][e] += s[q][e];
                }
            }
        }
    }

    // dw = G^T M G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]: columns first, then rows.
    uint base = gl_WorkGroupID.z * O * C * 9u;
    [[unroll]] for (int t = 0; t < TO; t++) {
        uint o = o0 + uint(t);
        [[unroll]] for (int q = 0; q < TC; q++) {
            uint c = c0 + uint(q);
            if (o >= O || c >= C) continue;
            float mc[4][3];
            [[unroll]] for (int r = 0; r < 4; r++) {
                float a0 = m[t][q][4 * r], a1 = m[t][q][4 * r + 1];
                float a2 = m[t][q][4 * r + 2], a3 = m[t][q][4 * r + 3];
                mc[r][0] = a0 + 0.5 * (a1 + a2);
                mc[r][1] = 0.5 * (a1 - a2);
                mc[r][2] = 0.5 * (a1 + a2) + a3;
            }
            uint out_base = base + (o * C + c) * 9u;
            [[unroll]] for (int kx = 0; kx < 3; kx++) {
                dw[out_base + uint(kx)] = mc[0][kx] + 0.5 * (mc[1][kx] + mc[2][kx]);
                dw[out_base + 3u + uint(kx)] = 0.5 * (mc[1][kx] - mc[2][kx]);
                dw[out_base + 6u + uint(kx)] = 0.5 * (mc[1][kx] + mc[2][kx]) + mc[3][kx];
            }
        }
    }
}
