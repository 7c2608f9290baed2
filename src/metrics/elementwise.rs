//! Two fused elementwise ops of the sliced Wasserstein distance, each one pass where the
//! broadcasting ops would take several (their general strided indexing costs integer
//! divisions per element, which lavapipe emulates slowly).
//!
//! - `channel_affine(x, shift, scale, len, width)`: x [M, C * L] (rows of C channels of L
//!   values each), shift and scale [C] -> [M, width] (width >= C * L),
//!   y[r, j] = (x[r, j] - shift[j / L]) scale[j / L] for j < C * L, 0 beyond: per-channel
//!   normalisation and zero padding in one.
//! - `abs_diff(a, b)` = |a - b|, same shapes.
//!
//! Metric only: neither is differentiated, so their backward gives no gradient.

use super::dispatch_items;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::{AbsDiffPush, ChannelAffinePush};
use crate::vk::{read, write};

/// (x - shift[c]) * scale[c] per channel c of each row's C blocks of `len`, padded with zeros
/// to `width` columns.
pub fn channel_affine(
    t: &mut Tape,
    x: Var,
    shift: Var,
    scale: Var,
    len: usize,
    width: usize,
) -> Var {
    let xs = t.shape(x).to_vec();
    assert!(
        xs.len() == 2 && len > 0,
        "channel_affine takes [M, C * L], got {xs:?}"
    );
    let c = xs[1] / len;
    assert!(
        c * len == xs[1] && t.shape(shift) == [c] && t.shape(scale) == [c] && width >= xs[1],
        "channel_affine: x {xs:?}, L {len}, shift {:?}, scale {:?}, width {width}",
        t.shape(shift),
        t.shape(scale)
    );
    t.push(
        ChannelAffine { len, width },
        &[x, shift, scale],
        &[xs[0], width],
    )
}

/// |a - b|.
pub fn abs_diff(t: &mut Tape, a: Var, b: Var) -> Var {
    let s = t.shape(a).to_vec();
    assert_eq!(s, t.shape(b), "abs_diff of different shapes");
    t.push(AbsDiff, &[a, b], &s)
}

struct ChannelAffine {
    len: usize,
    width: usize,
}

impl Op for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel_affine"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, shift, scale) = (inputs[0], inputs[1], inputs[2]);
        let (m, cols) = (x.shape[0], x.shape[1]);
        let mut data = vec![0.0; m * self.width];
        for r in 0..m {
            for j in 0..cols {
                let c = j / self.len;
                data[r * self.width + j] = (x.data[r * cols + j] - shift.data[c]) * scale.data[c];
            }
        }
        CpuTensor::new(&[m, self.width], data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let push = ChannelAffinePush {
            n: (n as u32).into(),
            width: (self.width as u32).into(),
            cols: (inputs[0].shape()[1] as u32).into(),
            len: (self.len as u32).into(),
            offset: Default::default(),
        };
        let ctx = rec.context();
        dispatch_items(
            rec,
            &ctx.kernels().channel_affine,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                read(inputs[2].buffer()),
                write(out.buffer()),
            ],
            n,
            |offset| ChannelAffinePush { offset, ..push },
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Metric only (see the module header).
        vec![None, None, None]
    }
}

struct AbsDiff;

impl Op for AbsDiff {
    fn name(&self) -> &'static str {
        "abs_diff"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let data = inputs[0]
            .data
            .iter()
            .zip(&inputs[1].data)
            .map(|(a, b)| (a - b).abs())
            .collect();
        CpuTensor::new(&inputs[0].shape, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let ctx = rec.context();
        dispatch_items(
            rec,
            &ctx.kernels().abs_diff,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                write(out.buffer()),
            ],
            n,
            |offset| AbsDiffPush {
                n: (n as u32).into(),
                offset,
            },
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Metric only (see the module header).
        vec![None, None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, context, random};

    #[test]
    fn fused_ops_match_cpu_on_odd_sizes() {
        let ctx = context();
        let mut t = Tape::new();
        let x = t.leaf(&[13, 15], false);
        let shift = t.leaf(&[3], false);
        let scale = t.leaf(&[3], false);
        let y = channel_affine(&mut t, x, shift, scale, 5, 17);
        let b = t.leaf(&[13, 15], false);
        let d = abs_diff(&mut t, x, b);
        let vals = [
            random(&[13, 15], 1),
            random(&[3], 2),
            random(&[3], 3),
            random(&[13, 15], 4),
        ];
        let vars = [x, shift, scale, b];
        let cpu_leaves: Vec<_> = vars.iter().copied().zip(vals.iter()).collect();
        let want = t.eval_cpu(&[y, d], &cpu_leaves);
        let dev: Vec<Tensor> = vals
            .iter()
            .map(|v| Tensor::from_cpu(&ctx, v).unwrap())
            .collect();
        let dev_leaves: Vec<_> = vars.iter().copied().zip(dev.iter()).collect();
        let got = t.eval(&ctx, &[y, d], &dev_leaves).unwrap();
        assert_close(&got[0], &want[0].data, 1e-6, 1e-6, "channel_affine");
        assert_close(&got[1], &want[1].data, 0.0, 1e-7, "abs_diff");
        // The padding is zero.
        assert!((0..13).all(|r| got[0][r * 17 + 15] == 0.0 && got[0][r * 17 + 16] == 0.0));
    }

    /// A dispatch of more than 65535 workgroups is sliced; every element must still be
    /// written exactly once (see `dispatch_items` in src/metrics/mod.rs).
    #[test]
    fn dispatch_past_65535_workgroups_covers_every_element() {
        let ctx = context();
        let n = 65535 * 64 + 70_001;
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let mut t = Tape::new();
        let (va, vb) = (t.leaf(&[n], false), t.leaf(&[n], false));
        let d = abs_diff(&mut t, va, vb);
        let ta = Tensor::from_f32(&ctx, &[n], &a).unwrap();
        let tb = Tensor::zeros(&ctx, &[n]).unwrap();
        let got = t
            .eval(&ctx, &[d], &[(va, &ta), (vb, &tb)])
            .unwrap()
            .remove(0);
        let wrong = got.iter().zip(&a).position(|(g, w)| g != w);
        let bad: Vec<(usize, f32)> = got
            .iter()
            .enumerate()
            .filter(|(i, g)| **g != *i as f32)
            .take(8)
            .map(|(i, g)| (i, *g))
            .collect();
        assert_eq!(wrong, None, "first wrong elements {bad:?}");
    }
}
