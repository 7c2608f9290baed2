#version 450
// Sum over chosen axes, in chunks. Output element (i, c) is the sum of reduced positions
// j in [c * chunk, min((c + 1) * chunk, n_red)) of output element i: the walk starts at i's base
// offset (its kept coordinates times kept_strides) and steps through the reduced index space
// (dims red_dims, strides red_strides). Sequential f32 sums, so results are deterministic.
// Chunks keep every loop short: lavapipe (Mesa 22.3) silently ends a loop after 65535
// iterations, and a loop nested in another counts every pass of the outer one.
// Where the innermost reduced axis is contiguous and a multiple of 4 long, each pass adds four
// neighbours: llvmpipe blends every loop-carried value (the sum and the counter's seven) once
// per pass, which cost more than the loads when a pass added one element.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
#ifdef FUSE_MUL
// sum_axes_mul: the sum of x * y, y laid out as x (ops::mul_sum_to).
IN_R32F(2, y);
#define TERM(o) (LOAD(x, o) * LOAD(y, o))
#else
#define TERM(o) LOAD(x, o)
#endif
layout(push_constant) uniform Push {
    uint n_out;
    uint n_red;
    uint chunk;
    uint chunks;
    uint kept_dims[6];
    uint kept_strides[6];
    uint red_dims[6];
    uint red_strides[6];
};

// Offset of flat index i over dims/strides of rank 6, written out so that it is no loop.
uint offset6(uint i, uint dims[6], uint strides[6]) {
    uint o = 0u;
    o += (i % dims[5]) * strides[5]; i /= dims[5];
    o += (i % dims[4]) * strides[4]; i /= dims[4];
    o += (i % dims[3]) * strides[3]; i /= dims[3];
    o += (i % dims[2]) * strides[2]; i /= dims[2];
    o += (i % dims[1]) * strides[1]; i /= dims[1];
    o += (i % dims[0]) * strides[0];
    return o;
}

// The offset of the reduced counter's digits 0..4 (digit 5, the innermost, is the caller's).
uint outer_offset(uint d0, uint d1, uint d2, uint d3, uint d4) {
    return d0 * red_strides[0] + d1 * red_strides[1] + d2 * red_strides[2]
           + d3 * red_strides[3] + d4 * red_strides[4];
}

// Steps the counter's digits 4..0 on by one, after digit 5 wrapped to 0.
void carry(inout uint d0, inout uint d1, inout uint d2, inout uint d3, inout uint d4) {
    if (++d4 == red_dims[4]) { d4 = 0u;
        if (++d3 == red_dims[3]) { d3 = 0u;
            if (++d2 == red_dims[2]) { d2 = 0u;
                if (++d1 == red_dims[1]) { d1 = 0u; ++d0; } } } }
}

void main() {
    uint id = flat_index();
    if (id >= n_out * chunks) return;
    uint i = id / chunks;
    uint c = id % chunks;
    uint base = offset6(i, kept_dims, kept_strides);
    uint start = c * chunk;
    uint end = min(start + chunk, n_red);
    // Walk the reduced space with a running 6-digit counter instead of dividing per element.
    uint d5 = start % red_dims[5]; uint r = start / red_dims[5];
    uint d4 = r % red_dims[4]; r /= red_dims[4];
    uint d3 = r % red_dims[3]; r /= red_dims[3];
    uint d2 = r % red_dims[2]; r /= red_dims[2];
    uint d1 = r % red_dims[1]; r /= red_dims[1];
    uint d0 = r;
    float acc = 0.0;
    if (red_strides[5] == 1u && (red_dims[5] & 3u) == 0u && (chunk & 3u) == 0u) {
        for (uint j = start; j < end; j += 4u) {
            uint o = base + outer_offset(d0, d1, d2, d3, d4) + d5;
            acc += (TERM(o) + TERM(o + 1u)) + (TERM(o + 2u) + TERM(o + 3u));
            d5 += 4u;
            if (d5 == red_dims[5]) { d5 = 0u; carry(d0, d1, d2, d3, d4); }
        }
    } else {
        for (uint j = start; j < end; ++j) {
            acc += TERM(base + outer_offset(d0, d1, d2, d3, d4) + d5 * red_strides[5]);
            if (++d5 == red_dims[5]) { d5 = 0u; carry(d0, d1, d2, d3, d4); }
        }
    }
    STORE(result, id, acc);
}
