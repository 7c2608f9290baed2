// Row-major index arithmetic for tensors of rank <= 6 whose strides may be 0 (broadcast).
#define MAX_RANK 6

// Offset of flat output element `i` in a tensor with `strides`, given the output's `dims`.
uint strided_offset(uint i, uint rank, uint dims[MAX_RANK], uint strides[MAX_RANK]) {
    uint offset = 0;
    for (int d = int(rank) - 1; d >= 0; --d) {
        uint size = dims[d];
        offset += (i % size) * strides[d];
        i /= size;
    }
    return offset;
}
