#version 450
// ADA's geometric augmentation (src/ops/affine_resample.rs): every output pixel of image b
// samples the input bilinearly at the point theta[b] maps it to,
//   out[b,c,i,j] = sum over the taps (ty, tx) in {y0, y0+1} x {x0, x0+1} of
//                  wy(ty) wx(tx) x[b, c, pad(ty), pad(tx)],
// (sx, sy) = source_index(theta[b], i, j) (affine.glsl), x0 = floor(sx), wx(x0) = 1 - fx,
// wx(x0+1) = fx with fx = sx - x0 (likewise in y); pad reflects (Reflect) or drops the tap
// (Zeros). One invocation per output pixel and group of up to four channels, which share the
// taps and weights. theta is [B, 6] (rows of the 2x3 matrix).
#include "io.glsl"
#include "index.glsl"
#include "fastdiv.glsl"
#include "affine.glsl"
layout(local_size_x = 64) in;
IN_R32F(0, x);
IN_R32F(1, theta);
OUT_R32F(2, result);
// n = B * CG * H * W invocations, CG = ceil(C / 4) channel groups; divisions by H*W, W and CG
// are multiply-highs (fastdiv.glsl). reflect: 1 for Reflect padding, 0 for Zeros.
layout(push_constant) uniform Push {
    uint n; uint C; uint H; uint W; uint CG;
    uint hw_magic; uint hw_log; uint w_magic; uint w_log; uint cg_magic; uint cg_log;
    uint reflect;
};

void main() {
    uint idx = flat_index();
    if (idx >= n) return;
    uint hw = H * W;
    uint plane = fast_div(idx, hw_magic, hw_log);
    uint pix = idx - plane * hw;
    uint b = fast_div(plane, cg_magic, cg_log);
    uint c0 = 4u * (plane - b * CG);
    uint i = fast_div(pix, w_magic, w_log);
    uint j = pix - i * W;
    vec3 r0 = vec3(LOAD(theta, 6u * b), LOAD(theta, 6u * b + 1u), LOAD(theta, 6u * b + 2u));
    vec3 r1 = vec3(LOAD(theta, 6u * b + 3u), LOAD(theta, 6u * b + 4u), LOAD(theta, 6u * b + 5u));
    vec2 centre = 0.5 * vec2(W, H) - 0.5;
    vec2 s = source_index(r0, r1, int(i), int(j), centre);
    vec2 s0 = floor(s);
    vec2 f = s - s0;
    ivec2 k = clamp(ivec2(s0), -COORD_LIMIT_I, COORD_LIMIT_I);
    bool refl = reflect != 0u;
    int xa = tap_index(k.x, int(W), refl);
    int xb = tap_index(k.x + 1, int(W), refl);
    int ya = tap_index(k.y, int(H), refl);
    int yb = tap_index(k.y + 1, int(H), refl);
    // A dropped tap reads a valid element (index 0) and counts zero.
    uint ra = uint(max(ya, 0)) * W;
    uint rb = uint(max(yb, 0)) * W;
    uint ca = uint(max(xa, 0));
    uint cb = uint(max(xb, 0));
    bool aa = ya >= 0 && xa >= 0, ab = ya >= 0 && xb >= 0;
    bool ba = yb >= 0 && xa >= 0, bb = yb >= 0 && xb >= 0;
    uint count = min(4u, C - c0);
    for (uint ch = 0u; ch < count; ++ch) {
        uint base = ((b * C) + c0 + ch) * hw;
        float vaa = aa ? LOAD(x, base + ra + ca) : 0.0;
        float vab = ab ? LOAD(x, base + ra + cb) : 0.0;
        float vba = ba ? LOAD(x, base + rb + ca) : 0.0;
        float vbb = bb ? LOAD(x, base + rb + cb) : 0.0;
        float top = (1.0 - f.x) * vaa + f.x * vab;
        float bottom = (1.0 - f.x) * vba + f.x * vbb;
        STORE(result, base + pix, (1.0 - f.y) * top + f.y * bottom);
    }
}
