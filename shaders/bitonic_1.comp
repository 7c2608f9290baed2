#version 450
// Bitonic sort steps, 1 at a time (see common/bitonic.glsl).
#define BITS 1
#include "bitonic.glsl"
