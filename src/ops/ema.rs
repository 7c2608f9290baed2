//! `ema_step(target, value, beta, fresh)`: one step of a moving average, applied in place to
//! the device memory bound to the leaf `target`:
//!
//! - target = target * beta + value * fresh
//!
//! with `beta` and `fresh` one-element tensors (a step's decay and 1 - decay, written by the
//! host before each run). One dispatch per averaged tensor (a 4-float texel an invocation,
//! ema_vec4.comp, where the tensor is a multiple of 4 long) where the same update from ops
//! (two broadcast products, a sum and an `assign`) takes four; the products are rounded before
//! the sum as those ops round them, so both give the same bits.
//!
//! The op is a side effect like `adam_step` (adam.rs): its output is a one-element placeholder
//! (0) to name among a program's outputs, the update is recorded after everything earlier on
//! the tape that reads `target`, and it is not differentiable. Its CPU evaluation yields only
//! the placeholder; `ema_cpu` is the host reference of the update itself.

use super::{by_width_per_element, dispatch_1d};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::EmaPush;
use crate::vk::{read, read_write, write};

/// Records the update of `target` towards `value`; returns the placeholder to list among a
/// program's outputs.
pub fn ema_step(t: &mut Tape, target: Var, value: Var, beta: Var, fresh: Var) -> Var {
    assert!(
        t.is_leaf(target),
        "ema_step: target must be a leaf (updated in place)"
    );
    assert_eq!(
        t.shape(target),
        t.shape(value),
        "ema_step: target and value shapes"
    );
    for (what, x) in [("beta", beta), ("fresh", fresh)] {
        assert_eq!(t.shape(x), [1], "ema_step: {what} must be [1]");
    }
    t.no_grad(|t| t.push(EmaStep, &[target, value, beta, fresh], &[1]))
}

/// The host reference of one step, in f64, updating `target` in place.
pub fn ema_cpu(target: &mut [f64], value: &[f64], beta: f64, fresh: f64) {
    for (t, &v) in target.iter_mut().zip(value) {
        *t = *t * beta + v * fresh;
    }
}

struct EmaStep;

impl Op for EmaStep {
    fn name(&self) -> &'static str {
        "ema_step"
    }

    fn cpu(&self, _inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        CpuTensor::full(&[1], 0.0)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = inputs[0].numel();
        let ctx = rec.context();
        let kernels = ctx.kernels();
        // ema_vec4 gives the same bits in a quarter of the invocations.
        let (kernel, invocations) = by_width_per_element(n, &kernels.ema, &kernels.ema_vec4);
        dispatch_1d(
            rec,
            kernel,
            &[
                read_write(inputs[0].buffer()),
                read(inputs[1].buffer()),
                read(inputs[2].buffer()),
                read(inputs[3].buffer()),
                write(out.buffer()),
            ],
            &EmaPush {
                n: (n as u32).into(),
            },
            invocations.max(1),
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // An update of memory, not a function of its inputs: nothing to differentiate.
        vec![None; 4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{assert_close, context, values};

    /// Three steps with changing decays: the device against `ema_cpu`, and bit for bit
    /// against the same update built from ops (products, sum, assign) on a second copy.
    #[test]
    fn matches_the_host_and_the_unfused_ops() {
        let ctx = context();
        // Lengths off a multiple of 4 (ema.comp) and on one (ema_vec4.comp).
        for shape in [&[1][..], &[7, 9], &[3, 5, 67], &[4, 9], &[2, 5, 64]] {
            let n: usize = shape.iter().product();
            let mut t = Tape::new();
            let target = t.leaf(shape, false);
            let copy = t.leaf(shape, false);
            let value = t.leaf(shape, false);
            let beta = t.leaf(&[1], false);
            let fresh = t.leaf(&[1], false);
            let done = ema_step(&mut t, target, value, beta, fresh);
            let unfused = t.no_grad(|t| {
                let kept = ops::mul(t, copy, beta);
                let added = ops::mul(t, value, fresh);
                ops::add(t, kept, added)
            });
            let start = values(n, 3);
            let tt = Tensor::from_f32(&ctx, shape, &start).unwrap();
            let ct = Tensor::from_f32(&ctx, shape, &start).unwrap();
            let vt = Tensor::zeros(&ctx, shape).unwrap();
            let bt = Tensor::zeros(&ctx, &[1]).unwrap();
            let ft = Tensor::zeros(&ctx, &[1]).unwrap();
            let assigned = t.no_grad(|t| ops::assign(t, &ct, unfused));
            let bound = [
                (target, &tt),
                (copy, &ct),
                (value, &vt),
                (beta, &bt),
                (fresh, &ft),
            ];
            let mut program = t.compile(&ctx, &[done, assigned], &bound).unwrap();
            let kernel = if n % 4 == 0 { "ema_vec4" } else { "ema" };
            let names = program.graph().kernel_names();
            assert!(names.contains(&kernel), "{shape:?}: {names:?}");
            let mut reference: Vec<f64> = start.iter().map(|&v| v as f64).collect();
            for k in 0..3u64 {
                let decay = [0.5f32, 0.9, 0.999][k as usize];
                let v = values(n, 10 + k);
                vt.write(&v).unwrap();
                bt.write(&[decay]).unwrap();
                ft.write(&[1.0 - decay]).unwrap();
                program.run().unwrap();
                let v64: Vec<f64> = v.iter().map(|&x| x as f64).collect();
                ema_cpu(&mut reference, &v64, decay as f64, (1.0 - decay) as f64);
                let got = tt.to_vec().unwrap();
                assert_close(&got, &reference, 1e-6, 1e-6, &format!("{shape:?} step {k}"));
                assert_eq!(got, ct.to_vec().unwrap(), "{shape:?} step {k}: against ops");
                assert_eq!(program.read(done).unwrap(), vec![0.0]);
            }
        }
    }
}
