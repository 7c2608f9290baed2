// The interface shared by the convolution kernels (conv2d_tile.glsl, conv2d_wino.glsl,
// conv2d_gemm.comp): src/ops/conv2d.rs records them all with the same bindings and push words.
#include "io.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
// The packed kernel: conv2d_wpack's taps, or their Winograd transform; 4 output channels a texel.
IN_RGBA32F(1, w4);
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Push {
    uint B; uint C; uint O;
    uint H; uint W; uint HO; uint WO;
    uint K; int P;
    uint has_bias;
    uint tiles_x;
    // The _lrelu and _style builds (ops::conv2d_lrelu, ops::style_conv): a leaky ReLU of this
    // slope on every output as it is stored. A build of its own rather than a flag: the
    // flag's select in the plain kernels measured slower on llvmpipe.
    float act_slope;
    // conv2d_gemm_style: whether its output stage adds noise (the other builds ignore it).
    uint has_noise;
};

float activate(float v) {
#if defined(FUSE_LRELU) || defined(FUSE_STYLE)
    return v < 0.0 ? v * act_slope : v;
#else
    return v;
#endif
}
