#version 450
// Bitonic sort steps, 3 at a time (see common/bitonic.glsl).
#define BITS 3
#include "bitonic.glsl"
