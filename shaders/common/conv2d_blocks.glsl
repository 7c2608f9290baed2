// Register-block indexing of the CPU family's convolution kernels (conv2d_tile.glsl,
// conv2d_wino.glsl), after conv2d_layout.glsl. The includer defines TO (output channels, a
// multiple of 4), TH and TW (output rows and columns) per invocation.
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
