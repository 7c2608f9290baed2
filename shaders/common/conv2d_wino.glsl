// 3x3 convolution (and its input gradient) by Winograd's minimal filtering F(2x2, 3x3). Each
// 2x2 block of outputs is
//   Y = A^T [ sum_c U_c (.) (B^T d_c B) ] A
// with d_c the 4x4 input patch of channel c under the block (zero outside the plane),
// U_c = G g_c G^T the transformed kernel of channel c (conv2d_wino_pack.comp) and
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1].
// That is 16 products per block and channel where the direct form (conv2d_tile.glsl) needs
// 36; the sums stay in the transformed domain until every channel is in, so the output
// transform runs once per block.
//
// The includer defines TO (output channels, a multiple of 4), TH and TW (output rows and
// columns per invocation, both even) and CU (input channels per loop iteration). Tiles and
// bindings are in conv2d_layout.glsl; input loads and stores follow conv2d_tile.glsl. CU > 1 is for CPU drivers: llvmpipe writes every
// loop-carried value through the loop's lane mask (a blend) and keeps the TO*TH*TW*4 sums in
// stack memory, so each sum is loaded, blended and stored once per iteration; with one product
// per sum per channel that costs more than the product unless an iteration covers several
// channels. Past the last channel, an iteration's spare channels read zeros.
#include "conv2d_layout.glsl"
#include "conv2d_blocks.glsl"

// 2x2 blocks per invocation, down and across.
#define BY (TH / 2)
#define BX (TW / 2)

void main() {
    uint b, o0;
    int oy0, ox0;
    if (!conv_tile(b, oy0, ox0, o0)) return;

    vec4 m[TO / 4][BY][BX][16];
    [[unroll]] for (int q = 0; q < TO / 4; q++)
        [[unroll]] for (int by = 0; by < BY; by++)
            [[unroll]] for (int bx = 0; bx < BX; bx++)
                [[unroll]] for (int e = 0; e < 16; e++) m[q][by][bx][e] = vec4(0.0);

    uint O4 = (O + 3u) / 4u;
    uint ob[TO / 4];
    channel_blocks(o0, O4, ob);

    for (uint c0 = 0; c0 < C; c0 += CU) {
      // This iteration's products, added to m once at its end.
      vec4 s[TO / 4][BY][BX][16];
      [[unroll]] for (uint u = 0; u < CU; u++) {
        uint c = min(c0 + u, C - 1u);
        bool c_ok = c0 + u < C;
        uint plane = (b * C + c) * H * W;
        float xr[TH + 2][TW + 2];
        [[unroll]] for (int r = 0; r < TH + 2; r++) {
            int iy = oy0 + r - P;
            bool row_ok = c_ok && iy >= 0 && iy < int(H);
            uint rowbase = plane + uint(clamp(iy, 0, int(H) - 1)) * W;
            [[unroll]] for (int j = 0; j < TW + 2; j++) {
                int ix = ox0 - P + j;
                float v = LOAD(x, int(rowbase) + clamp(ix, 0, int(W) - 1));
                xr[r][j] = (row_ok && ix >= 0 && ix < int(W)) ? v : 0.0;
            }
        }
        // v = B^T d B for every block: rows first, then columns.
        float v[BY][BX][16];
        [[unroll]] for (int by = 0; by < BY; by++) {
            [[unroll]] for (int bx = 0; bx < BX; bx++) {
                float t[4][4];
                [[unroll]] for (int s = 0; s < 4; s++) {
                    float d0 = xr[2 * by][2 * bx + s], d1 = xr[2 * by + 1][2 * bx + s];
                    float d2 = xr[2 * by + 2][2 * bx + s], d3 = xr[2 * by + 3][2 * bx + s];
                    t[0][s] = d0 - d2;
                    t[1][s] = d1 + d2;
                    t[2][s] = d2 - d1;
                    t[3][s] = d1 - d3;
                }
                [[unroll]] for (int r = 0; r < 4; r++) {
                    v[by][bx][4 * r] = t[r][0] - t[r][2];
                    v[by][bx][4 * r + 1] = t[r][1] + t[r][2];
                    v[by][bx][4 * r + 2] = t[r][2] - t[r][1];
                    v[by][bx][4 * r + 3] = t[r][1] - t[r][3];
                }
            }
        }
        [[unroll]] for (int q = 0; q < TO / 4; q++) {
            [[unroll]] for (int e = 0; e < 16; e++) {
                vec4 uv = LOAD4(w4, (c * 16u + uint(e)) * O4 + ob[q]);
                [[unroll]] for (int by = 0; by < BY; by++)
                    [[unroll]] for (int bx = 0; bx < BX; bx++) {
                        if (u == 0) s[q][by][bx][e] = uv * v[by][bx][e];
                        else s[q][by][bx][e] += uv * v[by][bx][e];
                    }
            }
        }
      }
      [[unroll]] for (int q = 0; q < TO / 4; q++)
        [[unroll]] for (int by = 0; by < BY; by++)
            [[unroll]] for (int bx = 0; bx < BX; bx++)
                [[unroll]] for (int e = 0; e < 16; e++) m[q][by][bx][e] += s[q][by][bx][e];
    }

    // Y = A^T M A per block, four output channels at a time.
    [[unroll]] for (int q = 0; q < TO / 4; q++) {
        vec4 bv = vec4(0.0);
        [[unroll]] for (int k = 0; k < 4; k++) {
            uint o = o0 + uint(4 * q + k);
            if (has_bias != 0u && o < O) bv[k] = bias[o];
        }
        [[unroll]] for (int by = 0; by < BY; by++) {
            [[unroll]] for (int bx = 0; bx < BX; bx++) {
                vec4 r0[4], r1[4];
                [[unroll]] for (int s = 0; s < 4; s++) {
                    r0[s] = m[q][by][bx][s] + m[q][by][bx][4 + s] + m[q][by][bx][8 + s];
                    r1[s] = m[q][by][bx][4 + s] - m[q][by][bx][8 + s] - m[q][by][bx][12 + s];
                }
                vec4 yv[2][2];
                yv[0][0] = r0[0] + r0[1] + r0[2];
                yv[0][1] = r0[1] - r0[2] - r0[3];
                yv[1][0] = r1[0] + r1[1] + r1[2];
                yv[1][1] = r1[1] - r1[2] - r1[3];
                [[unroll]] for (int k = 0; k < 4; k++) {
                    uint o = o0 + uint(4 * q + k);
                    if (o >= O) break;
                    [[unroll]] for (int h = 0; h < 2; h++) {
                        uint oy = uint(oy0 + 2 * by + h);
                        if (oy >= HO) break;
                        uint out_row = ((b * O + o) * HO + oy) * WO;
                        [[unroll]] for (int j = 0; j < 2; j++) {
                            uint ox = uint(ox0 + 2 * bx + j);
                            if (ox < WO) y[out_row + ox] = activate(yv[h][j][k] + bv[k]);
                        }
                    }
                }
            }
        }
    }
}
