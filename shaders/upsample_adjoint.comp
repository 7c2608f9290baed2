#version 450
// The transpose of upsample.comp: g [P, 2H, 2W] -> [P, H, W]. Along an axis, input k receives
// output 2k-2+i with weight (1, 5, 10, 10, 5, 1)[i]/16, where the edge clamps add (5, 1) at
// i = 2, 3 for k = 0 and (1, 5) for k = n-1; outputs outside [0, 2n) contribute nothing.
#include "index.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer G { float g[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint h; uint w; };

// Weights of the six candidate outputs 2k-2 .. 2k+3 along an axis of input size `size`.
void axis_weights(uint k, uint size, out float wt[6]) {
    wt = float[6](1.0, 5.0, 10.0, 10.0, 5.0, 1.0);
    if (k == 0u) { wt[0] = 0.0; wt[1] = 0.0; wt[2] += 5.0; wt[3] += 1.0; }
    if (k == size - 1u) { wt[4] = 0.0; wt[5] = 0.0; wt[2] += 1.0; wt[3] += 5.0; }
}

void main() {
    uint i = flat_index();
    if (i >= n) return;
    uint hw = h * w;
    uint plane = i / hw;
    uint rem = i - plane * hw;
    uint ky = rem / w;
    uint kx = rem - ky * w;
    float wy[6];
    float wx[6];
    axis_weights(ky, h, wy);
    axis_weights(kx, w, wx);
    uint w2 = 2u * w;
    uint h2 = 2u * h;
    uint base = plane * 4u * hw;
    float acc = 0.0;
    for (int a = 0; a < 6; ++a) {
        // Zero-weight candidates read a clamped (valid) row.
        int r = clamp(int(2u * ky) - 2 + a, 0, int(h2) - 1);
        uint o = base + uint(r) * w2;
        float row = 0.0;
        for (int b = 0; b < 6; ++b) {
            int c = clamp(int(2u * kx) - 2 + b, 0, int(w2) - 1);
            row += wx[b] * g[o + uint(c)];
        }
        acc += wy[a] * row;
    }
    result[i] = acc * (1.0 / 256.0);
}
