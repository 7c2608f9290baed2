// The interface shared by the tiled convolution kernels (conv2d_tile.glsl, conv2d_wino.glsl):
// src/ops/conv2d.rs records both with the same bindings and push words. The includer defines
// TO (output channels, a multiple of 4), TH and TW (output rows and columns) per invocation.
#include "io.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
// The packed kernel: conv2d_wpack's taps, or their Winograd transform; 4 output channels a texel.
IN_RGBA32F(1, w4);
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    uint K; int P;
    uint has_bias;
    uint tiles_x;
};

// This invocation's tile: image b, first output row oy0 and column ox0, and first output
// channel o0. Neighbouring invocations take neighbouring tiles (their loads are contiguous);
// the workgroup's y coordinate picks the channel block. False past the last tile.
bool conv_tile(out uint b, out int oy0, out int ox0, out uint o0) {
    uint tile = gl_GlobalInvocationID.x;
    uint tiles_y = (HO + uint(TH) - 1u) / uint(TH);
    uint tx = tile % tiles_x;
    uint row = tile / tiles_x;
    oy0 = int((row % tiles_y) * uint(TH));
    b = row / tiles_y;
    ox0 = int(tx * TW);
    o0 = gl_WorkGroupID.y * TO;
    return tile < B * tiles_y * tiles_x;
}

// The packed-kernel texel column of each group of 4 output channels from o0, of O4 groups in
// all. Groups past the last one (when TO > 4) read the last again; their sums are never stored.
void channel_blocks(uint o0, uint O4, out uint ob[TO / 4]) {
    [[unroll]] for (int q = 0; q < TO / 4; q++) ob[q] = min(o0 / 4u + uint(q), O4 - 1u);
}
