#version 450
#extension GL_EXT_control_flow_attributes : require
// 1x1 convolution (and its input gradient), 16 channels x 4 rows x 4 columns per invocation:
// for output planes 3 to 7 wide. The algorithm is in common/conv2d_tile.glsl.
#define TO 16
#define TH 4
#define TW 4
#define KERNEL_1X1
#include "conv2d_tile.glsl"
