#version 450
// Bitonic sort steps, 4 at a time (see common/bitonic.glsl).
#define BITS 4
#include "bitonic.glsl"
