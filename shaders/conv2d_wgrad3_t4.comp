#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 3x3 convolution, 4 output x 4 input channels x 4 columns per step: the
// small tile of the GPU kernel family (144 sums a thread, where registers are per thread and
// compilers other than llvmpipe's take minutes on the 576-sum conv2d_wgrad3). The algorithm is
// in common/conv2d_wgrad_tile.glsl.
#define KS 3
#define TO 4
#define TC 4
#define TW 4
#include "conv2d_wgrad_tile.glsl"
