#version 450
// Random fill from Philox4x32-10 (see common/philox.glsl). Invocation j draws the block
// philox(counter (j, step, 0, 0), key (seed, stream)) and writes elements 4j..4j+3: uniform
// [0, 1) from each word, or normals from the word pairs (0, 1) and (2, 3).
#include "index.glsl"
#include "philox.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint seed; uint stream; uint step; uint normal; };

void main() {
    uint j = flat_index();
    uint base = j * 4u;
    if (base >= n) return;
    uvec4 w = philox4x32_10(uvec4(j, step, 0u, 0u), uvec2(seed, stream));
    vec4 r;
    if (normal != 0u) {
        r.xy = philox_normal_pair(w.x, w.y);
        r.zw = philox_normal_pair(w.z, w.w);
    } else {
        r = vec4(philox_uniform(w.x), philox_uniform(w.y), philox_uniform(w.z),
                 philox_uniform(w.w));
    }
    uint count = min(n - base, 4u);
    for (uint l = 0u; l < count; ++l) {
        result[base + l] = r[l];
    }
}
