// Shared by affine_resample.comp and affine_resample_adjoint.comp (src/ops/affine_resample.rs
// states the math): where output pixel (i, j) samples, and which index a bilinear tap reads.
#ifndef AFFINE_GLSL
#define AFFINE_GLSL

// Source indices are clamped to +-2^22 pixels, where f32 has one fractional bit left: the
// float -> int conversions stay defined for any theta, and every integer the kernels form stays
// far inside int range. The CPU reference clamps the same way.
const float COORD_LIMIT = 4194304.0;
const int COORD_LIMIT_I = 4194304;

// The continuous source index (sx, sy) of output pixel (i, j): theta (rows r0 = (t00, t01,
// t02), r1 = (t10, t11, t12)) applied to the centred coordinates u = j - centre.x,
// v = i - centre.y, back in index space. centre = (W/2 - 0.5, H/2 - 0.5).
vec2 source_index(vec3 r0, vec3 r1, int i, int j, vec2 centre) {
    float u = float(j) - centre.x;
    float v = float(i) - centre.y;
    vec2 s = vec2(r0.x * u + r0.y * v + r0.z, r1.x * u + r1.y * v + r1.z) + centre;
    return clamp(s, -COORD_LIMIT, COORD_LIMIT);
}

// The index along an axis of n (n >= 1) that integer tap t reads, or -1 where it reads zero
// (Zeros padding). Reflect: numpy's 'reflect' (the edge is not repeated: -1 -> 1, n -> n - 2),
// periodic with period 2(n - 1) for far taps; n == 1 reads 0 everywhere.
int tap_index(int t, int n, bool reflect) {
    if (t >= 0 && t < n) return t;
    if (!reflect) return -1;
    if (n == 1) return 0;
    int m = 2 * (n - 1);
    // |t| <= 2^22 + 2: adding a multiple of m past 2^23 makes it non-negative, so the
    // remainder is that of unsigned integers (GLSL leaves % of negative ints undefined).
    int big = m * ((1 << 23) / m + 1);
    int r = int(uint(t + big) % uint(m));
    return r < n ? r : m - r;
}

#endif
