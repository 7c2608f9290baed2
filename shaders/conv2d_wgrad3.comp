#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 3x3 convolution, 16 output x 4 input channels per invocation. The
// algorithm is in common/conv2d_wgrad_tile.glsl.
#define KS 3
#define TO 16
#define TC 4
#define TW 8
#include "conv2d_wgrad_tile.glsl"
