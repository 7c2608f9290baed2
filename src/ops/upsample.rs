//! StyleGAN2's `up(x)` and its adjoint, on `[B, C, H, W]` (every channel independently).
//!
//! - `upsample(x)`: `[B,C,H,W] -> [B,C,2H,2W]`. Bilinear x2 with `align_corners=False` (output
//!   j samples source coordinate `(j+0.5)/2 - 0.5` clamped to `[0, n-1]`), then the smoothing
//!   `[[1,2,1],[2,4,2],[1,2,1]]/16` with replication padding of 1. Both stages are separable,
//!   so `up(x) = U_H x U_W^T` per plane with a 1-D matrix `U_n` (`2n x n`). On the edge-replicated
//!   input both stages are their interior formulas, which gives the closed form the shader uses:
//!   `U_n[2k, k-1..k+1] = (5, 10, 1)/16`, `U_n[2k+1, k-1..k+1] = (1, 10, 5)/16`, indices clamped
//!   into `[0, n-1]` (clamped taps add up on the edge element).
//! - `upsample_adjoint(g)`: `[B,C,2H,2W] -> [B,C,H,W]`, `U_H^T g U_W`: the gradient of upsample.
//!
//! Both are linear: d upsample(x)/dx applied to g is `upsample_adjoint(g)`, and the adjoint's
//! gradient is `upsample(g)`, so every derivative order is made of these two ops.

use super::{dispatch_1d, fastdiv};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::ResamplePush;
use crate::vk::{read, write, Kernel};

/// `[B, C, H, W] -> [B, C, 2H, 2W]`, see the module header.
pub fn upsample(t: &mut Tape, x: Var) -> Var {
    let s = image_shape(t, x, "upsample");
    t.push(Upsample, &[x], &[s[0], s[1], 2 * s[2], 2 * s[3]])
}

/// The transpose of `upsample`: `[B, C, 2H, 2W] -> [B, C, H, W]` (H, W even on input).
pub fn upsample_adjoint(t: &mut Tape, g: Var) -> Var {
    let s = image_shape(t, g, "upsample_adjoint");
    assert!(
        s[2] % 2 == 0 && s[3] % 2 == 0,
        "upsample_adjoint of {s:?}: height and width must be even"
    );
    t.push(UpsampleAdjoint, &[g], &[s[0], s[1], s[2] / 2, s[3] / 2])
}

fn image_shape(t: &Tape, x: Var, what: &str) -> [usize; 4] {
    let s = t.shape(x);
    assert!(
        s.len() == 4 && s.iter().all(|&d| d > 0),
        "{what} takes a non-empty [B, C, H, W], got {s:?}"
    );
    [s[0], s[1], s[2], s[3]]
}

/// A dense matrix, `rows[i][j]`.
pub(super) type Matrix = Vec<Vec<f64>>;

/// `U_n` written as the spec states it: bilinear x2 (align_corners=False), then the 1-D
/// `[1, 2, 1]/4` smoothing with replication padding.
fn up_matrix(n: usize) -> Matrix {
    let mut bilinear = vec![vec![0.0; n]; 2 * n];
    for (j, row) in bilinear.iter_mut().enumerate() {
        let src = ((j as f64 + 0.5) / 2.0 - 0.5).clamp(0.0, (n - 1) as f64);
        let i0 = src.floor() as usize;
        let i1 = (i0 + 1).min(n - 1);
        let frac = src - i0 as f64;
        row[i0] += 1.0 - frac;
        row[i1] += frac;
    }
    smooth_matrix(2 * n)
        .iter()
        .map(|srow| {
            (0..n)
                .map(|k| (0..2 * n).map(|j| srow[j] * bilinear[j][k]).sum())
                .collect()
        })
        .collect()
}

/// The 1-D factor of the 3x3 smoothing: `[1, 2, 1]/4` with replication padding, `n x n`.
pub(super) fn smooth_matrix(n: usize) -> Matrix {
    let mut m = vec![vec![0.0; n]; n];
    for (p, row) in m.iter_mut().enumerate() {
        row[p.saturating_sub(1)] += 0.25;
        row[p] += 0.5;
        row[(p + 1).min(n - 1)] += 0.25;
    }
    m
}

pub(super) fn transpose(m: &Matrix) -> Matrix {
    let cols = m[0].len();
    (0..cols)
        .map(|j| m.iter().map(|row| row[j]).collect())
        .collect()
}

/// `mh x mw^T` for every plane of `x` `[B, C, H, W]` (`mh` has H columns, `mw` W columns).
pub(super) fn apply_separable(x: &CpuTensor, mh: &Matrix, mw: &Matrix) -> CpuTensor {
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]);
    let (oh, ow) = (mh.len(), mw.len());
    assert_eq!((mh[0].len(), mw[0].len()), (h, w), "separable matrix sizes");
    let mut out = vec![0.0; planes * oh * ow];
    let mut rows = vec![0.0; h * ow];
    for p in 0..planes {
        let src = &x.data[p * h * w..(p + 1) * h * w];
        for r in 0..h {
            for (c, mrow) in mw.iter().enumerate() {
                rows[r * ow + c] = (0..w).map(|k| mrow[k] * src[r * w + k]).sum();
            }
        }
        let dst = &mut out[p * oh * ow..(p + 1) * oh * ow];
        for (r, mrow) in mh.iter().enumerate() {
            for c in 0..ow {
                dst[r * ow + c] = (0..h).map(|k| mrow[k] * rows[k * ow + c]).sum();
            }
        }
    }
    CpuTensor::new(&[x.shape[0], x.shape[1], oh, ow], out)
}

/// Dispatches one of the four resampling shaders: `n` invocations, plane size `(h, w)` as the
/// shader defines it, and the two divisors the shader splits its index by (elements per plane,
/// per row) as multiply-high constants.
pub(super) fn record_resample(
    rec: &mut Recording,
    kernel: &Kernel<ResamplePush>,
    input: &Tensor,
    out: &Tensor,
    n: usize,
    (h, w): (usize, usize),
    (plane_div, row_div): (usize, usize),
) {
    let (pm, pl) = fastdiv::magic(plane_div as u32);
    let (rm, rl) = fastdiv::magic(row_div as u32);
    let push = ResamplePush {
        n: (n as u32).into(),
        h: (h as u32).into(),
        w: (w as u32).into(),
        plane_magic: pm.into(),
        plane_log: pl.into(),
        row_magic: rm.into(),
        row_log: rl.into(),
    };
    dispatch_1d(
        rec,
        kernel,
        &[read(input.buffer()), write(out.buffer())],
        &push,
        n,
    );
}

struct Upsample;

impl Op for Upsample {
    fn name(&self) -> &'static str {
        "upsample"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = inputs[0];
        apply_separable(x, &up_matrix(x.shape[2]), &up_matrix(x.shape[3]))
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = inputs[0].shape();
        let ctx = rec.context();
        // One invocation per input pixel, each writing its 2x2 output block.
        let n = inputs[0].numel();
        let divisors = (s[2] * s[3], s[3]);
        record_resample(
            rec,
            &ctx.kernels().upsample,
            inputs[0],
            out,
            n,
            (s[2], s[3]),
            divisors,
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        vec![Some(upsample_adjoint(t, g))]
    }
}

struct UpsampleAdjoint;

impl Op for UpsampleAdjoint {
    fn name(&self) -> &'static str {
        "upsample_adjoint"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let g = inputs[0];
        let mh = transpose(&up_matrix(g.shape[2] / 2));
        let mw = transpose(&up_matrix(g.shape[3] / 2));
        apply_separable(g, &mh, &mw)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = out.shape();
        let ctx = rec.context();
        // One invocation per 2x2 block of the result (partial blocks on odd edges).
        let n = s[0] * s[1] * s[2].div_ceil(2) * s[3].div_ceil(2);
        record_resample(
            rec,
            &ctx.kernels().upsample_adjoint,
            inputs[0],
            out,
            n,
            (s[2], s[3]),
            (s[2].div_ceil(2) * s[3].div_ceil(2), s[3].div_ceil(2)),
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        vec![Some(upsample(t, g))]
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::testing::{self, check_op, random, OpCase};

    const SHAPES: [&[usize]; 4] = [&[2, 3, 5, 7], &[1, 1, 1, 1], &[1, 2, 1, 6], &[3, 1, 11, 2]];

    #[test]
    fn upsample_matches_cpu_with_gradients() {
        for shape in SHAPES {
            check_op(OpCase::new("upsample", &[shape], |t, x| upsample(t, x[0])));
        }
    }

    #[test]
    fn upsample_adjoint_matches_cpu_with_gradients() {
        for shape in SHAPES {
            let doubled = [shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
            check_op(OpCase::new("upsample_adjoint", &[&doubled], |t, x| {
                upsample_adjoint(t, x[0])
            }));
        }
    }

    /// The spec read literally in 2-D: PyTorch's bilinear sampling, then a 3x3 convolution over
    /// the edge-replicated image.
    fn literal_up(x: &CpuTensor) -> CpuTensor {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (2 * h, 2 * w);
        let coord = |j: usize, n: usize| {
            let s = ((j as f64 + 0.5) / 2.0 - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(n - 1);
            (i0, (i0 + 1).min(n - 1), s - s.floor())
        };
        let mut out = Vec::new();
        for p in 0..planes {
            let at = |r: usize, c: usize| x.data[p * h * w + r * w + c];
            let mut bil = vec![0.0; oh * ow];
            for r in 0..oh {
                let (r0, r1, fr) = coord(r, h);
                for c in 0..ow {
                    let (c0, c1, fc) = coord(c, w);
                    bil[r * ow + c] = (1.0 - fr) * ((1.0 - fc) * at(r0, c0) + fc * at(r0, c1))
                        + fr * ((1.0 - fc) * at(r1, c0) + fc * at(r1, c1));
                }
            }
            let k = [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]];
            for r in 0..oh {
                for c in 0..ow {
                    let mut s = 0.0;
                    for (dr, krow) in k.iter().enumerate() {
                        for (dc, kv) in krow.iter().enumerate() {
                            let rr = (r + dr).saturating_sub(1).min(oh - 1);
                            let cc = (c + dc).saturating_sub(1).min(ow - 1);
                            s += kv / 16.0 * bil[rr * ow + cc];
                        }
                    }
                    out.push(s);
                }
            }
        }
        CpuTensor::new(&[x.shape[0], x.shape[1], oh, ow], out)
    }

    /// `f(x)` by the CPU references.
    pub(in crate::ops) fn cpu_eval(f: fn(&mut Tape, Var) -> Var, x: &CpuTensor) -> CpuTensor {
        let mut t = Tape::new();
        let leaf = t.leaf(&x.shape, false);
        let y = f(&mut t, leaf);
        t.eval_cpu(&[y], &[(leaf, x)]).remove(0)
    }

    #[test]
    fn reference_equals_the_literal_two_stage_spec() {
        for (i, shape) in SHAPES.iter().enumerate() {
            let x = random(shape, 40 + i as u64);
            let want = literal_up(&x);
            let got = cpu_eval(upsample, &x);
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() < 1e-12, "{shape:?}: {a} vs {b}");
            }
        }
    }

    /// `<up(x), y>` against `<x, up_adjoint(y)>` on the device.
    pub(in crate::ops) fn assert_adjoint(
        forward: fn(&mut Tape, Var) -> Var,
        adjoint: fn(&mut Tape, Var) -> Var,
        in_shape: &[usize],
        out_shape: &[usize],
    ) {
        let ctx = testing::context();
        let mut t = Tape::new();
        let x = t.leaf(in_shape, false);
        let y = t.leaf(out_shape, false);
        let fx = forward(&mut t, x);
        let ay = adjoint(&mut t, y);
        let xv = random(in_shape, 7);
        let yv = random(out_shape, 8);
        let xd = Tensor::from_cpu(&ctx, &xv).unwrap();
        let yd = Tensor::from_cpu(&ctx, &yv).unwrap();
        let got = t.eval(&ctx, &[fx, ay], &[(x, &xd), (y, &yd)]).unwrap();
        let dot = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(&a, b)| a as f64 * b).sum::<f64>();
        let lhs = dot(&got[0], &yv.data);
        let rhs = dot(&got[1], &xv.data);
        assert!(
            (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(1.0),
            "{in_shape:?}: <f(x), y> = {lhs}, <x, f*(y)> = {rhs}"
        );
        // The references are exact transposes.
        let cpu = t.eval_cpu(&[fx, ay], &[(x, &xv), (y, &yv)]);
        let lhs = cpu[0]
            .data
            .iter()
            .zip(&yv.data)
            .map(|(a, b)| a * b)
            .sum::<f64>();
        let rhs = cpu[1]
            .data
            .iter()
            .zip(&xv.data)
            .map(|(a, b)| a * b)
            .sum::<f64>();
        assert!(
            (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn upsample_adjoint_is_the_transpose() {
        for shape in SHAPES.iter().chain([&[2, 5, 9, 13][..]].iter()) {
            let doubled = [shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
            assert_adjoint(upsample, upsample_adjoint, shape, &doubled);
        }
    }
}
