// The style-mixing crossover: a block index held as an f32 on the device (so that a compiled
// program can draw a new one per step without re-recording), rounded and clamped to
// [0, n_blocks]. Blocks k < crossover take the first latent.
uint crossover_blocks(float c, uint n_blocks) {
    return uint(clamp(round(c), 0.0, float(n_blocks)));
}
