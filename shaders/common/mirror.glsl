// Mirror boundary (scipy.ndimage's 'mirror', OpenCV's BORDER_REFLECT_101): index -1 reads 1,
// index size reads size - 2. Valid for reaches of at most size - 1 past either edge.
uint mirror_index(int i, int size) {
    if (i < 0) return uint(-i);
    if (i >= size) return uint(2 * size - 2 - i);
    return uint(i);
}
