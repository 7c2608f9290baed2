#version 450
// Copies a window along one axis, the kernel behind slice, pad_axis and concat. Tensors are
// seen as [outer, axis, inner]. Invocation i covers window element (o, j, e) of
// [outer, window, inner]: it reads source axis index j + src_shift (zero when that falls
// outside [0, n_src), which is how padding fills) and writes destination axis index
// j + dst_offset. Neighbouring invocations touch neighbouring addresses along `inner`.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push {
    uint n;          // outer * window * inner
    uint window;
    uint inner;
    uint n_src;      // source axis length
    uint n_dst;      // destination axis length
    int src_shift;
    uint dst_offset;
};

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint e = i % inner;
    uint rest = i / inner;
    uint j = rest % window;
    uint o = rest / window;
    int src = int(j) + src_shift;
    float v = 0.0;
    if (src >= 0 && uint(src) < n_src) {
        v = LOAD(x, (o * n_src + uint(src)) * inner + e);
    }
    STORE(result, (o * n_dst + j + dst_offset) * inner + e, v);
}
