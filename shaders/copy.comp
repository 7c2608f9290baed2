#version 450
// dst[i] = src[i] for i < n.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, src);
OUT_R32F(1, dst);
layout(push_constant) uniform Push { uint n; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    STORE(dst, i, LOAD(src, i));
}
