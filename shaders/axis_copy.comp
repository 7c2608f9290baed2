#version 450
// Copies a window along one axis, the kernel behind slice, pad_axis and concat. Tensors are
// seen as [outer, axis, inner]. Invocation i covers window element (o, j, e) of
// [outer, window, inner]: it reads source axis index j + src_shift (zero when that falls
// outside [0, n_src), which is how padding fills) and writes destination axis index
// j + dst_offset. Neighbouring invocations touch neighbouring addresses along `inner`.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(binding = 0, r32f) readonly uniform imageBuffer x;
layout(binding = 1, r32f) writeonly uniform imageBuffer result;
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
        v = imageLoad(x, int((o * n_src + uint(src)) * inner + e)).x;
    }
    imageStore(result, int((o * n_dst + j + dst_offset) * inner + e), vec4(v));
}
