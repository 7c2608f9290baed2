#version 450
#extension GL_EXT_control_flow_attributes : require
// Winograd F(2x2, 3x3) convolution, 8 channels x 4 rows x 8 columns per invocation, two input
// channels per loop iteration: for 3x3 kernels on output planes at least 8 wide on CPU
// drivers. The tile keeps llvmpipe's JIT in seconds: on a Sapphire Rapids Xeon the former
// 16 x 8 x 8 tile took 4.5 minutes to compile and ran no faster (README, Performance). The
// algorithm is in common/conv2d_wino.glsl.
#define TO 8
#define TH 4
#define TW 8
#define CU 2
#include "conv2d_wino.glsl"
