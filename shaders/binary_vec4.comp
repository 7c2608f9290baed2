#version 450
#extension GL_EXT_control_flow_attributes : require
// out = a (op) b with numpy broadcasting, for the shapes that collapse (ops/broadcast.rs) to at
// most three dimensions [d0, d1, d2] with d2 a multiple of 4 (or one dimension of any size):
// each invocation takes four consecutive outputs of one innermost row, so it splits its index
// once, with two multiply-highs (fastdiv.glsl), and the op is a build-time define (build.rs's
// OP_VARIANTS) rather than a switch. The general kernel, binary.comp, walks any rank and row
// length but costs about four times as much per element on llvmpipe.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, a);
IN_R32F(1, b);
OUT_R32F(2, result);
layout(push_constant) uniform Push {
    uint n;
    uint d1;
    uint d2;
    uint d1_magic;
    uint d2_magic;
    uint logs; // ceil(log2 d1) | ceil(log2 d2) << 5
    uint a_strides[3];
    uint b_strides[3];
};

float f(float x, float y) {
#if defined(OP_ADD)
    return x + y;
#elif defined(OP_SUB)
    return x - y;
#elif defined(OP_MUL)
    return x * y;
#elif defined(OP_DIV)
    return x / y;
#else
#error "binary_vec4.comp is built once per OP_ define listed in build.rs"
#endif
}

void main() {
    uint i0 = flat_index() * 4u;
    if (i0 >= n) return;
    uint r = fast_div(i0, d2_magic, (logs >> 5u) & 31u);
    uint c2 = i0 - r * d2;
    uint c0 = fast_div(r, d1_magic, logs & 31u);
    uint c1 = r - c0 * d1;
    uint oa = c0 * a_strides[0] + c1 * a_strides[1] + c2 * a_strides[2];
    uint ob = c0 * b_strides[0] + c1 * b_strides[1] + c2 * b_strides[2];
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        if (i0 + j >= n) return;
        float x = LOAD(a, oa + j * a_strides[2]);
        float y = LOAD(b, ob + j * b_strides[2]);
        STORE(result, i0 + j, f(x, y));
    }
}
