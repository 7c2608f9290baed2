// Body of the bitonic_N kernels (N = BITS, defined by the includer): several consecutive steps
// of one stage of a bitonic sort, in place, on rows of length p (a power of two) laid end to
// end, from one buffer into another. Stage k, steps with strides 2^(lo + BITS - 1) down to 2^lo: invocation t owns the
// 2^BITS elements base + (e << lo), e < 2^BITS, where base is t with BITS zero bits inserted
// at bit lo. Each step compare-exchanges pairs (e, e | 2^s) towards ascending order where bit
// k of the element's in-row index is clear, descending where set (for k = p every pair
// ascends). BITS is a compile-time constant so that every loop unrolls and the elements stay
// in registers; no loop runs more than 2^BITS times.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { float v[]; };
layout(std430, binding = 1) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint n; uint p; uint k; uint lo; uint offset; };
#include "items.glsl"

const uint COUNT = 1u << BITS;

void main() {
    uint t = item_index();
    if (t >= n >> BITS) return;
    uint low_mask = (1u << lo) - 1u;
    uint base = ((t & ~low_mask) << BITS) | (t & low_mask);
    bool ascending = ((base & (p - 1u)) & k) == 0u;
    float r[COUNT];
    for (uint e = 0u; e < COUNT; ++e) r[e] = v[base + (e << lo)];
    for (int s = BITS - 1; s >= 0; --s) {
        uint m = 1u << uint(s);
        for (uint e = 0u; e < COUNT; ++e) {
            if ((e & m) == 0u) {
                float a = r[e];
                float b = r[e | m];
                bool swap = ascending ? a > b : a < b;
                r[e] = swap ? b : a;
                r[e | m] = swap ? a : b;
            }
        }
    }
    for (uint e = 0u; e < COUNT; ++e) result[base + (e << lo)] = r[e];
}
