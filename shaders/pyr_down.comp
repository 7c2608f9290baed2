#version 450
// Gaussian pyramid step on planes [P, H, W] -> [P, h, w], h = ceil(H/2), w = ceil(W/2): the
// 5x5 binomial filter ([1,4,6,4,1]/16 in each axis) with mirror boundaries, sampled at even
// positions (see src/metrics/pyramid.rs). One output per invocation, 25 taps.
#include "mirror.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint H; uint W; uint h; uint w; uint offset; };
#include "items.glsl"

void main() {
    uint i = item_index();
    if (i >= n) return;
    uint hw = h * w;
    uint plane = i / hw;
    uint rem = i - plane * hw;
    int oy = int(rem / w);
    int ox = int(rem - uint(oy) * w);
    const float b[5] = float[5](1.0, 4.0, 6.0, 4.0, 1.0);
    uint cols[5];
    for (int d = 0; d < 5; ++d) cols[d] = mirror_index(2 * ox + d - 2, int(W));
    uint base = plane * H * W;
    float acc = 0.0;
    for (int dy = 0; dy < 5; ++dy) {
        uint row = base + mirror_index(2 * oy + dy - 2, int(H)) * W;
        float s = 0.0;
        for (int dx = 0; dx < 5; ++dx) s += b[dx] * x[row + cols[dx]];
        acc += b[dy] * s;
    }
    result[i] = acc * (1.0 / 256.0);
}
