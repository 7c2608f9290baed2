#version 450
#extension GL_EXT_control_flow_attributes : require
// Weight gradient of a 3x3 convolution over output planes at most 4 wide, 16 output x 4 input
// channels x 4 columns per step (the 8-column kernel would spend half its work on padding).
// The algorithm is in common/conv2d_wgrad_tile.glsl.
#define KS 3
#define TO 16
#define TC 4
#define TW 4
#include "conv2d_wgrad_tile.glsl"
