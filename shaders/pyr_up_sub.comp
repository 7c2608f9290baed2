#version 450
// Laplacian pyramid level: x - up(d) on planes, x [P, H, W], d [P, ceil(H/2), ceil(W/2)].
// up(d) places d at even positions of an H x W zero image and filters it with 4 times the 5x5
// binomial filter, mirror boundaries (see src/metrics/pyramid.rs). Mirroring keeps an index's
// parity, so only taps landing on even rows and columns contribute.
#include "mirror.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer D { float d[]; };
layout(std430, binding = 2) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint H; uint W; uint h; uint w; uint offset; };
#include "items.glsl"

void main() {
    uint i = item_index();
    if (i >= n) return;
    uint HW = H * W;
    uint plane = i / HW;
    uint rem = i - plane * HW;
    int y = int(rem / W);
    int xx = int(rem - uint(y) * W);
    const float b[5] = float[5](1.0, 4.0, 6.0, 4.0, 1.0);
    uint base = plane * h * w;
    float acc = 0.0;
    for (int dy = 0; dy < 5; ++dy) {
        uint r = mirror_index(y + dy - 2, int(H));
        if ((r & 1u) != 0u) continue;
        uint row = base + (r >> 1) * w;
        float s = 0.0;
        for (int dx = 0; dx < 5; ++dx) {
            uint c = mirror_index(xx + dx - 2, int(W));
            if ((c & 1u) == 0u) s += b[dx] * d[row + (c >> 1)];
        }
        acc += b[dy] * s;
    }
    result[i] = x[i] - acc * (1.0 / 64.0);
}
