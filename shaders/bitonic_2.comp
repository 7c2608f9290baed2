#version 450
// Bitonic sort steps, 2 at a time (see common/bitonic.glsl).
#define BITS 2
#include "bitonic.glsl"
