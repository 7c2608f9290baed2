#version 450
// The exact transpose of affine_resample.comp (src/ops/affine_resample.rs), as a gather with no
// atomics: for input pixel q of image b,
//   out[b,c,q] = sum over integer taps t with pad(t) = q, over output pixels p,
//                of wy_p(ty) wx_p(tx) g[b,c,p],
// the weights being the forward's (affine.glsl's source_index, then 1 - f / f on the two
// taps floor(s), floor(s) + 1, computed with the same expressions). Per axis the taps that
// read q are q itself (Zeros), or q + k 2(n-1) and 2(n-1) - q + k 2(n-1) (Reflect; one
// progression when q is an edge, every integer when n == 1), kept to the box that the
// forward's taps can reach (the output corners mapped by theta, widened by the bilinear
// footprint and one pixel). A tap t is touched by the output pixels whose source point lies in
// the open square |s - t| < 1: its preimage under theta's 2x2 part M is a parallelogram whose
// bounding box, widened by MARGIN for rounding, bounds the pixel loop. Pixels in the box whose
// weight for t is zero add nothing, so the box need not be tight, and a singular (|det M| <
// 1e-12) or non-finite theta loops over the whole image instead: slower, never truncated.
// One invocation per input pixel and group of up to four channels.
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
#include "affine.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, g);
IN_R32F(1, theta);
OUT_R32F(2, result);
// As affine_resample.comp's block (one push struct for both).
layout(push_constant) uniform Push {
    uint n; uint C; uint H; uint W; uint CG;
    uint hw_magic; uint hw_log; uint w_magic; uint w_log; uint cg_magic; uint cg_log;
    uint reflect;
};

// Output-pixel widening of each preimage box: far above the f32 rounding of the box and of the
// forward's source points for images up to thousands of pixels and well-conditioned theta.
const float MARGIN = 0.0625;

// The taps along an axis of n that read index q: the progressions start.x + k step and (when
// start.z is 2) start.y + k step.
ivec3 preimage_starts(int q, int n, bool refl, out int step) {
    if (!refl) {
        // Past any tap range: one term.
        step = 1 << 24;
        return ivec3(q, q, 1);
    }
    if (n == 1) {
        step = 1;
        return ivec3(0, 0, 1);
    }
    int m = 2 * (n - 1);
    step = m;
    return ivec3(q, m - q, (q == 0 || q == n - 1) ? 1 : 2);
}

// The first term >= lo of start + k step (|start|, |lo| < 2^23, 0 < step <= 2^24).
int first_term(int start, int step, int lo) {
    int d = lo - start;
    if (d <= 0) return start - ((-d) / step) * step;
    return start + ((d + step - 1) / step) * step;
}

// The forward's weight of integer tap t for source index s along one axis.
float tap_weight(float s, int t) {
    float s0 = floor(s);
    int k = clamp(int(s0), -COORD_LIMIT_I, COORD_LIMIT_I);
    float f = s - s0;
    return t == k ? 1.0 - f : (t == k + 1 ? f : 0.0);
}

// [lo, hi] of the integers in [c - h, c + h] clipped to [0, n - 1], or all of [0, n - 1] when
// the box is not usable (the comparisons are false for NaN).
ivec2 pixel_range(float c, float h, bool ok, int n) {
    if (!(ok && abs(c) < 1.0e7 && h < 1.0e7)) return ivec2(0, n - 1);
    return ivec2(max(int(ceil(c - h)), 0), min(int(floor(c + h)), n - 1));
}

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint hw = H * W;
    uint plane = fast_div(idx, hw_magic, hw_log);
    uint pix = idx - plane * hw;
    uint b = fast_div(plane, cg_magic, cg_log);
    uint c0 = 4u * (plane - b * CG);
    uint qy = fast_div(pix, w_magic, w_log);
    uint qx = pix - qy * W;
    int w = int(W), h = int(H);
    vec3 r0 = vec3(LOAD(theta, 6u * b), LOAD(theta, 6u * b + 1u), LOAD(theta, 6u * b + 2u));
    vec3 r1 = vec3(LOAD(theta, 6u * b + 3u), LOAD(theta, 6u * b + 4u), LOAD(theta, 6u * b + 5u));
    vec2 centre = 0.5 * vec2(W, H) - 0.5;

    // The taps the forward can form: floor of the source points' box, and one past.
    vec2 mid = vec2(r0.z, r1.z) + centre;
    vec2 reach = vec2(abs(r0.x) * centre.x + abs(r0.y) * centre.y,
                      abs(r1.x) * centre.x + abs(r1.y) * centre.y);
    vec2 lo = clamp(mid - reach, -COORD_LIMIT, COORD_LIMIT);
    vec2 hi = clamp(mid + reach, -COORD_LIMIT, COORD_LIMIT);
    ivec2 tmin = clamp(ivec2(floor(lo)) - 1, -COORD_LIMIT_I - 1, COORD_LIMIT_I + 2);
    ivec2 tmax = clamp(ivec2(floor(hi)) + 2, -COORD_LIMIT_I - 1, COORD_LIMIT_I + 2);

    // Preimage boxes: M^-1 (t - centre - offset) +- (|M^-1| (1, 1) + MARGIN), in pixels.
    float det = r0.x * r1.y - r0.y * r1.x;
    bool ok = abs(det) >= 1.0e-12;
    float inv = ok ? 1.0 / det : 0.0;
    vec2 half_extent = vec2(abs(r1.y) + abs(r0.y), abs(r1.x) + abs(r0.x)) * abs(inv) + MARGIN;

    bool refl = reflect != 0u;
    int step_x, step_y;
    ivec3 sx = preimage_starts(int(qx), w, refl, step_x);
    ivec3 sy = preimage_starts(int(qy), h, refl, step_y);
    uint count = min(4u, C - c0);
    uint base0 = (b * C + c0) * hw;
    vec4 acc = vec4(0.0);
    for (int ky = 0; ky < sy.z; ++ky) {
        int ty0 = first_term(ky == 0 ? sy.x : sy.y, step_y, tmin.y);
        for (int ty = ty0; ty <= tmax.y; ty += step_y) {
            float dy = float(ty) - centre.y - r1.z;
            for (int kx = 0; kx < sx.z; ++kx) {
                int tx0 = first_term(kx == 0 ? sx.x : sx.y, step_x, tmin.x);
                for (int tx = tx0; tx <= tmax.x; tx += step_x) {
                    float dx = float(tx) - centre.x - r0.z;
                    float uc = (r1.y * dx - r0.y * dy) * inv + centre.x;
                    float vc = (r0.x * dy - r1.x * dx) * inv + centre.y;
                    ivec2 jr = pixel_range(uc, half_extent.x, ok, w);
                    ivec2 ir = pixel_range(vc, half_extent.y, ok, h);
                    for (int i = ir.x; i <= ir.y; ++i) {
                        for (int j = jr.x; j <= jr.y; ++j) {
                            vec2 s = source_index(r0, r1, i, j, centre);
                            float wt = tap_weight(s.y, ty) * tap_weight(s.x, tx);
                            if (wt == 0.0) continue;
                            uint p = uint(i * w + j);
                            for (uint ch = 0u; ch < count; ++ch) {
                                acc[ch] += wt * LOAD(g, base0 + ch * hw + p);
                            }
                        }
                    }
                }
            }
        }
    }
    for (uint ch = 0u; ch < count; ++ch) STORE(result, base0 + ch * hw + pix, acc[ch]);
}
