// 3x3 convolution (and its input gradient) by Winograd's minimal filtering F(WM x WM, 3x3)
// (winograd.glsl). Each WM x WM block of outputs is
//   Y = A^T [ sum_c U_c (.) (B^T d_c B) ] A
// with d_c the WN x WN input patch of channel c under the block (zero outside the plane) and
// U_c = G g_c G^T the transformed kernel of channel c (conv2d_wino_pack.comp, built with the
// same WM). That is WN^2 products per block and channel where the direct form
// (conv2d_tile.glsl) needs 9 WM^2; the sums stay in the transformed domain until every
// channel is in, so the output transform runs once per block.
//
// The includer defines WM, TO (output channels, a multiple of 4), TH and TW (output rows and
// columns per invocation, multiples of WM) and CU (input channels per loop iteration). Tiles
// and bindings are in conv2d_layout.glsl; input loads and stores follow conv2d_tile.glsl. CU >
// 1 is for CPU drivers: llvmpipe writes every loop-carried value through the loop's lane mask
// (a blend) and keeps the TO*TH*TW*WN^2/WM^2 sums in stack memory, so each sum is loaded,
// blended and stored once per iteration; with one product per sum per channel that costs more
// than the product unless an iteration covers several channels. Past the last channel, an
// iteration's spare channels read zeros.
#include "conv2d_layout.glsl"
#include "conv2d_blocks.glsl"

#include "winograd.glsl"
#if TH % WM != 0 || TW % WM != 0
#error "TH and TW must be multiples of WM"
#endif

// Blocks per invocation, down and across.
#define BY (TH / WM)
#define BX (TW / WM)

void main() {
    uint b, o0;
    int oy0, ox0;
    if (!conv_tile(b, oy0, ox0, o0)) return;

    vec4 m[TO / 4][BY][BX][WE];
    [[unroll]] for (int q = 0; q < TO / 4; q++)
        [[unroll]] for (int by = 0; by < BY; by++)
            [[unroll]] for (int bx = 0; bx < BX; bx++)
                [[unroll]] for (int e = 0; e < WE; e++) m[q][by][bx][e] = vec4(0.0);

    uint O4 = (O + 3u) / 4u;
    uint ob[TO / 4];
    channel_blocks(o0, O4, ob);

    for (uint c0 = 0; c0 < C; c0 += CU) {
      // This iteration's products, added to m once at its end.
      vec4 s[TO / 4][BY][BX][WE];
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
        // v = B^T d B for every block: columns first, then rows.
        float v[BY][BX][WE];
        [[unroll]] for (int by = 0; by < BY; by++) {
            [[unroll]] for (int bx = 0; bx < BX; bx++) {
                float t[WN][WN];
                [[unroll]] for (int j = 0; j < WN; j++) {
                    float col[WN], tc[WN];
                    [[unroll]] for (int k = 0; k < WN; k++) col[k] = xr[WM * by + k][WM * bx + j];
                    winograd_input(col, tc);
                    [[unroll]] for (int k = 0; k < WN; k++) t[k][j] = tc[k];
                }
                [[unroll]] for (int r = 0; r < WN; r++) {
                    float tr[WN];
                    winograd_input(t[r], tr);
                    [[unroll]] for (int j = 0; j < WN; j++) v[by][bx][WN * r + j] = tr[j];
                }
            }
        }
        [[unroll]] for (int q = 0; q < TO / 4; q++) {
            [[unroll]] for (int e = 0; e < WE; e++) {
                vec4 uv = LOAD4(w4, (c * uint(WE) + uint(e)) * O4 + ob[q]);
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
                [[unroll]] for (int e = 0; e < WE; e++) m[q][by][bx][e] += s[q][by][bx][e];
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
                // r = A^T M (columns), then yv = r A (rows).
                vec4 r[WM][WN];
                [[unroll]] for (int j = 0; j < WN; j++) {
                    vec4 col[WN], rc[WM];
                    [[unroll]] for (int i = 0; i < WN; i++) col[i] = m[q][by][bx][WN * i + j];
                    winograd_output(col, rc);
                    [[unroll]] for (int h = 0; h < WM; h++) r[h][j] = rc[h];
                }
                vec4 yv[WM][WM];
                [[unroll]] for (int h = 0; h < WM; h++) winograd_output(r[h], yv[h]);
                [[unroll]] for (int k = 0; k < 4; k++) {
                    uint o = o0 + uint(4 * q + k);
                    if (o >= O) break;
                    [[unroll]] for (int h = 0; h < WM; h++) {
                        uint oy = uint(oy0 + WM * by + h);
                        if (oy >= HO) break;
                        uint out_row = ((b * O + o) * HO + oy) * WO;
                        [[unroll]] for (int j = 0; j < WM; j++) {
                            uint ox = uint(ox0 + WM * bx + j);
                            if (ox < WO) y[out_row + ox] = activate(yv[h][j][k] + bv[k]);
                        }
                    }
                }
            }
        }
    }
}
