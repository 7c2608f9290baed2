#version 450
#extension GL_EXT_control_flow_attributes : require
// 3x3 convolution (and its input gradient), 8 channels x 8 rows x 8 columns per invocation:
// for output planes at least 8 wide. The algorithm is in common/conv2d_tile.glsl.
#define TO 8
#define TH 8
#define TW 8
#include "conv2d_tile.glsl"
