#version 450
#extension GL_EXT_control_flow_attributes : require
// Winograd F(2x2, 3x3) kernel transform for conv2d_wino: from the packed 3x3 kernel of
// conv2d_wpack (packed[(c*9 + ky*3 + kx)*O4 + o4] holds four output channels), writes
//   u[(c*16 + 4i + j)*O4 + o4] = (G g G^T)[i][j],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
// where g is the 3x3 kernel of input channel c for those four output channels. One
// invocation per (four output channels, input channel), over a flat grid (full lanes however
// few channels a layer has), split by a multiply-high (fastdiv.glsl).
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
layout(local_size_x = 64) in;
IN_RGBA32F(0, packed);
OUT_RGBA32F(1, u);
layout(push_constant) uniform Push { uint n; uint O4; uint o4_magic; uint o4_log; };

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint c = fast_div(idx, o4_magic, o4_log);
    uint o4 = idx - c * O4;
    vec4 g[3][3];
    [[unroll]] for (int ky = 0; ky < 3; ky++)
        [[unroll]] for (int kx = 0; kx < 3; kx++)
            g[ky][kx] = LOAD4(packed, (c * 9u + uint(ky * 3 + kx)) * O4 + o4);
    vec4 t[4][3];
    [[unroll]] for (int k = 0; k < 3; k++) {
        t[0][k] = g[0][k];
        t[1][k] = 0.5 * (g[0][k] + g[1][k] + g[2][k]);
        t[2][k] = 0.5 * (g[0][k] - g[1][k] + g[2][k]);
        t[3][k] = g[2][k];
    }
    [[unroll]] for (int i = 0; i < 4; i++) {
        vec4 r[4];
        r[0] = t[i][0];
        r[1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
        r[2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
        r[3] = t[i][2];
        [[unroll]] for (int j = 0; j < 4; j++)
            STORE4(u, (c * 16u + uint(4 * i + j)) * O4 + o4, r[j]);
    }
}
