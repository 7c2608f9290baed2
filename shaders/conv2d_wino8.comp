#version 450
#extension GL_EXT_control_flow_attributes : require
// Winograd F(4x4, 3x3) convolution, 8 channels x 8 rows x 8 columns (four 4x4 blocks) per
// invocation, two input channels per loop iteration: for 3x3 kernels on output planes at
// least 8 wide on CPU drivers. The sums (8 x 4 x 36) keep llvmpipe's JIT in seconds (9.5 s
// cold on a Sapphire Rapids Xeon), where a 16 x 8 x 8 tile of F(2x2, 3x3) (16 x 16 x 16 sums)
// took 4.5 minutes to compile and ran no faster; 4 x 8 outputs (two blocks) ran 8% slower
// and 4 output channels 7% (README, Performance). The algorithm is in
// common/conv2d_wino.glsl; conv2d_wino_pack must transform the kernel with the same WM.
#define WM 4
#define TO 8
#define TH 8
#define TW 8
#define CU 2
#include "conv2d_wino.glsl"
