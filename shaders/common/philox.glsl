// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011) and the maps from its 32-bit words to floats.
//
// src/ops/random.rs holds the Rust twin of every function here; both must compute the same
// bits. The float maps therefore use only operations Vulkan rounds correctly (+, -, *, exact
// integer conversions and bit casts), marked `precise` so no compiler fuses a*b+c into an fma,
// with constants given as bit patterns. The one exception is sqrt in the Box-Muller radius,
// which Vulkan allows to be a few ulp off (lavapipe rounds it correctly).

const uint PHILOX_M0 = 0xD2511F53u;
const uint PHILOX_M1 = 0xCD9E8D57u;
const uint PHILOX_W0 = 0x9E3779B9u;
const uint PHILOX_W1 = 0xBB67AE85u;

uvec4 philox4x32_10(uvec4 ctr, uvec2 key) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key += uvec2(PHILOX_W0, PHILOX_W1);
        }
        uint hi0, lo0, hi1, lo1;
        umulExtended(PHILOX_M0, ctr.x, hi0, lo0);
        umulExtended(PHILOX_M1, ctr.z, hi1, lo1);
        ctr = uvec4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    }
    return ctr;
}

// [0, 1) in steps of 2^-24: the top 24 bits, exactly.
float philox_uniform(uint w) {
    return float(w >> 8) * uintBitsToFloat(0x33800000u);
}

// ln(u) for u in (0, 1]: u = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact),
// ln(1 + f) = f - f^2/2 + f^3 h(f) with h a degree-8 fit (Chebyshev interpolation, error
// below 2e-9 on the interval), ln 2 split so that e ln2_hi is exact.
precise float philox_ln(float u) {
    uint b = floatBitsToUint(u);
    int e = int(b >> 23) - 127;
    precise float m = uintBitsToFloat((b & 0x7FFFFFu) | 0x3F800000u);
    if (m > uintBitsToFloat(0x3FB504F3u)) {
        m = m * 0.5;
        e += 1;
    }
    precise float f = m - 1.0;
    precise float h = uintBitsToFloat(0x3D8EC753u);
    h = h * f + uintBitsToFloat(0xBDEB1ADEu);
    h = h * f + uintBitsToFloat(0x3DEF5141u);
    h = h * f + uintBitsToFloat(0xBDFE7A63u);
    h = h * f + uintBitsToFloat(0x3E11E90Du);
    h = h * f + uintBitsToFloat(0xBE2AADA5u);
    h = h * f + uintBitsToFloat(0x3E4CCEADu);
    h = h * f + uintBitsToFloat(0xBE7FFFFEu);
    h = h * f + uintBitsToFloat(0x3EAAAAAAu);
    precise float f2 = f * f;
    precise float fe = float(e);
    precise float y = f2 * f * h;
    y = y + fe * uintBitsToFloat(0x35BFBE8Eu);
    y = y - 0.5 * f2;
    precise float r = f + y;
    return r + fe * uintBitsToFloat(0x3F317200u);
}

// Two independent standard normals from two words (Box-Muller):
// u1 = (top 24 bits of a + 1) 2^-24 in (0, 1], radius sqrt(-2 ln u1);
// angle 2 pi k / 2^24 with k the top 24 bits of b, as quadrant q = k >> 22 plus
// pi/4 + x pi/2, x = (k mod 2^22) 2^-22 - 1/2 in [-1/2, 1/2); sin and cos of x pi/2 by their
// Taylor series to degree 9 and 10 (truncation error below 2e-9).
precise vec2 philox_normal_pair(uint a, uint b) {
    precise float u1 = float((a >> 8) + 1u) * uintBitsToFloat(0x33800000u);
    precise float radius = sqrt(-2.0 * philox_ln(u1));
    uint k = b >> 8;
    uint q = k >> 22;
    precise float x = float(k & 0x3FFFFFu) * uintBitsToFloat(0x34800000u) - 0.5;
    precise float x2 = x * x;
    precise float s = uintBitsToFloat(0x39283C1Au);
    s = s * x2 + uintBitsToFloat(0xBB996966u);
    s = s * x2 + uintBitsToFloat(0x3DA335E3u);
    s = s * x2 + uintBitsToFloat(0xBF255DE7u);
    s = s * x2 + uintBitsToFloat(0x3FC90FDBu);
    s = s * x;
    precise float c = uintBitsToFloat(0xB7D368F9u);
    c = c * x2 + uintBitsToFloat(0x3A70FA83u);
    c = c * x2 + uintBitsToFloat(0xBCAAE9E4u);
    c = c * x2 + uintBitsToFloat(0x3E81E0F8u);
    c = c * x2 + uintBitsToFloat(0xBF9DE9E6u);
    c = c * x2 + 1.0;
    // cos and sin of pi/4 + x pi/2, then the quadrant's rotation (exact sign swaps).
    precise float cq = (c - s) * uintBitsToFloat(0x3F3504F3u);
    precise float sq = (c + s) * uintBitsToFloat(0x3F3504F3u);
    vec2 cs;
    if (q == 0u) cs = vec2(cq, sq);
    else if (q == 1u) cs = vec2(-sq, cq);
    else if (q == 2u) cs = vec2(-cq, -sq);
    else cs = vec2(sq, -cq);
    return vec2(radius * cs.x, radius * cs.y);
}
