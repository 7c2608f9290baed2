#version 450
#extension GL_EXT_control_flow_attributes : require
// Sum over chosen axes with subgroup arithmetic: see common/sum_axes_tree.glsl.
#define SUBGROUPS
#include "sum_axes_tree.glsl"
