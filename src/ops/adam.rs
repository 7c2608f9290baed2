//! `adam_step(param, m, v, grad, config, step)`: one step of torch.optim.Adam (no weight
//! decay, no amsgrad), applied in place to the device memory bound to the leaves `param`, `m`
//! and `v` (all of one shape, `grad` too):
//!
//! - m = b1 m + (1 - b1) g
//! - v = b2 v + (1 - b2) g^2
//! - param -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//!
//! (PyTorch's order of operations.) t is a tape `Scalar` counting from 1, so one compiled
//! training step replays with the host advancing t; b^t is computed on the device by repeated
//! squaring.
//!
//! The op is a side effect: its output is a one-element placeholder (0) that exists so the
//! update can be named as a program output; compile a training step with the placeholders of
//! all parameters among the outputs and the updates are recorded after everything that reads
//! the old values earlier on the tape (the recorder puts the write-after-read barriers in).
//! Nodes appended to the tape after the update that read `param` see the new values on the
//! device. `param`, `m` and `v` must be leaves, so the update never lands in memory the
//! compiler reuses. The update is not differentiable (it is recorded without gradient
//! tracking and its backward gives nothing). Its CPU evaluation yields only the placeholder;
//! `adam_cpu` is the host reference of the update itself.

use super::dispatch_1d;
use crate::autograd::{CpuEnv, Op, Recording, Scalar, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::AdamPush;
use crate::vk::{read, read_write, write};

/// Adam's hyper-parameters (PyTorch's defaults from `Default`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
        }
    }
}

/// Records the update of `param` (and its moments `m`, `v`) by `grad` at step `step` (from 1);
/// returns the placeholder to list among a program's outputs.
pub fn adam_step(
    t: &mut Tape,
    param: Var,
    m: Var,
    v: Var,
    grad: Var,
    config: Adam,
    step: Scalar,
) -> Var {
    for (what, x) in [("param", param), ("m", m), ("v", v)] {
        assert!(
            t.is_leaf(x),
            "adam_step: {what} must be a leaf (updated in place)"
        );
        assert_eq!(
            t.shape(x),
            t.shape(grad),
            "adam_step: {what} and grad shapes"
        );
    }
    t.no_grad(|t| t.push(AdamStep { config, step }, &[param, m, v, grad], &[1]))
}

/// The host reference of one step, in f64, updating `p`, `m` and `v` in place.
pub fn adam_cpu(config: Adam, step: u32, p: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f64]) {
    let (b1, b2) = (config.betas.0 as f64, config.betas.1 as f64);
    let bc1 = 1.0 - b1.powi(step as i32);
    let bc2 = 1.0 - b2.powi(step as i32);
    let step_size = config.lr as f64 / bc1;
    for i in 0..p.len() {
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        let denom = v[i].sqrt() / bc2.sqrt() + config.eps as f64;
        p[i] -= step_size * m[i] / denom;
    }
}

struct AdamStep {
    config: Adam,
    step: Scalar,
}

impl Op for AdamStep {
    fn name(&self) -> &'static str {
        "adam_step"
    }

    fn cpu(&self, _inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        CpuTensor::full(&[1], 0.0)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = inputs[0].numel();
        let c = self.config;
        let push = AdamPush {
            n: (n as u32).into(),
            lr: c.lr.into(),
            beta1: c.betas.0.into(),
            beta2: c.betas.1.into(),
            eps: c.eps.into(),
            step: rec.param(self.step).into(),
        };
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().adam,
            &[
                read_write(inputs[0].buffer()),
                read_write(inputs[1].buffer()),
                read_write(inputs[2].buffer()),
                read(inputs[3].buffer()),
                write(out.buffer()),
            ],
            &push,
            n.max(1),
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

    fn to64(x: &[f32]) -> Vec<f64> {
        x.iter().map(|&v| v as f64).collect()
    }

    /// Steps 1..=steps with fresh gradients each step, device against `adam_cpu`.
    fn check_steps(shape: &[usize], config: Adam, steps: u32) {
        let ctx = context();
        let n: usize = shape.iter().product();
        let mut t = Tape::new();
        let p = t.leaf(shape, true);
        let m = t.leaf(shape, false);
        let v = t.leaf(shape, false);
        let g = t.leaf(shape, false);
        let step = t.scalar(1);
        let done = adam_step(&mut t, p, m, v, g, config, step);
        let mut p_ref = to64(&values(n, 1));
        let (mut m_ref, mut v_ref) = (vec![0.0; n], vec![0.0; n]);
        let pt = Tensor::from_f32(&ctx, shape, &values(n, 1)).unwrap();
        let mt = Tensor::zeros(&ctx, shape).unwrap();
        let vt = Tensor::zeros(&ctx, shape).unwrap();
        let gt = Tensor::zeros(&ctx, shape).unwrap();
        let mut program = t
            .compile(&ctx, &[done], &[(p, &pt), (m, &mt), (v, &vt), (g, &gt)])
            .unwrap();
        for k in 1..=steps {
            // Some steps with tiny gradients, where eps matters.
            let scale = if k % 3 == 0 { 1e-6 } else { 1.0 };
            let grad: Vec<f32> = values(n, 100 + k as u64)
                .iter()
                .map(|&x| x * scale)
                .collect();
            gt.write(&grad).unwrap();
            program.set_scalar(step, k);
            program.run().unwrap();
            adam_cpu(config, k, &mut p_ref, &mut m_ref, &mut v_ref, &to64(&grad));
            let what = format!("{shape:?} {config:?} step {k}");
            assert_close(
                &mt.to_vec().unwrap(),
                &m_ref,
                1e-7,
                1e-6,
                &format!("m {what}"),
            );
            assert_close(
                &vt.to_vec().unwrap(),
                &v_ref,
                1e-7,
                1e-5,
                &format!("v {what}"),
            );
            assert_close(
                &pt.to_vec().unwrap(),
                &p_ref,
                2e-7,
                1e-6,
                &format!("p {what}"),
            );
            assert_eq!(program.read(done).unwrap(), vec![0.0]);
        }
    }

    #[test]
    fn adam_matches_cpu_over_steps() {
        let config = Adam {
            lr: 1e-3,
            betas: (0.0, 0.99),
            eps: 1e-8,
        };
        for shape in [&[1][..], &[7, 13], &[1009]] {
            check_steps(shape, config, 7);
        }
        check_steps(&[3, 67], Adam::default(), 7);
    }

    /// A training step compiled once from the tape: loss, its gradient, then the update;
    /// replayed with the step advancing, against the same iteration on the host.
    #[test]
    fn compiled_training_step_ends_with_the_update() {
        let ctx = context();
        let shape = [5, 11];
        let n = 55;
        let config = Adam {
            lr: 0.05,
            betas: (0.0, 0.99),
            eps: 1e-8,
        };
        let mut t = Tape::new();
        let p = t.leaf(&shape, true);
        let m = t.leaf(&shape, false);
        let v = t.leaf(&shape, false);
        let target = t.leaf(&shape, false);
        let step = t.scalar(1);
        let d = ops::sub(&mut t, p, target);
        let sq = ops::square(&mut t, d);
        let loss = ops::sum_all(&mut t, sq);
        let g = t.grad(&[loss], &[p], None, false)[0].unwrap();
        let done = adam_step(&mut t, p, m, v, g, config, step);

        let target_value = values(n, 7);
        let pt = Tensor::from_f32(&ctx, &shape, &values(n, 3)).unwrap();
        let mt = Tensor::zeros(&ctx, &shape).unwrap();
        let vt = Tensor::zeros(&ctx, &shape).unwrap();
        let tt = Tensor::from_f32(&ctx, &shape, &target_value).unwrap();
        let leaves = [(p, &pt), (m, &mt), (v, &vt), (target, &tt)];
        let mut program = t.compile(&ctx, &[loss, done], &leaves).unwrap();

        let target64 = to64(&target_value);
        let loss_of =
            |p: &[f64]| -> f64 { p.iter().zip(&target64).map(|(a, b)| (a - b).powi(2)).sum() };
        let mut p_ref = to64(&values(n, 3));
        let first_loss = loss_of(&p_ref);
        let (mut m_ref, mut v_ref) = (vec![0.0; n], vec![0.0; n]);
        for k in 1..=10 {
            let g_ref: Vec<f64> = p_ref
                .iter()
                .zip(&target64)
                .map(|(a, b)| 2.0 * (a - b))
                .collect();
            program.set_scalar(step, k);
            program.run().unwrap();
            // The loss is of the parameters before this step's update.
            assert_close(
                &program.read(loss).unwrap(),
                &[loss_of(&p_ref)],
                1e-6,
                1e-5,
                "loss",
            );
            adam_cpu(config, k, &mut p_ref, &mut m_ref, &mut v_ref, &g_ref);
            assert_close(
                &pt.to_vec().unwrap(),
                &p_ref,
                1e-6,
                1e-5,
                &format!("p step {k}"),
            );
        }
        let last_loss = loss_of(&p_ref);
        assert!(
            last_loss < 0.7 * first_loss,
            "loss {first_loss} -> {last_loss}"
        );
    }
}
