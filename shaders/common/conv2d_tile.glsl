// Direct 2-D convolution as an implicit GEMM, shared by the forward convolution and its input
// gradient (a convolution of g with the flipped, transposed kernel; see src/ops/conv2d.rs):
//   y[b,o,oy,ox] = bias[o] + sum_{c,ky,kx} x[b,c,oy+ky-P,ox+kx-P] * w[c,ky,kx,o]
// with zeros outside the input plane, w packed by conv2d_wpack.comp (4 channels per vec4).
// The includer defines TO (output channels, a multiple of 4), TH (output rows) and TW
// (neighbouring output columns) per invocation. Each invocation keeps a TO x TH x TW block of
// sums in registers; per input channel it loads the TH+2 rows of TW+2 inputs under its tile
// once, then each weight vec4 once, and uses every input for up to 9 taps and TO channels.
// Tiles and bindings are in conv2d_layout.glsl. The kernel is 3x3, or 1x1 where the includer
// defines KERNEL_1X1: a build per size, because with one build branching on the push constant
// K inside the channel loop, llvmpipe ran each 1x1 convolution in about the time of a 3x3 one
// (1x1 layers at 7 GFLOP/s, 3x3 at 60), as if it ran both sides with the lanes masked.
#include "conv2d_layout.glsl"
#include "conv2d_blocks.glsl"

void main() {
    uint b, o0;
    int oy0, ox0;
    if (!conv_tile(b, oy0, ox0, o0)) return;

    float acc[TO][TH][TW];
    [[unroll]] for (int t = 0; t < TO; t++)
        [[unroll]] for (int h = 0; h < TH; h++)
            [[unroll]] for (int j = 0; j < TW; j++) acc[t][h][j] = 0.0;

    uint O4 = (O + 3u) / 4u;
    uint ob[TO / 4];
    channel_blocks(o0, O4, ob);

#ifdef KERNEL_1X1
    const int rows = TH;
#else
    const int rows = TH + 2;
#endif
    for (uint c = 0; c < C; c++) {
        uint plane = (b * C + c) * H * W;
        // The input rows under the tile, zero outside the plane.
        float xr[TH + 2][TW + 2];
        [[unroll]] for (int r = 0; r < TH + 2; r++) {
            int iy = oy0 + r - P;
            bool row_ok = r < rows && iy >= 0 && iy < int(H);
            [[unroll]] for (int j = 0; j < TW + 2; j++) xr[r][j] = 0.0;
            if (row_ok) {
                uint rowbase = plane + uint(iy) * W;
                [[unroll]] for (int j = 0; j < TW + 2; j++) {
                    int ix = ox0 - P + j;
                    float v = LOAD(x, int(rowbase) + clamp(ix, 0, int(W) - 1));
                    xr[r][j] = (ix >= 0 && ix < int(W)) ? v : 0.0;
                }
            }
        }
#ifndef KERNEL_1X1
        {
            [[unroll]] for (int ky = 0; ky < 3; ky++) {
                [[unroll]] for (int kx = 0; kx < 3; kx++) {
                    uint tap = (c * 3u + uint(ky)) * 3u + uint(kx);
                    [[unroll]] for (int q = 0; q < TO / 4; q++) {
                        vec4 wv = LOAD4(w4, tap * O4 + ob[q]);
                        [[unroll]] for (int h = 0; h < TH; h++) {
                            [[unroll]] for (int j = 0; j < TW; j++) {
                                float xv = xr[h + ky][j + kx];
                                acc[4 * q][h][j] += wv.x * xv;
                                acc[4 * q + 1][h][j] += wv.y * xv;
                                acc[4 * q + 2][h][j] += wv.z * xv;
                                acc[4 * q + 3][h][j] += wv.w * xv;
                            }
                        }
                    }
                }
            }
        }
#else
        {
            [[unroll]] for (int q = 0; q < TO / 4; q++) {
                vec4 wv = LOAD4(w4, c * O4 + ob[q]);
                [[unroll]] for (int h = 0; h < TH; h++) {
                    [[unroll]] for (int j = 0; j < TW; j++) {
                        float xv = xr[h][j];
                        acc[4 * q][h][j] += wv.x * xv;
                        acc[4 * q + 1][h][j] += wv.y * xv;
                        acc[4 * q + 2][h][j] += wv.z * xv;
                        acc[4 * q + 3][h][j] += wv.w * xv;
                    }
                }
            }
        }
#endif
    }

    [[unroll]] for (int t = 0; t < TO; t++) {
        uint o = o0 + uint(t);
        if (o >= O) break;
        float bv = has_bias != 0u ? bias[o] : 0.0;
        [[unroll]] for (int h = 0; h < TH; h++) {
            uint oy = uint(oy0 + h);
            if (oy >= HO) break;
            uint out_row = ((b * O + o) * HO + oy) * WO;
            [[unroll]] for (int j = 0; j < TW; j++) {
                uint ox = uint(ox0 + j);
                if (ox < WO) y[out_row + ox] = activate(acc[t][h][j] + bv);
            }
        }
    }
}
