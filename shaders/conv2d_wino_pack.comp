#version 450
#extension GL_EXT_control_flow_attributes : require
// Winograd F(WM x WM, 3x3) kernel transform for conv2d_wino8 (same WM; winograd.glsl has the
// matrices): writes
//   u[(c*WN^2 + WN*i + j)*O4 + o4] = (G g G^T)[i][j]   (four output channels a texel),
// where g[ky][kx] = w[w_base + o*w_so + c*w_sc + ky*w_sky + kx*w_skx] for the four output
// channels o of block o4 (zero for o >= O): the strides express both the forward kernel and
// the flipped, transposed one of the input gradient, as in conv2d_wpack, whose layout this
// reads straight from w instead of through a packed copy. One invocation per (four output
// channels, input channel), over a flat grid (full lanes however few channels a layer has),
// split by a multiply-high (fastdiv.glsl).
#define WM 4
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
#include "winograd.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, w);
OUT_RGBA32F(1, u);
layout(push_constant) uniform Push {
    uint n; uint O; uint O4;
    int w_base; int w_so; int w_sc; int w_sky; int w_skx;
    uint o4_magic; uint o4_log;
};

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint c = fast_div(idx, o4_magic, o4_log);
    uint o4 = idx - c * O4;
    // t = G g (columns), then G t^T (rows).
    vec4 t[WN][3];
    [[unroll]] for (int kx = 0; kx < 3; kx++) {
        vec4 col[3], tc[WN];
        [[unroll]] for (int ky = 0; ky < 3; ky++) {
            int base = w_base + int(c) * w_sc + ky * w_sky + kx * w_skx;
            [[unroll]] for (uint k = 0u; k < 4u; k++) {
                uint o = 4u * o4 + k;
                float v = 0.0;
                if (o < O) v = LOAD(w, base + int(o) * w_so);
                col[ky][k] = v;
            }
        }
        winograd_kernel(col, tc);
        [[unroll]] for (int i = 0; i < WN; i++) t[i][kx] = tc[i];
    }
    [[unroll]] for (int i = 0; i < WN; i++) {
        vec4 r[WN];
        winograd_kernel(t[i], r);
        [[unroll]] for (int j = 0; j < WN; j++)
            STORE4(u, (c * uint(WE) + uint(WN * i + j)) * O4 + o4, r[j]);
    }
}
