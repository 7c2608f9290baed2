//! ADA's colour augmentation (Karras et al. 2020): a per-image affine map of the channels.
//! Brightness, contrast, luma flip, hue rotation and saturation compose into one 4x4 matrix per
//! image (homogeneous RGB); its top three rows are m.
//!
//! - `color_matrix(x, m)`: x `[B, C, H, W]`, m `[B, C, C+1]` (ADA: C = 3, m `[B, 3, 4]`) ->
//!   `[B, C, H, W]`, `out[b,c,p] = sum_k m[b,c,k] x[b,k,p] + m[b,c,C]`.
//! - `color_matrix_transpose(g, m)`: `out[b,k,p] = sum_c m[b,c,k] g[b,c,p]`, the transposed CxC
//!   part with no offset: the gradient of `color_matrix` with respect to x.
//!
//! Both are affine in their image, so every derivative order is made of these kernels: the
//! gradient of `color_matrix` (with or without its offset) is `color_matrix_transpose`, and
//! the gradient of `color_matrix_transpose` is the forward without the offset. m is data (an
//! augmentation's per-image parameters, a tape leaf or a value computed without gradient): it
//! gets no gradient, and an m that requires one is refused rather than silently detached.

use super::{dispatch_1d, fastdiv};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::{read, write};

/// `out[b,c,p] = sum_k m[b,c,k] x[b,k,p] + m[b,c,C]`, see the module header. m gets no
/// gradient.
pub fn color_matrix(t: &mut Tape, x: Var, m: Var) -> Var {
    let s = check_shapes(t, x, m, "color_matrix");
    t.push(ColorMatrix(Mode::Affine), &[x, m], &s)
}

/// `out[b,k,p] = sum_c m[b,c,k] g[b,c,p]`: the gradient of `color_matrix` with respect to x.
/// m gets no gradient.
pub fn color_matrix_transpose(t: &mut Tape, g: Var, m: Var) -> Var {
    let s = check_shapes(t, g, m, "color_matrix_transpose");
    t.push(ColorMatrix(Mode::Transpose), &[g, m], &s)
}

/// The forward without its offset: the gradient of `color_matrix_transpose`.
fn color_matrix_linear(t: &mut Tape, x: Var, m: Var) -> Var {
    let s = check_shapes(t, x, m, "color_matrix");
    t.push(ColorMatrix(Mode::Linear), &[x, m], &s)
}

fn check_shapes(t: &Tape, x: Var, m: Var, what: &str) -> Vec<usize> {
    let s = t.shape(x).to_vec();
    assert!(
        s.len() == 4 && s.iter().all(|&d| d > 0),
        "{what} takes a non-empty [B, C, H, W], got {s:?}"
    );
    assert_eq!(
        t.shape(m),
        [s[0], s[1], s[1] + 1],
        "{what}: m must be [B, C, C+1] for x {s:?}"
    );
    assert!(
        !t.requires_grad(m),
        "{what}: m is data and gets no gradient; detach it (or build it under no_grad)"
    );
    assert!(
        u32::try_from(s.iter().product::<usize>()).is_ok(),
        "{what}: {s:?} has more elements than the kernel indexes"
    );
    s
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// `m x + offset`.
    Affine,
    /// `m x`.
    Linear,
    /// `m^T x`.
    Transpose,
}

struct ColorMatrix(Mode);

impl Op for ColorMatrix {
    fn name(&self) -> &'static str {
        match self.0 {
            Mode::Affine => "color_matrix",
            Mode::Linear => "color_matrix_linear",
            Mode::Transpose => "color_matrix_transpose",
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, m) = (inputs[0], inputs[1]);
        let (b, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
        let at = |bi: usize, row: usize, col: usize| m.data[(bi * c + row) * (c + 1) + col];
        let mut out = vec![0.0; x.numel()];
        for bi in 0..b {
            for co in 0..c {
                for p in 0..hw {
                    let mut acc = 0.0;
                    for k in 0..c {
                        let w = match self.0 {
                            Mode::Transpose => at(bi, k, co),
                            _ => at(bi, co, k),
                        };
                        acc += w * x.data[(bi * c + k) * hw + p];
                    }
                    if self.0 == Mode::Affine {
                        acc += at(bi, co, c);
                    }
                    out[(bi * c + co) * hw + p] = acc;
                }
            }
        }
        CpuTensor::new(&x.shape, out)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = out.shape();
        let (n, c, hw) = (out.numel(), s[1], s[2] * s[3]);
        let (hw_magic, hw_log) = fastdiv::magic(hw as u32);
        let (c_magic, c_log) = fastdiv::magic(c as u32);
        let u = |v: usize| (v as u32).into();
        let push = crate::vk::push::ColorMatrixPush {
            n: u(n),
            C: u(c),
            HW: u(hw),
            hw_magic: hw_magic.into(),
            hw_log: hw_log.into(),
            c_magic: c_magic.into(),
            c_log: c_log.into(),
            offset: (self.0 == Mode::Affine).into(),
        };
        let ctx = rec.context();
        let kernels = ctx.kernels();
        let kernel = match self.0 {
            Mode::Transpose => &kernels.color_matrix_transpose,
            _ => &kernels.color_matrix_forward,
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
        let m = inputs[1];
        let dx = match self.0 {
            Mode::Transpose => color_matrix_linear(t, g, m),
            _ => color_matrix_transpose(t, g, m),
        };
        // m is data: the constructors refuse one that requires a gradient.
        vec![Some(dx), None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, check_op, random, OpCase};

    const SHAPES: [[usize; 4]; 4] = [[2, 3, 5, 7], [1, 3, 1, 1], [3, 1, 4, 3], [2, 4, 3, 11]];

    fn m_shape(s: [usize; 4]) -> [usize; 3] {
        [s[0], s[1], s[1] + 1]
    }

    #[test]
    fn color_matrix_matches_cpu_with_gradients() {
        for shape in SHAPES {
            check_op(
                OpCase::new("color_matrix", &[&shape, &m_shape(shape)], |t, v| {
                    color_matrix(t, v[0], v[1])
                })
                .constant(1),
            );
        }
    }

    #[test]
    fn color_matrix_transpose_matches_cpu_with_gradients() {
        for shape in SHAPES {
            check_op(
                OpCase::new(
                    "color_matrix_transpose",
                    &[&shape, &m_shape(shape)],
                    |t, v| color_matrix_transpose(t, v[0], v[1]),
                )
                .constant(1),
            );
        }
    }

    /// `<M x, y> = <x, M^T y>` on the device for the linear part (the offset taken off by
    /// evaluating at x = 0).
    #[test]
    fn color_matrix_transpose_is_the_transpose() {
        let ctx = testing::context();
        for shape in SHAPES {
            let ms = m_shape(shape);
            let mut t = Tape::new();
            let x = t.leaf(&shape, false);
            let y = t.leaf(&shape, false);
            let m = t.leaf(&ms, false);
            let mx = color_matrix_linear(&mut t, x, m);
            let mty = color_matrix_transpose(&mut t, y, m);
            let (xv, yv, mv) = (random(&shape, 1), random(&shape, 2), random(&ms, 3));
            let xd = Tensor::from_cpu(&ctx, &xv).unwrap();
            let yd = Tensor::from_cpu(&ctx, &yv).unwrap();
            let md = Tensor::from_cpu(&ctx, &mv).unwrap();
            let got = t
                .eval(&ctx, &[mx, mty], &[(x, &xd), (y, &yd), (m, &md)])
                .unwrap();
            let dot = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(&a, b)| a as f64 * b).sum();
            let (lhs, rhs): (f64, f64) = (dot(&got[0], &yv.data), dot(&got[1], &xv.data));
            assert!(
                (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0),
                "{shape:?}: <Mx, y> = {lhs}, <x, M^T y> = {rhs}"
            );
        }
    }

    /// ADA's matrices on known pixels: identity, a brightness offset, and the luma flip
    /// `I - 2 v v^T` (v the unit luma axis), whose square is the identity.
    #[test]
    fn color_matrix_known_matrices() {
        let ctx = testing::context();
        let shape = [3, 3, 2, 5];
        let v = [1.0f64, 1.0, 1.0].map(|c| c / 3f64.sqrt());
        let mut m = Vec::new();
        for (b, offset) in [0.0, 0.25, 0.0].into_iter().enumerate() {
            for r in 0..3 {
                for k in 0..3 {
                    let id = if r == k { 1.0 } else { 0.0 };
                    m.push(if b == 2 { id - 2.0 * v[r] * v[k] } else { id });
                }
                m.push(offset);
            }
        }
        let m = CpuTensor::from_f32(&[3, 3, 4], &m.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let xv = random(&shape, 9);
        let mut t = Tape::new();
        let x = t.leaf(&shape, false);
        let mm = t.leaf(&[3, 3, 4], false);
        let once = color_matrix(&mut t, x, mm);
        let twice = color_matrix(&mut t, once, mm);
        let xd = Tensor::from_cpu(&ctx, &xv).unwrap();
        let md = Tensor::from_cpu(&ctx, &m).unwrap();
        let got = t
            .eval(&ctx, &[once, twice], &[(x, &xd), (mm, &md)])
            .unwrap();
        let per = 3 * 2 * 5;
        for (i, (&g, &x)) in got[0].iter().zip(&xv.data).enumerate() {
            match i / per {
                0 => assert_eq!(g, x as f32, "identity, element {i}"),
                1 => assert_eq!(g, (x + 0.25) as f32, "brightness, element {i}"),
                _ => {}
            }
        }
        // The luma flip is an involution.
        for (i, (&g, &x)) in got[1].iter().zip(&xv.data).enumerate().skip(2 * per) {
            assert!(
                (g as f64 - x).abs() < 1e-5,
                "luma flip twice, element {i}: {g} vs {x}"
            );
        }
    }
}
