#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 3x3 convolution, 16 output x 2 input channels per invocation. The
// algorithm is in common/conv2d_wgrad_tile.glsl.
#define KS 3
#define TO 16
#define TC 2
#include "conv2d_wgrad_tile.glsl"
