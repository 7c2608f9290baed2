// Flat invocation index for 1-D work laid over a 2-D grid of workgroups (see `grid` in
// src/vk/recorder.rs: past 65535 groups the grid spills into y).
//
// A macro, not a function: shaders include this before their `layout(local_size_x = ...) in;`
// line, and a function defined there would see gl_WorkGroupSize as (1,1,1), putting every
// row after the first at the wrong offset. Expanded inside main, it sees the real size.
#define flat_index() \
    ((gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x \
     + gl_LocalInvocationID.x)
