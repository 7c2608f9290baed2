#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 1x1 convolution, 8 output x 8 input channels per invocation. The
// algorithm is in common/conv2d_wgrad_tile.glsl.
#define KS 1
#define TO 8
#define TC 8
#define TW 8
#include "conv2d_wgrad_tile.glsl"
