//! StyleGAN2's `down(x)` and its adjoint, on `[B, C, H, W]` (every channel independently).
//!
//! - `downsample(x)`: `[B,C,2H,2W] -> [B,C,H,W]`. The smoothing `[[1,2,1],[2,4,2],[1,2,1]]/16`
//!   with replication padding of 1, then the mean of each 2x2 block (what bilinear resizing to
//!   half size with `align_corners=False` is for an exact factor 2). Separable:
//!   `down(x) = D_H x D_W^T` per plane with the 1-D `D_n = M_n S_{2n}` (`n x 2n`), `S` the
//!   `[1,2,1]/4` smoothing with replication, `M` the pair mean. Closed form (the shader's):
//!   `D_n[q, 2q-1..2q+2] = (1, 3, 3, 1)/8`, indices clamped into `[0, 2n-1]`.
//!   The input's height and width must be even.
//! - `downsample_adjoint(g)`: `[B,C,H,W] -> [B,C,2H,2W]`, `D_H^T g D_W`: the gradient of
//!   downsample. The replication padding makes the edge rows of `D^T` accumulate the clamped
//!   taps (weight 4/8 instead of 3/8 at the two ends).
//!
//! Both are linear: the gradient of downsample is `downsample_adjoint(g)` and the adjoint's is
//! `downsample(g)`, so every derivative order is made of these two ops.

use super::upsample::{apply_separable, record_resample, smooth_matrix, transpose, Matrix};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};

/// `[B, C, 2H, 2W] -> [B, C, H, W]`, see the module header.
pub fn downsample(t: &mut Tape, x: Var) -> Var {
    let s = t.shape(x).to_vec();
    assert!(
        s.len() == 4 && s.iter().all(|&d| d > 0) && s[2] % 2 == 0 && s[3] % 2 == 0,
        "downsample takes a non-empty [B, C, H, W] with H and W even, got {s:?}"
    );
    t.push(Downsample, &[x], &[s[0], s[1], s[2] / 2, s[3] / 2])
}

/// The transpose of `downsample`: `[B, C, H, W] -> [B, C, 2H, 2W]`.
pub fn downsample_adjoint(t: &mut Tape, g: Var) -> Var {
    let s = t.shape(g).to_vec();
    assert!(
        s.len() == 4 && s.iter().all(|&d| d > 0),
        "downsample_adjoint takes a non-empty [B, C, H, W], got {s:?}"
    );
    t.push(DownsampleAdjoint, &[g], &[s[0], s[1], 2 * s[2], 2 * s[3]])
}

/// `D_n` (`n x 2n`) as the spec states it: smoothing, then the mean of each pair.
fn down_matrix(n: usize) -> Matrix {
    let smooth = smooth_matrix(2 * n);
    (0..n)
        .map(|q| {
            (0..2 * n)
                .map(|i| 0.5 * (smooth[2 * q][i] + smooth[2 * q + 1][i]))
                .collect()
        })
        .collect()
}

struct Downsample;

impl Op for Downsample {
    fn name(&self) -> &'static str {
        "downsample"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = inputs[0];
        apply_separable(
            x,
            &down_matrix(x.shape[2] / 2),
            &down_matrix(x.shape[3] / 2),
        )
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = out.shape();
        let ctx = rec.context();
        // One invocation per 2x2 block of the output (ragged at odd sizes).
        let (bh, bw) = (s[2].div_ceil(2), s[3].div_ceil(2));
        record_resample(
            rec,
            &ctx.kernels().downsample,
            inputs[0],
            out,
            s[0] * s[1] * bh * bw,
            (s[2], s[3]),
            (bh * bw, bw),
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        vec![Some(downsample_adjoint(t, g))]
    }
}

struct DownsampleAdjoint;

impl Op for DownsampleAdjoint {
    fn name(&self) -> &'static str {
        "downsample_adjoint"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let g = inputs[0];
        let mh = transpose(&down_matrix(g.shape[2]));
        let mw = transpose(&down_matrix(g.shape[3]));
        apply_separable(g, &mh, &mw)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = inputs[0].shape();
        let ctx = rec.context();
        // One invocation per element of g, each writing its 2x2 block of the output.
        record_resample(
            rec,
            &ctx.kernels().downsample_adjoint,
            inputs[0],
            out,
            inputs[0].numel(),
            (s[2], s[3]),
            (s[2] * s[3], s[3]),
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        vec![Some(downsample(t, g))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::upsample::tests::{assert_adjoint, cpu_eval};
    use crate::testing::{check_op, random, OpCase};

    /// Output sizes (the input is twice as high and wide): odd, 1, and mixed.
    const HALF: [&[usize]; 4] = [&[2, 3, 5, 7], &[1, 1, 1, 1], &[1, 2, 3, 1], &[3, 1, 2, 9]];

    fn doubled(s: &[usize]) -> [usize; 4] {
        [s[0], s[1], 2 * s[2], 2 * s[3]]
    }

    #[test]
    fn downsample_matches_cpu_with_gradients() {
        for half in HALF {
            check_op(OpCase::new("downsample", &[&doubled(half)], |t, x| {
                downsample(t, x[0])
            }));
        }
    }

    #[test]
    fn downsample_adjoint_matches_cpu_with_gradients() {
        for half in HALF {
            check_op(OpCase::new("downsample_adjoint", &[half], |t, x| {
                downsample_adjoint(t, x[0])
            }));
        }
    }

    /// The spec read literally in 2-D: a 3x3 convolution over the edge-replicated image, then
    /// the mean of each 2x2 block.
    fn literal_down(x: &CpuTensor) -> CpuTensor {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]);
        let k = [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]];
        let mut out = Vec::new();
        for p in 0..planes {
            let at = |r: usize, c: usize| x.data[p * h * w + r * w + c];
            let smooth = |r: usize, c: usize| {
                let mut s = 0.0;
                for (dr, krow) in k.iter().enumerate() {
                    for (dc, kv) in krow.iter().enumerate() {
                        let rr = (r + dr).saturating_sub(1).min(h - 1);
                        let cc = (c + dc).saturating_sub(1).min(w - 1);
                        s += kv / 16.0 * at(rr, cc);
                    }
                }
                s
            };
            for r in 0..h / 2 {
                for c in 0..w / 2 {
                    out.push(
                        0.25 * (smooth(2 * r, 2 * c)
                            + smooth(2 * r, 2 * c + 1)
                            + smooth(2 * r + 1, 2 * c)
                            + smooth(2 * r + 1, 2 * c + 1)),
                    );
                }
            }
        }
        CpuTensor::new(&[x.shape[0], x.shape[1], h / 2, w / 2], out)
    }

    #[test]
    fn reference_equals_the_literal_two_stage_spec() {
        for (i, half) in HALF.iter().enumerate() {
            let x = random(&doubled(half), 60 + i as u64);
            let want = literal_down(&x);
            let got = cpu_eval(downsample, &x);
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() < 1e-12, "{half:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "H and W even")]
    fn odd_input_panics() {
        let mut t = Tape::new();
        let x = t.leaf(&[1, 1, 5, 4], true);
        downsample(&mut t, x);
    }

    #[test]
    fn downsample_adjoint_is_the_transpose() {
        for half in HALF.iter().chain([&[2, 5, 9, 13][..]].iter()) {
            assert_adjoint(downsample, downsample_adjoint, &doubled(half), half);
        }
    }
}
