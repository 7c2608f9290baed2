#version 450
// ADA's colour augmentation (src/ops/color_matrix.rs): a per-image affine map of the channels,
// m [B, C, C+1] (C = 3 for RGB: brightness, contrast, luma flip, hue and saturation composed
// into one matrix). One kernel per direction (build.rs's OP_VARIANTS):
// - OP_FORWARD:   out[b,c,p] = sum_k m[b,c,k] x[b,k,p] (+ m[b,c,C] when offset is 1);
// - OP_TRANSPOSE: out[b,k,p] = sum_c m[b,c,k] x[b,c,p], the transposed CxC part, no offset
//   (offset unread).
// One invocation per output element; row (b, c) and position p from multiply-high divisions.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
IN_R32F(1, m);
OUT_R32F(2, result);
layout(push_constant) uniform Push {
    uint n; uint C; uint HW;
    uint hw_magic; uint hw_log; uint c_magic; uint c_log;
    uint offset;
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint row = fast_div(i, hw_magic, hw_log);
    uint p = i - row * HW;
    uint b = fast_div(row, c_magic, c_log);
    uint c = row - b * C;
    uint xb = b * C * HW + p;
    float acc = 0.0;
#if defined(OP_FORWARD)
    uint mrow = row * (C + 1u);
    for (uint k = 0u; k < C; ++k) acc += LOAD(m, mrow + k) * LOAD(x, xb + k * HW);
    if (offset != 0u) acc += LOAD(m, mrow + C);
#elif defined(OP_TRANSPOSE)
    uint mcol = b * C * (C + 1u) + c;
    for (uint k = 0u; k < C; ++k) acc += LOAD(m, mcol + k * (C + 1u)) * LOAD(x, xb + k * HW);
#else
#error "color_matrix.comp is built once per OP_ define listed in build.rs"
#endif
    STORE(result, i, acc);
}
