#version 450
#extension GL_EXT_control_flow_attributes : require
// Sum over chosen axes in a workgroup tree through shared memory: see common/sum_axes_tree.glsl.
#include "sum_axes_tree.glsl"
