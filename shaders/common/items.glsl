// 1-D work split into dispatches of at most 65535 workgroups along x (`dispatch_items` in
// src/metrics/mod.rs): the includer declares a push-constant member `uint offset`, the first
// item of this dispatch, which `dispatch_items` sets by name in each slice's push struct. No y
// row of workgroups is needed (see src/metrics/mod.rs).
uint item_index() {
    return offset + gl_GlobalInvocationID.x;
}
