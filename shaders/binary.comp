#version 450
#extension GL_EXT_control_flow_attributes : require
// out = a (op) b with numpy broadcasting: a and b are read through strides that are 0 along
// broadcast dimensions. op: 0 add, 1 sub, 2 mul, 3 div, 4 copy a (expand).
// Index arithmetic is what costs on CPU drivers, so the host first merges dimensions that are
// contiguous in both operands (the rank here is usually 1-3), the divisions by the dimensions
// are multiply-highs (fastdiv.glsl), and each invocation splits its first index once and then
// steps both offsets along the innermost dimension for 8 consecutive outputs.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
#define MAX_RANK 6
layout(local_size_x = 64) in;
IN_R32F(0, a);
IN_R32F(1, b);
OUT_R32F(2, result);
layout(push_constant) uniform Push {
    uint n;
    uint op;
    uint rank;
    uint dims[MAX_RANK];
    uint magics[MAX_RANK];
    uint logs; // 5 bits per dimension, dimension 0 lowest
    uint a_strides[MAX_RANK];
    uint b_strides[MAX_RANK];
};

// Offsets of flat output element i in a and b; returns its innermost coordinate.
uint split_index(uint i, out uint oa, out uint ob) {
    oa = 0u;
    ob = 0u;
    uint col = 0u;
    uint rest = i;
    for (int d = int(rank) - 1; d >= 0; --d) {
        uint q = fast_div(rest, magics[d], (logs >> (5u * uint(d))) & 31u);
        uint coord = rest - q * dims[d];
        if (d == int(rank) - 1) col = coord;
        oa += coord * a_strides[d];
        ob += coord * b_strides[d];
        rest = q;
    }
    return col;
}

void main() {
    uint i0 = flat_index() * 8u;
    if (i0 >= n) return;
    uint last = rank - 1u;
    uint oa, ob;
    uint col = split_index(i0, oa, ob);
    // Where the innermost coordinate wraps, the offsets are recomputed from the flat index (once
    // per row: rare unless rows are short).
    [[unroll]] for (uint j = 0u; j < 8u; j++) {
        uint i = i0 + j;
        if (i >= n) break;
        if (j > 0u) {
            col++;
            if (col == dims[last]) {
                col = split_index(i, oa, ob);
            } else {
                oa += a_strides[last];
                ob += b_strides[last];
            }
        }
        float x = LOAD(a, oa);
        float r;
        if (op == 4u) {
            r = x;
        } else {
            float y = LOAD(b, ob);
            if (op == 0u) r = x + y;
            else if (op == 1u) r = x - y;
            else if (op == 2u) r = x * y;
            else r = x / y;
        }
        STORE(result, i, r);
    }
}
