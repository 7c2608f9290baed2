#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 2-D convolution (at most 3x3), over the batches of split z:
//   dw[z][o,c,ky,kx] = sum_{b in split z, oy, ox} g[b,o,oy,ox] * x[b,c,oy+ky-P,ox+kx-P]
// One invocation per (block of 4 output channels, input channel): 4 x K*K sums in registers,
// summed in a fixed order (deterministic, no atomics). Neighbouring invocations take
// neighbouring input channels; the workgroup's y picks the output-channel block, so all of a
// workgroup reads the same g. With more than one split, conv2d_wgrad_reduce adds the splits.
#define TO 4
#define TW 8
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) readonly buffer Grad { float g[]; };
layout(std430, binding = 2) writeonly buffer Out { float dw[]; };
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    uint K; int P;
    uint per_split;
};

void main() {
    uint c = gl_GlobalInvocationID.x;
    if (c >= C) return;
    uint o0 = gl_WorkGroupID.y * TO;
    uint b_begin = gl_WorkGroupID.z * per_split;
    uint b_end = min(B, b_begin + per_split);

    float acc[TO][9];
    [[unroll]] for (int t = 0; t < TO; t++)
        [[unroll]] for (int k = 0; k < 9; k++) acc[t][k] = 0.0;

    uint orow[TO];
    [[unroll]] for (int t = 0; t < TO; t++) orow[t] = min(o0 + uint(t), O - 1u);

    for (uint b = b_begin; b < b_end; b++) {
        uint plane = (b * C + c) * H * W;
        for (uint oy = 0; oy < HO; oy++) {
            for (uint ox0 = 0; ox0 < WO; ox0 += TW) {
                float gv[TO][TW];
                [[unroll]] for (int t = 0; t < TO; t++) {
                    uint grow = ((b * O + orow[t]) * HO + oy) * WO;
                    [[unroll]] for (int j = 0; j < TW; j++) {
                        gv[t][j] = 0.0;
                        if (ox0 + uint(j) < WO) gv[t][j] = g[grow + ox0 + uint(j)];
                    }
                }
                // A constant trip count keeps acc[][] indices constant, so acc stays in
                // registers.
                [[unroll]] for (int ky = 0; ky < 3; ky++) {
                    int iy = int(oy) + ky - P;
                    if (uint(ky) >= K || iy < 0 || iy >= int(H)) continue;
                    uint rowbase = plane + uint(iy) * W;
                    float xr[TW + 2];
                    [[unroll]] for (int j = 0; j < TW + 2; j++) {
                        int ix = int(ox0) - P + j;
                        xr[j] = 0.0;
                        if (ix >= 0 && ix < int(W)) xr[j] = x[rowbase + uint(ix)];
                    }
                    if (K == 3u) {
                        [[unroll]] for (int kx = 0; kx < 3; kx++) {
                            [[unroll]] for (int t = 0; t < TO; t++) {
                                float s = 0.0;
                                [[unroll]] for (int j = 0; j < TW; j++) s += gv[t][j] * xr[j + kx];
                                acc[t][ky * 3 + kx] += s;
                            }
                        }
                    } else {
                        [[unroll]] for (int t = 0; t < TO; t++) {
                            float s = 0.0;
                            [[unroll]] for (int j = 0; j < TW; j++) s += gv[t][j] * xr[j];
                            acc[t][0] += s;
                        }
                    }
                }
            }
        }
    }

    uint KK = K * K;
    uint base = gl_WorkGroupID.z * O * C * KK;
    [[unroll]] for (int t = 0; t < TO; t++) {
        uint o = o0 + uint(t);
        if (o >= O) break;
        for (uint k = 0; k < KK; k++) dw[base + (o * C + c) * KK + k] = acc[t][k];
    }
}
