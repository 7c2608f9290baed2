// Flat invocation index for 1-D work laid over a 2-D grid of workgroups (see `grid` in
// src/vk/recorder.rs: past 65535 groups the grid spills into y).
uint flat_index() {
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
