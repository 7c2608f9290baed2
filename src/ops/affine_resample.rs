//! ADA's geometric augmentation (Karras et al. 2020, "Training generative adversarial networks
//! with limited data"): every image of a batch resampled bilinearly through its own 2x3 affine
//! matrix, and the exact transpose of that resampling.
//!
//! `affine_resample(x, theta, padding)`: x `[B, C, H, W]`, theta `[B, 2, 3]` -> `[B, C, H, W]`.
//! For image b with `theta[b] = [[t00, t01, t02], [t10, t11, t12]]`, output pixel (row i,
//! column j) has centred coordinates (pixel units, origin at the image centre, v down)
//!
//!   `u = j + 0.5 - W/2`,  `v = i + 0.5 - H/2`,
//!
//! and samples the source point (the same centred units: theta maps output to input, as a
//! `grid_sample` matrix does)
//!
//!   `su = t00 u + t01 v + t02`,  `sv = t10 u + t11 v + t12`,
//!
//! at the continuous source index `sx = su + W/2 - 0.5`, `sy = sv + H/2 - 0.5`, each clamped
//! to `[-2^22, 2^22]` (where f32 keeps one fractional bit; this keeps the shaders' float->int
//! conversions defined for any theta). With `x0 = floor(sx)`, `fx = sx - x0` (`y0`, `fy`
//! likewise), the taps and weights are
//!
//!   `out[b,c,i,j] = sum_{ty in {y0, y0+1}, tx in {x0, x0+1}} wy(ty) wx(tx) x[b,c,pad(ty),pad(tx)]`,
//!   `wx(x0) = 1 - fx`, `wx(x0+1) = fx`, `wy(y0) = 1 - fy`, `wy(y0+1) = fy`,
//!
//! where a tap outside `[0, W-1] x [0, H-1]` is, by `padding`:
//! - `Zeros`: dropped (it contributes 0);
//! - `Reflect`: reflected about the edge pixel without repeating it (numpy's 'reflect':
//!   -1 -> 1, W -> W-2), repeatedly for far taps (period `2(W-1)`; `W == 1` maps every tap to
//!   0), per axis.
//!
//! So the identity `[[1,0,0],[0,1,0]]` returns x exactly, `[[-1,0,0],[0,1,0]]` is an exact
//! x-flip, `[[1,0,2],[0,1,0]]` an exact shift (`out[.., j] = x[.., pad(j + 2)]`), and the 90-degree
//! rotations are exact on square images (every weight is 0 or 1).
//!
//! `affine_resample_adjoint(g, theta, padding)`: `[B, C, H, W] -> [B, C, H, W]`, the exact
//! transpose A^T: for every input pixel q, the sum over output pixels p of weight(p -> q) g[p],
//! where reflected taps that land on q count too. The kernel is a gather (no atomics, so the
//! result is deterministic): for q it enumerates the integer taps t that read q (q itself for
//! Zeros; q and its reflections `q + 2k(n-1)`, `2(n-1) - q + 2k(n-1)` per axis for Reflect)
//! inside the box the forward's taps can reach (the four output-corner centres mapped by theta,
//! widened by one pixel past the bilinear footprint); the output pixels touching t have source
//! points in the open square `|s - t| < 1`, whose preimage under theta's 2x2 part M is a
//! parallelogram; the shader loops over its bounding box (from M^-1, computed in the shader
//! since theta is device data, widened by 1/16 pixel for rounding) and adds the forward's own
//! weight for exactly tap t, which is zero outside the parallelogram. A singular theta
//! (`|det M| < 1e-12`) or one whose box is not finite makes the loop cover the whole image:
//! still exact, only slower.
//!
//! Work: a preimage box holds about `(2/scale + 1)^2` pixels (`scale` the smaller singular value
//! of M), and an input pixel is read through one tap position (Zeros, or Reflect where the
//! source box stays inside the image) or through its reflections too, about `2 scale` per axis
//! when the box reaches past the edges; so the gather costs a few dozen iterations per pixel
//! for ADA's ranges, which this assumes (isotropic and anisotropic scales lognormal with std
//! 0.2 ln 2, i.e. within a few x either way). Nothing is truncated: a theta that zooms in 50x
//! makes about 10^4 iterations per reached pixel and still gives the exact transpose, it just
//! takes longer. Measured on lavapipe (2-core AMD EPYC), `[32, 3, 64, 64]`: forward 2-4 ms,
//! adjoint 11-14 ms (Zeros) and 15-29 ms (Reflect) for a rotation with scale 1.1, and zooms of
//! 0.6x and 1.6x.
//!
//! Precision: the device forms source points in f32, so a point `r` pixels from the centre
//! carries a rounding of about `r 2^-23` pixels, which moves a bilinear weight by as much (about
//! 1e-5 at 100 pixels). The adjoint recomputes the forward's source points and weights with the
//! same expressions (shaders/common/affine.glsl), so `<A x, y> = <x, A^T y>` holds to f32
//! rounding regardless.
//!
//! Both are linear in their image: d affine_resample/dx applied to g is
//! `affine_resample_adjoint(g)`, and the adjoint's gradient is `affine_resample` again, so every
//! derivative order is made of these two ops. theta is data (an augmentation's per-image
//! parameters, a tape leaf or a value computed without gradient): it gets no gradient, and
//! passing a theta that requires one is refused rather than silently detached.

use super::{dispatch_1d, fastdiv};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::AffineResamplePush;
use crate::vk::{read, write};

/// What a bilinear tap outside the image reads, see the module header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// numpy's 'reflect' (no repeated edge), periodic for far taps.
    Reflect,
    /// Taps outside the image contribute zero.
    Zeros,
}

/// `[B, C, H, W]` resampled through `theta` `[B, 2, 3]` (output -> input, centred pixel
/// units), see the module header. theta gets no gradient.
pub fn affine_resample(t: &mut Tape, x: Var, theta: Var, padding: Padding) -> Var {
    let s = check_shapes(t, x, theta, "affine_resample");
    t.push(
        AffineResample {
            padding,
            adjoint: false,
        },
        &[x, theta],
        &s,
    )
}

/// The transpose of `affine_resample` for the same `theta` and `padding`: `[B, C, H, W]` ->
/// `[B, C, H, W]`. theta gets no gradient.
pub fn affine_resample_adjoint(t: &mut Tape, g: Var, theta: Var, padding: Padding) -> Var {
    let s = check_shapes(t, g, theta, "affine_resample_adjoint");
    t.push(
        AffineResample {
            padding,
            adjoint: true,
        },
        &[g, theta],
        &s,
    )
}

fn check_shapes(t: &Tape, x: Var, theta: Var, what: &str) -> Vec<usize> {
    let s = t.shape(x).to_vec();
    assert!(
        s.len() == 4 && s.iter().all(|&d| d > 0),
        "{what} takes a non-empty [B, C, H, W], got {s:?}"
    );
    assert_eq!(
        t.shape(theta),
        [s[0], 2, 3],
        "{what}: theta must be [B, 2, 3] for x {s:?}"
    );
    assert!(
        !t.requires_grad(theta),
        "{what}: theta is data and gets no gradient; detach it (or build it under no_grad)"
    );
    let lanes = s[0] * s[1].div_ceil(4) * s[2] * s[3];
    assert!(
        u32::try_from(s.iter().product::<usize>()).is_ok() && lanes < 1 << 31,
        "{what}: {s:?} has more elements than the kernels index"
    );
    s
}

/// The shaders' clamp on source indices.
const COORD_LIMIT: f64 = 4_194_304.0;

/// The continuous source index (sx, sy) of output pixel (i, j) of an `h x w` image.
fn source_index(theta: &[f64], i: usize, j: usize, h: usize, w: usize) -> (f64, f64) {
    let u = j as f64 + 0.5 - w as f64 / 2.0;
    let v = i as f64 + 0.5 - h as f64 / 2.0;
    let su = theta[0] * u + theta[1] * v + theta[2];
    let sv = theta[3] * u + theta[4] * v + theta[5];
    (
        (su + w as f64 / 2.0 - 0.5).clamp(-COORD_LIMIT, COORD_LIMIT),
        (sv + h as f64 / 2.0 - 0.5).clamp(-COORD_LIMIT, COORD_LIMIT),
    )
}

/// The index integer tap `t` reads along an axis of `n`, None where it reads zero.
fn pad_index(t: i64, n: usize, padding: Padding) -> Option<usize> {
    let n = n as i64;
    if (0..n).contains(&t) {
        return Some(t as usize);
    }
    match padding {
        Padding::Zeros => None,
        Padding::Reflect if n == 1 => Some(0),
        Padding::Reflect => {
            let m = 2 * (n - 1);
            let r = t.rem_euclid(m);
            Some(if r < n { r } else { m - r } as usize)
        }
    }
}

/// The two taps of source index `s` along an axis of `n`: (index read, weight).
fn axis_taps(s: f64, n: usize, padding: Padding) -> [(Option<usize>, f64); 2] {
    let x0 = s.floor();
    let f = s - x0;
    let k = x0 as i64;
    [
        (pad_index(k, n, padding), 1.0 - f),
        (pad_index(k + 1, n, padding), f),
    ]
}

/// Calls `visit(output pixel, input pixel, weight)` for every tap of every output pixel of an
/// `h x w` image under `theta` (6 values): the sparse matrix A, entry by entry.
fn for_each_tap(
    theta: &[f64],
    h: usize,
    w: usize,
    padding: Padding,
    mut visit: impl FnMut(usize, usize, f64),
) {
    for i in 0..h {
        for j in 0..w {
            let (sx, sy) = source_index(theta, i, j, h, w);
            for (ry, wy) in axis_taps(sy, h, padding) {
                for (rx, wx) in axis_taps(sx, w, padding) {
                    if let (Some(ry), Some(rx)) = (ry, rx) {
                        visit(i * w + j, ry * w + rx, wy * wx);
                    }
                }
            }
        }
    }
}

struct AffineResample {
    padding: Padding,
    adjoint: bool,
}

impl Op for AffineResample {
    fn name(&self) -> &'static str {
        if self.adjoint {
            "affine_resample_adjoint"
        } else {
            "affine_resample"
        }
    }

    /// The forward gathers `x` through A; the adjoint scatters `g` through the same entries,
    /// so the two references are transposes by construction.
    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, theta) = (inputs[0], inputs[1]);
        let [b, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
        let hw = h * w;
        let mut out = vec![0.0; x.numel()];
        for bi in 0..b {
            let th = &theta.data[6 * bi..6 * bi + 6];
            for ci in 0..c {
                let base = (bi * c + ci) * hw;
                let src = &x.data[base..base + hw];
                let dst = &mut out[base..base + hw];
                for_each_tap(th, h, w, self.padding, |p, q, wt| {
                    if self.adjoint {
                        dst[q] += wt * src[p];
                    } else {
                        dst[p] += wt * src[q];
                    }
                });
            }
        }
        CpuTensor::new(&x.shape, out)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = out.shape();
        let [b, c, h, w] = [s[0], s[1], s[2], s[3]];
        let groups = c.div_ceil(4);
        // One invocation per pixel and group of four channels.
        let n = b * groups * h * w;
        let (hw_magic, hw_log) = fastdiv::magic((h * w) as u32);
        let (w_magic, w_log) = fastdiv::magic(w as u32);
        let (cg_magic, cg_log) = fastdiv::magic(groups as u32);
        let u = |v: usize| (v as u32).into();
        let push = AffineResamplePush {
            n: u(n),
            C: u(c),
            H: u(h),
            W: u(w),
            CG: u(groups),
            hw_magic: hw_magic.into(),
            hw_log: hw_log.into(),
            w_magic: w_magic.into(),
            w_log: w_log.into(),
            cg_magic: cg_magic.into(),
            cg_log: cg_log.into(),
            reflect: (self.padding == Padding::Reflect).into(),
        };
        let ctx = rec.context();
        let kernels = ctx.kernels();
        let kernel = if self.adjoint {
            &kernels.affine_resample_adjoint
        } else {
            &kernels.affine_resample
        };
        dispatch_1d(
            rec,
            kernel,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                write(out.buffer()),
            ],
            &push,
            n,
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let theta = inputs[1];
        let dx = if self.adjoint {
            affine_resample(t, g, theta, self.padding)
        } else {
            affine_resample_adjoint(t, g, theta, self.padding)
        };
        // theta is data: the constructors refuse one that requires a gradient.
        vec![Some(dx), None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{self, assert_close, check_op, random, OpCase};
    use crate::vk::{Context, LimitsMode};

    const PADDINGS: [Padding; 2] = [Padding::Reflect, Padding::Zeros];

    /// A 2x3 matrix as its six f32-representable values.
    type Theta = [f64; 6];

    fn f32s(v: [f64; 6]) -> Theta {
        v.map(|x| x as f32 as f64)
    }

    /// R(angle) diag(sx, sy) with a translation: output -> input.
    fn rotate_scale(angle_deg: f64, sx: f64, sy: f64, tx: f64, ty: f64) -> Theta {
        let (s, c) = angle_deg.to_radians().sin_cos();
        f32s([c * sx, -s * sy, tx, s * sx, c * sy, ty])
    }

    /// The cases the brief names, by name.
    fn thetas() -> Vec<(&'static str, Theta)> {
        vec![
            ("identity", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            ("x-flip", [-1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            ("rot90", [0.0, -1.0, 0.0, 1.0, 0.0, 0.0]),
            ("integer shift", [1.0, 0.0, 2.0, 0.0, 1.0, -1.0]),
            ("fractional shift", f32s([1.0, 0.0, 0.3, 0.0, 1.0, -1.7])),
            ("scale 0.7", f32s([0.7, 0.0, 0.0, 0.0, 0.7, 0.0])),
            ("scale 1.4", f32s([1.4, 0.0, 0.0, 0.0, 1.4, 0.0])),
            ("rot30 aniso", rotate_scale(30.0, 1.3, 0.8, 0.25, -0.4)),
            // Zoomed out 3.5x past the edges: Reflect folds taps several periods away.
            ("scale 3.5 shifted", f32s([3.5, 0.4, 1.3, -0.2, 3.1, -2.6])),
            // Singular: the gather loops over the whole image.
            ("singular", [1.0, 2.0, 0.5, 0.5, 1.0, -0.25]),
        ]
    }

    /// Batch `[2, ..]` of theta: image 0 gets case k, image 1 case k + 3 (every image its own).
    fn batch_theta(k: usize) -> (String, CpuTensor) {
        let all = thetas();
        let (a, b) = (&all[k], &all[(k + 3) % all.len()]);
        let mut data = a.1.to_vec();
        data.extend(b.1);
        (
            format!("{} / {}", a.0, b.0),
            CpuTensor::new(&[2, 2, 3], data),
        )
    }

    /// Square and odd, non-square with channel groups of 4 + 1, and one-pixel-high and -wide
    /// images (Reflect maps every tap along that axis to 0).
    const SHAPES: [[usize; 4]; 4] = [[2, 3, 7, 7], [2, 5, 6, 9], [2, 2, 1, 6], [2, 1, 5, 1]];

    fn case(name: &str, shape: [usize; 4], theta: &CpuTensor, padding: Padding, adjoint: bool) {
        let op = if adjoint {
            affine_resample_adjoint
        } else {
            affine_resample
        };
        check_op(
            OpCase::new(name, &[&shape, &[2, 2, 3]], move |t, v| {
                op(t, v[0], v[1], padding)
            })
            .input(1, theta.clone())
            .constant(1),
        );
    }

    /// The four checks (forward and backward against the CPU, finite differences, double
    /// backward) for every theta, padding and shape.
    #[test]
    fn affine_resample_matches_cpu_with_gradients() {
        for shape in SHAPES {
            for k in 0..thetas().len() {
                let (name, theta) = batch_theta(k);
                for padding in PADDINGS {
                    let name = format!("affine_resample {name} {padding:?}");
                    case(&name, shape, &theta, padding, false);
                }
            }
        }
    }

    #[test]
    fn affine_resample_adjoint_matches_cpu_with_gradients() {
        for shape in SHAPES {
            for k in 0..thetas().len() {
                let (name, theta) = batch_theta(k);
                for padding in PADDINGS {
                    let name = format!("affine_resample_adjoint {name} {padding:?}");
                    case(&name, shape, &theta, padding, true);
                }
            }
        }
    }

    /// Device values of `affine_resample` and of its adjoint for x, g and theta.
    fn device_pair(
        ctx: &Context,
        x: &CpuTensor,
        g: &CpuTensor,
        theta: &CpuTensor,
        padding: Padding,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut t = Tape::new();
        let xv = t.leaf(&x.shape, false);
        let gv = t.leaf(&g.shape, false);
        let th = t.leaf(&theta.shape, false);
        let ax = affine_resample(&mut t, xv, th, padding);
        let ag = affine_resample_adjoint(&mut t, gv, th, padding);
        let xd = Tensor::from_cpu(ctx, x).unwrap();
        let gd = Tensor::from_cpu(ctx, g).unwrap();
        let td = Tensor::from_cpu(ctx, theta).unwrap();
        let mut out = t
            .eval(ctx, &[ax, ag], &[(xv, &xd), (gv, &gd), (th, &td)])
            .unwrap();
        let ag = out.pop().unwrap();
        (out.pop().unwrap(), ag)
    }

    /// The CPU reference of the op (or its adjoint) on x.
    fn cpu_apply(x: &CpuTensor, theta: &CpuTensor, padding: Padding, adjoint: bool) -> CpuTensor {
        let mut t = Tape::new();
        let xv = t.leaf(&x.shape, false);
        let th = t.leaf(&theta.shape, false);
        let y = if adjoint {
            affine_resample_adjoint(&mut t, xv, th, padding)
        } else {
            affine_resample(&mut t, xv, th, padding)
        };
        t.eval_cpu(&[y], &[(xv, x), (th, theta)]).remove(0)
    }

    fn dot(a: &[f32], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(&a, b)| a as f64 * b).sum()
    }

    /// `<A x, y> = <x, A^T y>` on the device for every theta and padding, and exactly (to f64
    /// rounding) between the references.
    #[test]
    fn affine_resample_adjoint_is_the_transpose() {
        let ctx = testing::context();
        for shape in [[2, 3, 9, 13], [2, 1, 8, 8]] {
            let x = random(&shape, 11);
            let y = random(&shape, 12);
            for k in 0..thetas().len() {
                let (name, theta) = batch_theta(k);
                for padding in PADDINGS {
                    let (ax, aty) = device_pair(&ctx, &x, &y, &theta, padding);
                    let (lhs, rhs) = (dot(&ax, &y.data), dot(&aty, &x.data));
                    assert!(
                        (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0),
                        "{shape:?} {name} {padding:?}: <Ax, y> = {lhs}, <x, A^T y> = {rhs}"
                    );
                    let cx = cpu_apply(&x, &theta, padding, false);
                    let cy = cpu_apply(&y, &theta, padding, true);
                    let lhs: f64 = cx.data.iter().zip(&y.data).map(|(a, b)| a * b).sum();
                    let rhs: f64 = cy.data.iter().zip(&x.data).map(|(a, b)| a * b).sum();
                    assert!(
                        (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
                        "{name} {padding:?}: references {lhs} vs {rhs}"
                    );
                    assert_close(&aty, &cy.data, 1e-5, 1e-4, &format!("{name} {padding:?}"));
                }
            }
        }
    }

    /// numpy's 'reflect' per axis, for the permutation tests.
    fn reflect(t: i64, n: usize) -> usize {
        pad_index(t, n, Padding::Reflect).unwrap()
    }

    /// Identity, x-flip, integer shifts and rot90 are index permutations (or, with Zeros, drop
    /// out-of-image taps): bit for bit on the device.
    #[test]
    fn affine_resample_exact_cases_are_permutations() {
        let n = 8usize;
        // (theta, where output (i, j) reads from: Some((row, col)) or None for zero).
        type Source = fn(i64, i64, usize, Padding) -> Option<(i64, i64)>;
        let cases: [(&str, Theta, Source); 6] = [
            ("identity", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], |i, j, _, _| {
                Some((i, j))
            }),
            ("x-flip", [-1.0, 0.0, 0.0, 0.0, 1.0, 0.0], |i, j, w, _| {
                Some((i, w as i64 - 1 - j))
            }),
            ("y-flip", [1.0, 0.0, 0.0, 0.0, -1.0, 0.0], |i, j, w, _| {
                Some((w as i64 - 1 - i, j))
            }),
            (
                "shift (2, -3)",
                [1.0, 0.0, 2.0, 0.0, 1.0, -3.0],
                |i, j, _, _| Some((i - 3, j + 2)),
            ),
            ("rot90", [0.0, -1.0, 0.0, 1.0, 0.0, 0.0], |i, j, w, _| {
                Some((j, w as i64 - 1 - i))
            }),
            ("rot270", [0.0, 1.0, 0.0, -1.0, 0.0, 0.0], |i, j, w, _| {
                Some((w as i64 - 1 - j, i))
            }),
        ];
        let ctx = testing::context();
        let shape = [2, 3, n, n];
        let x = random(&shape, 5);
        let g = random(&shape, 6);
        for (name, th, source) in cases {
            let mut data = th.to_vec();
            data.extend(th);
            let theta = CpuTensor::new(&[2, 2, 3], data);
            for padding in PADDINGS {
                let (ax, ag) = device_pair(&ctx, &x, &g, &theta, padding);
                let mut want = vec![0.0f32; x.numel()];
                let mut want_t = vec![0.0f64; x.numel()];
                for plane in 0..shape[0] * shape[1] {
                    for i in 0..n {
                        for j in 0..n {
                            let (r, c) = source(i as i64, j as i64, n, padding).unwrap();
                            let inside = (0..n as i64).contains(&r) && (0..n as i64).contains(&c);
                            let read = match padding {
                                Padding::Reflect => Some((reflect(r, n), reflect(c, n))),
                                Padding::Zeros if inside => Some((r as usize, c as usize)),
                                Padding::Zeros => None,
                            };
                            let p = plane * n * n + i * n + j;
                            if let Some((r, c)) = read {
                                let q = plane * n * n + r * n + c;
                                want[p] = x.data[q] as f32;
                                want_t[q] += g.data[p];
                            }
                        }
                    }
                }
                assert!(ax == want, "{name} {padding:?}: not the index permutation");
                // A permutation's transpose is exact too; with Reflect several outputs can
                // land on one input, whose sum may round.
                let exact = padding == Padding::Zeros || !name.starts_with("shift");
                if exact {
                    let want_t: Vec<f32> = want_t.iter().map(|&v| v as f32).collect();
                    assert!(ag == want_t, "{name} {padding:?}: adjoint not the inverse");
                } else {
                    assert_close(&ag, &want_t, 1e-6, 1e-6, name);
                }
            }
        }
    }

    /// A 50x zoom makes about 10^4 gather iterations per reached pixel: still the exact
    /// transpose, nothing truncated.
    #[test]
    fn affine_resample_adjoint_is_exact_for_a_huge_zoom() {
        let ctx = testing::context();
        let shape = [1, 2, 96, 80];
        let x = random(&shape, 21);
        let y = random(&shape, 22);
        let th = f32s([0.02, 0.005, 0.6, -0.004, 0.021, -0.3]);
        let theta = CpuTensor::new(&[1, 2, 3], th.to_vec());
        for padding in PADDINGS {
            let (ax, aty) = device_pair(&ctx, &x, &y, &theta, padding);
            let (lhs, rhs) = (dot(&ax, &y.data), dot(&aty, &x.data));
            assert!(
                (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0),
                "{padding:?}: <Ax, y> = {lhs}, <x, A^T y> = {rhs}"
            );
            let want = cpu_apply(&y, &theta, padding, true);
            assert_close(&aty, &want.data, 1e-5, 1e-4, &format!("{padding:?}"));
        }
    }

    /// Past 65536 elements the Vulkan 1.1 minimum texel view is too small, so under minimum
    /// limits both kernels (and color_matrix's) run their storage-buffer builds.
    #[test]
    fn affine_resample_storage_builds_match_cpu() {
        let ctx = testing::context_with_limits(LimitsMode::Minimum);
        let shape = [2, 3, 96, 128];
        assert!(shape.iter().product::<usize>() > 65536);
        let x = random(&shape, 41);
        let g = random(&shape, 42);
        let mut th = rotate_scale(30.0, 1.3, 0.8, 0.25, -0.4).to_vec();
        th.extend(f32s([0.7, 0.1, 0.6, -0.05, 0.75, -0.3]));
        let theta = CpuTensor::new(&[2, 2, 3], th);
        // Source points ~100 pixels out carry f32 rounding of ~1e-5 pixel, which moves a
        // bilinear weight by as much: a wider tolerance than on the small images.
        for padding in PADDINGS {
            let (ax, ag) = device_pair(&ctx, &x, &g, &theta, padding);
            let what = format!("storage {padding:?}");
            assert_close(
                &ax,
                &cpu_apply(&x, &theta, padding, false).data,
                1e-4,
                1e-4,
                &what,
            );
            assert_close(
                &ag,
                &cpu_apply(&g, &theta, padding, true).data,
                1e-4,
                1e-4,
                &what,
            );
        }
        let m = random(&[2, 3, 4], 43);
        let mut t = Tape::new();
        let (xv, mv) = (t.leaf(&shape, false), t.leaf(&[2, 3, 4], false));
        let fwd = ops::color_matrix(&mut t, xv, mv);
        let tr = ops::color_matrix_transpose(&mut t, xv, mv);
        let (xd, md) = (
            Tensor::from_cpu(&ctx, &x).unwrap(),
            Tensor::from_cpu(&ctx, &m).unwrap(),
        );
        let got = t.eval(&ctx, &[fwd, tr], &[(xv, &xd), (mv, &md)]).unwrap();
        let want = t.eval_cpu(&[fwd, tr], &[(xv, &x), (mv, &m)]);
        assert_close(&got[0], &want[0].data, 1e-5, 1e-4, "storage color_matrix");
        assert_close(
            &got[1],
            &want[1].data,
            1e-5,
            1e-4,
            "storage color_matrix_transpose",
        );
    }

    /// The R1 pattern through an ADA pipeline: y = A(color_matrix(x)), L = sum(c y^2),
    /// R = ||dL/dx||^2 with dL/dx kept differentiable, and dR/dx: device against the CPU tape,
    /// and the CPU tape against finite differences of R.
    #[test]
    fn affine_resample_r1_double_backward() {
        let shape = [2, 3, 6, 7];
        for padding in PADDINGS {
            let mut t = Tape::new();
            let x = t.leaf(&shape, true);
            let m = t.leaf(&[2, 3, 4], false);
            let th = t.leaf(&[2, 2, 3], false);
            let c = t.leaf(&shape, false);
            let colour = ops::color_matrix(&mut t, x, m);
            let y = affine_resample(&mut t, colour, th, padding);
            let y2 = ops::square(&mut t, y);
            let weighted = ops::mul(&mut t, y2, c);
            let loss = ops::sum_all(&mut t, weighted);
            let dx = t.grad(&[loss], &[x], None, true)[0].unwrap();
            let dx2 = ops::square(&mut t, dx);
            let r = ops::sum_all(&mut t, dx2);
            let dr = t.grad(&[r], &[x], None, false)[0].unwrap();

            let theta = {
                let mut d = rotate_scale(30.0, 1.3, 0.8, 0.25, -0.4).to_vec();
                d.extend(f32s([0.7, 0.1, 0.6, -0.05, 0.75, -0.3]));
                CpuTensor::new(&[2, 2, 3], d)
            };
            let values = [
                (x, random(&shape, 31)),
                (m, random(&[2, 3, 4], 32).map(|v| v * 0.5)),
                (th, theta),
                (c, random(&shape, 33)),
            ];
            let cpu_leaves: Vec<(Var, &CpuTensor)> = values.iter().map(|(v, c)| (*v, c)).collect();
            let ctx = testing::context();
            let dev: Vec<(Var, Tensor)> = values
                .iter()
                .map(|(v, c)| (*v, Tensor::from_cpu(&ctx, c).unwrap()))
                .collect();
            let dev_leaves: Vec<(Var, &Tensor)> = dev.iter().map(|(v, d)| (*v, d)).collect();
            let got = t.eval(&ctx, &[r, dr], &dev_leaves).unwrap();
            let want = t.eval_cpu(&[r, dr], &cpu_leaves);
            assert_close(&got[0], &want[0].data, 1e-5, 1e-4, "R");
            assert_close(&got[1], &want[1].data, 1e-5, 1e-4, "dR/dx");

            let n = values[0].1.numel();
            let scale = want[1].data.iter().fold(1.0f64, |a, v| a.max(v.abs()));
            for j in [0, n / 5, n / 2, (3 * n) / 4, n - 1] {
                let at = |delta: f64| {
                    let mut moved = values[0].1.clone();
                    moved.data[j] += delta;
                    let mut leaves = cpu_leaves.clone();
                    leaves[0] = (x, &moved);
                    t.eval_cpu(&[r], &leaves)[0].data[0]
                };
                let eps = 1e-5;
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                let exact = want[1].data[j];
                assert!(
                    (numeric - exact).abs() <= 1e-6 * scale,
                    "{padding:?} element {j}: tape {exact}, finite differences {numeric}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "theta is data")]
    fn affine_resample_refuses_a_theta_that_requires_grad() {
        let mut t = Tape::new();
        let x = t.leaf(&[1, 1, 4, 4], true);
        let th = t.leaf(&[1, 2, 3], true);
        affine_resample(&mut t, x, th, Padding::Zeros);
    }
}
