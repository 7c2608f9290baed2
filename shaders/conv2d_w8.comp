#version 450
// 2-D convolution (and its input gradient), 4 channels x 8 columns per invocation: for output
// planes at least 8 wide. The algorithm is in common/conv2d_tile.glsl.
#define TO 4
#define TW 8
#include "conv2d_tile.glsl"
