#version 450
// out = max(x, lo) elementwise.
#include "io.glsl"
#include "index.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
OUT_R32F(1, result);
layout(push_constant) uniform Push { uint n; float lo; };

void main() {
    uint i = flat_index();
    if (i >= n) return;
    STORE(result, i, max(LOAD(x, i), lo));
}
