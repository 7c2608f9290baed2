// Sum over chosen axes, the GPU family's form of sum_axes.comp (same bindings, push block and
// output): one workgroup per output element i and chunk c. Its 64 invocations sum reduced
// positions j in [c * chunk, min((c + 1) * chunk, n_red)) that are 64 apart, then add their 64
// partial sums in a fixed order, so the result is the same on every run and the loops stay
// short (chunk / 64 iterations) on any device. With SUBGROUPS defined (sum_axes_subgroup.comp,
// for devices with subgroup arithmetic in compute) each subgroup adds its partials with
// subgroupAdd and one invocation adds the subgroups' sums in order, for any subgroup size;
// otherwise (sum_axes_tree.comp) a binary tree through shared memory adds them.
#ifdef SUBGROUPS
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "io.glsl"
#define TREE 64
layout(local_size_x = TREE) in;
IN_R32F(0, x);
OUT_R32F(1, result);
#ifdef FUSE_MUL
// The _mul builds sum x * y, y laid out as x (ops::mul_sum_to).
IN_R32F(2, y);
#define TERM(o) (LOAD(x, o) * LOAD(y, o))
#else
#define TERM(o) LOAD(x, o)
#endif
layout(push_constant) uniform Push {
    uint n_out;
    uint n_red;
    uint chunk;
    uint chunks;
    uint kept_dims[6];
    uint kept_strides[6];
    uint red_dims[6];
    uint red_strides[6];
};

shared float partial[TREE];

uint offset6(uint i, uint dims[6], uint strides[6]) {
    uint o = 0u;
    [[unroll]] for (int d = 5; d >= 0; d--) {
        o += (i % dims[d]) * strides[d];
        i /= dims[d];
    }
    return o;
}

void main() {
    // Workgroups past 65535 spill into y (see `grid` in src/vk/recorder.rs).
    uint id = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    float acc = 0.0;
    if (id < n_out * chunks) {
        uint i = id / chunks;
        uint c = id - i * chunks;
        uint base = offset6(i, kept_dims, kept_strides);
        uint end = min((c + 1u) * chunk, n_red);
        for (uint j = c * chunk + t; j < end; j += uint(TREE))
            acc += TERM(base + offset6(j, red_dims, red_strides));
    }
#ifdef SUBGROUPS
    // A subgroup of one invocation still fits: at most TREE subgroups.
    float subgroup_sum = subgroupAdd(acc);
    if (subgroupElect()) partial[gl_SubgroupID] = subgroup_sum;
    barrier();
    if (t == 0u && id < n_out * chunks) {
        float total = 0.0;
        for (uint k = 0u; k < gl_NumSubgroups; k++) total += partial[k];
        STORE(result, id, total);
    }
#else
    partial[t] = acc;
    barrier();
    [[unroll]] for (uint half_width = TREE / 2; half_width > 0u; half_width /= 2u) {
        if (t < half_width) partial[t] += partial[t + half_width];
        barrier();
    }
    if (t == 0u && id < n_out * chunks) STORE(result, id, partial[0]);
#endif
}
