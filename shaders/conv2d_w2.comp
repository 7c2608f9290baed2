#version 450
#extension GL_EXT_control_flow_attributes : require
// 3x3 convolution (and its input gradient), 16 channels x 2 rows x 2 columns per invocation:
// for output planes at most 2 wide (the discriminator's last 3x3). See common/conv2d_tile.glsl.
#define TO 16
#define TH 2
#define TW 2
#include "conv2d_tile.glsl"
