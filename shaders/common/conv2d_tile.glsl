// Direct 2-D convolution as an implicit GEMM, shared by the forward convolution and its input
// gradient (a convolution of g with the flipped, transposed kernel; see src/ops/conv2d.rs):
//   y[b,o,oy,ox] = bias[o] + sum_{c,ky,kx} x[b,c,oy+ky-P,ox+kx-P] * w[w_base + o*w_so + c*w_sc
//                                                                      + ky*w_sky + kx*w_skx]
// with zeros outside the input plane. The includer defines TO (output channels per invocation)
// and TW (neighbouring output columns per invocation). Each invocation keeps a TO x TW block
// of sums in registers; per input row it loads TW+2 inputs once and uses each for up to 3 taps
// and TO channels. Neighbouring invocations take neighbouring column blocks (their loads are
// contiguous); the workgroup's y coordinate picks the channel block, so every invocation of a
// workgroup reads the same weights. The kernel is at most 3x3.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) readonly buffer Weight { float w[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    uint K; int P;
    int w_base; int w_so; int w_sc; int w_sky; int w_skx;
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
    for (int t = 0; t < TO; t++)
        for (int j = 0; j < TW; j++) acc[t][j] = 0.0;

    // Channels past O read channel O-1's weights (their sums are never stored): no branch on
    // the weight loads.
    int wrow[TO];
    for (int t = 0; t < TO; t++) wrow[t] = w_base + int(min(o0 + uint(t), O - 1u)) * w_so;

    for (uint c = 0; c < C; c++) {
        uint plane = (b * C + c) * H * W;
        int wc = int(c) * w_sc;
        for (uint ky = 0; ky < K; ky++) {
            int iy = int(oy) + int(ky) - P;
            if (iy < 0 || iy >= int(H)) continue;
            uint rowbase = plane + uint(iy) * W;
            float xr[TW + 2];
            for (int j = 0; j < TW + 2; j++) {
                int ix = ox0 - P + j;
                xr[j] = 0.0;
                if (ix >= 0 && ix < int(W)) xr[j] = x[rowbase + uint(ix)];
            }
            int wk = wc + int(ky) * w_sky;
            if (K == 3u) {
                for (int kx = 0; kx < 3; kx++) {
                    for (int t = 0; t < TO; t++) {
                        float wv = w[wrow[t] + wk + kx * w_skx];
                        for (int j = 0; j < TW; j++) acc[t][j] += wv * xr[j + kx];
                    }
                }
            } else {
                for (int t = 0; t < TO; t++) {
                    float wv = w[wrow[t] + wk];
                    for (int j = 0; j < TW; j++) acc[t][j] += wv * xr[j];
                }
            }
        }
    }

    for (int t = 0; t < TO; t++) {
        uint o = o0 + uint(t);
        if (o >= O) break;
        float bv = has_bias != 0u ? bias[o] : 0.0;
        uint out_row = ((b * O + o) * HO + oy) * WO;
        for (int j = 0; j < TW; j++) {
            uint ox = uint(ox0 + j);
            if (ox < WO) y[out_row + ox] = acc[t][j] + bv;
        }
    }
}
