// Direct 2-D convolution as an implicit GEMM, shared by the forward convolution and its input
// gradient (a convolution of g with the flipped, transposed kernel; see src/ops/conv2d.rs):
//   y[b,o,oy,ox] = bias[o] + sum_{c,ky,kx} x[b,c,oy+ky-P,ox+kx-P] * w[c,ky,kx,o]
// with zeros outside the input plane, w packed by conv2d_wpack.comp (4 channels per vec4). The includer defines TO (output channels per invocation)
// and TW (neighbouring output columns per invocation). Each invocation keeps a TO x TW block
// of sums in registers; per input row it loads TW+2 inputs once and uses each for up to 3 taps
// and TO channels. Neighbouring invocations take neighbouring column blocks (their loads are
// contiguous); the workgroup's y coordinate picks the channel block, so every invocation of a
// workgroup reads the same weights. The kernel is at most 3x3. TO is a multiple of 4.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) readonly buffer Weight { vec4 w4[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    uint K; int P;
    uint has_bias;
    uint tiles_x;
};

void main() {
    uint tile = gl_GlobalInvocationID.x;
    if (tile >= B * HO * tiles_x) return;
    uint tx = tile % tiles_x;
    uint row = tile / tiles_x;
    uint oy = row % HO;
    uint b = row / HO;
    int ox0 = int(tx * TW);
    uint o0 = gl_WorkGroupID.y * TO;

    float acc[TO][TW];
    [[unroll]] for (int t = 0; t < TO; t++)
        [[unroll]] for (int j = 0; j < TW; j++) acc[t][j] = 0.0;

    uint O4 = (O + 3u) / 4u;
    // Channel blocks past O4 (when TO > 4) read block O4-1 again; their sums are never stored.
    uint ob[TO / 4];
    [[unroll]] for (int q = 0; q < TO / 4; q++) ob[q] = min(o0 / 4u + uint(q), O4 - 1u);

    for (uint c = 0; c < C; c++) {
        uint plane = (b * C + c) * H * W;
        for (uint ky = 0; ky < K; ky++) {
            int iy = int(oy) + int(ky) - P;
            if (iy < 0 || iy >= int(H)) continue;
            uint rowbase = plane + uint(iy) * W;
            float xr[TW + 2];
            [[unroll]] for (int j = 0; j < TW + 2; j++) {
                int ix = ox0 - P + j;
                float v = x[rowbase + uint(clamp(ix, 0, int(W) - 1))];
                xr[j] = (ix >= 0 && ix < int(W)) ? v : 0.0;
            }
            uint tap = (c * K + ky) * K;
            if (K == 3u) {
                [[unroll]] for (int kx = 0; kx < 3; kx++) {
                    [[unroll]] for (int q = 0; q < TO / 4; q++) {
                        vec4 wv = w4[(tap + uint(kx)) * O4 + ob[q]];
                        [[unroll]] for (int j = 0; j < TW; j++) {
                            acc[4 * q][j] += wv.x * xr[j + kx];
                            acc[4 * q + 1][j] += wv.y * xr[j + kx];
                            acc[4 * q + 2][j] += wv.z * xr[j + kx];
                            acc[4 * q + 3][j] += wv.w * xr[j + kx];
                        }
                    }
                }
            } else {
                [[unroll]] for (int q = 0; q < TO / 4; q++) {
                    vec4 wv = w4[tap * O4 + ob[q]];
                    [[unroll]] for (int j = 0; j < TW; j++) {
                        acc[4 * q][j] += wv.x * xr[j];
                        acc[4 * q + 1][j] += wv.y * xr[j];
                        acc[4 * q + 2][j] += wv.z * xr[j];
                        acc[4 * q + 3][j] += wv.w * xr[j];
                    }
                }
            }
        }
    }

    [[unroll]] for (int t = 0; t < TO; t++) {
        uint o = o0 + uint(t);
        if (o >= O) break;
        float bv = has_bias != 0u ? bias[o] : 0.0;
        uint out_row = ((b * O + o) * HO + oy) * WO;
        [[unroll]] for (int j = 0; j < TW; j++) {
            uint ox = uint(ox0 + j);
            if (ox < WO) y[out_row + ox] = acc[t][j] + bv;
        }
    }
}
