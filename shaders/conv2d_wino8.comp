#version 450
#extension GL_EXT_control_flow_attributes : require
// Winograd F(2x2, 3x3) convolution, 16 channels x 8 rows x 8 columns per invocation, two input
// channels per loop iteration: for 3x3 kernels on output planes at least 8 wide on CPU
// drivers. The algorithm is in common/conv2d_wino.glsl.
#define TO 16
#define TH 8
#define TW 8
#define CU 2
#include "conv2d_wino.glsl"
