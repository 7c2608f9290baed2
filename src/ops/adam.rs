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
//! squaring. Tensors of a multiple of 4 elements take the build that updates a 4-float texel
//! an invocation (adam_vec4.comp).
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

use super::{by_width_per_element, dispatch_1d};
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
    check_leaves(t, [param, m, v], grad, "adam_step");
    t.no_grad(|t| t.push(AdamStep { config, step }, &[param, m, v, grad], &[1]))
}

/// `adam_step` with the gradient `grad * coef`, coef one element (the clipping factor of
/// `clip_coefficient`): one dispatch where the product and the step would take two, with the
/// same bits.
pub fn adam_step_scaled(
    t: &mut Tape,
    [param, m, v]: [Var; 3],
    (grad, coef): (Var, Var),
    config: Adam,
    step: Scalar,
) -> Var {
    check_leaves(t, [param, m, v], grad, "adam_step_scaled");
    assert_eq!(
        t.numel(coef),
        1,
        "adam_step_scaled: coef must have one element"
    );
    let inputs = [param, m, v, grad, coef];
    t.no_grad(|t| t.push(AdamStep { config, step }, &inputs, &[1]))
}

/// Panics unless param, m and v are leaves (updated in place) of grad's shape.
fn check_leaves(t: &Tape, leaves: [Var; 3], grad: Var, what: &str) {
    for (name, x) in ["param", "m", "v"].into_iter().zip(leaves) {
        assert!(
            t.is_leaf(x),
            "{what}: {name} must be a leaf (updated in place)"
        );
        assert_eq!(t.shape(x), t.shape(grad), "{what}: {name} and grad shapes");
    }
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
        let mut bindings = vec![
            read_write(inputs[0].buffer()),
            read_write(inputs[1].buffer()),
            read_write(inputs[2].buffer()),
            read(inputs[3].buffer()),
            write(out.buffer()),
        ];
        let kernels = ctx.kernels();
        // With a fifth input, the clipping factor the gradient is multiplied by.
        let [plain, vec4] = match inputs.get(4) {
            Some(coef) => {
                bindings.push(read(coef.buffer()));
                [&kernels.adam_scaled, &kernels.adam_vec4_scaled]
            }
            None => [&kernels.adam, &kernels.adam_vec4],
        };
        // adam_vec4 gives the same bits in a quarter of the invocations.
        let (kernel, invocations) = by_width_per_element(n, plain, vec4);
        dispatch_1d(rec, kernel, &bindings, &push, invocations.max(1));
    }

    fn backward(&self, _t: &mut Tape, inputs: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // An update of memory, not a function of its inputs: nothing to differentiate.
        vec![None; inputs.len()]
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
        // Lengths off a multiple of 4 (adam.comp) and on one (adam_vec4.comp).
        for shape in [&[1][..], &[7, 13], &[1009], &[4], &[16, 9]] {
            check_steps(shape, config, 7);
        }
        check_steps(&[3, 67], Adam::default(), 7);
    }

    /// The scaled build against the product and the plain step, on two copies of the state,
    /// bit for bit over steps, with factors below and at 1.
    #[test]
    fn scaled_step_equals_the_product_then_the_step() {
        scaled_step_matches(&[3, 67], "adam_scaled");
        scaled_step_matches(&[4, 67], "adam_vec4_scaled");
    }

    fn scaled_step_matches(shape: &[usize], kernel: &str) {
        let ctx = context();
        let n: usize = shape.iter().product();
        let mut t = Tape::new();
        let state: Vec<Var> = (0..6).map(|_| t.leaf(shape, false)).collect();
        let g = t.leaf(shape, false);
        let coef = t.leaf(&[], false);
        let step = t.scalar(1);
        let config = Adam::default();
        let fused = adam_step_scaled(
            &mut t,
            [state[0], state[1], state[2]],
            (g, coef),
            config,
            step,
        );
        let product = t.no_grad(|t| ops::mul(t, g, coef));
        let unfused = adam_step(&mut t, state[3], state[4], state[5], product, config, step);
        // param and m from values in [-2, 2], v from their squares (v is never negative).
        let start = |k: usize| {
            let x = values(n, 1 + k as u64 % 3);
            if k % 3 == 2 {
                x.iter().map(|v| v * v).collect()
            } else {
                x
            }
        };
        let tensors: Vec<Tensor> = (0..6)
            .map(|k| Tensor::from_f32(&ctx, shape, &start(k)).unwrap())
            .collect();
        let gt = Tensor::zeros(&ctx, shape).unwrap();
        let ct = Tensor::zeros(&ctx, &[]).unwrap();
        let mut bound: Vec<(Var, &Tensor)> = state.iter().copied().zip(&tensors).collect();
        bound.extend([(g, &gt), (coef, &ct)]);
        let mut program = t.compile(&ctx, &[fused, unfused], &bound).unwrap();
        let names = program.graph().kernel_names();
        assert!(names.contains(&kernel), "{names:?}");
        for k in 1..=4u32 {
            gt.write(&values(n, 20 + k as u64)).unwrap();
            ct.write(&[[0.37f32, 1.0, 1e-3, 0.9][k as usize - 1]])
                .unwrap();
            program.set_scalar(step, k);
            program.run().unwrap();
            for j in 0..3 {
                let (a, b) = (
                    tensors[j].to_vec().unwrap(),
                    tensors[j + 3].to_vec().unwrap(),
                );
                assert_eq!(a, b, "state {j} after step {k}");
            }
        }
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

    /// The texel build updates each element as the one-float build does, bit for bit: a
    /// tensor of 268 elements (adam_vec4) against the first 268 of one of 269 (adam) with the
    /// same values, over steps.
    #[test]
    fn vec4_build_gives_the_plain_builds_bits() {
        let ctx = context();
        let lens = [268usize, 269];
        let mut t = Tape::new();
        let step = t.scalar(1);
        let mut outputs = Vec::new();
        let mut bound = Vec::new();
        for &n in &lens {
            let vars: Vec<Var> = (0..4).map(|_| t.leaf(&[n], false)).collect();
            let tensors: Vec<Tensor> = (0..4)
                .map(|k| {
                    let x = values(n, 1 + k as u64);
                    // v starts from squares (never negative), the gradient rewritten each step.
                    let x: Vec<f32> = if k == 2 {
                        x.iter().map(|v| v * v).collect()
                    } else {
                        x
                    };
                    Tensor::from_f32(&ctx, &[n], &x).unwrap()
                })
                .collect();
            outputs.push(adam_step(
                &mut t,
                vars[0],
                vars[1],
                vars[2],
                vars[3],
                Adam::default(),
                step,
            ));
            bound.push((vars, tensors));
        }
        let leaves: Vec<(Var, &Tensor)> = bound
            .iter()
            .flat_map(|(vars, tensors)| vars.iter().copied().zip(tensors))
            .collect();
        let mut program = t.compile(&ctx, &outputs, &leaves).unwrap();
        let names = program.graph().kernel_names();
        assert!(
            names.contains(&"adam_vec4") && names.contains(&"adam"),
            "{names:?}"
        );
        for k in 1..=5u32 {
            for (_, tensors) in &bound {
                let n = tensors[3].numel();
                tensors[3].write(&values(n, 40 + k as u64)).unwrap();
            }
            program.set_scalar(step, k);
            program.run().unwrap();
            for j in 0..3 {
                let vec4 = bound[0].1[j].to_vec().unwrap();
                let plain = bound[1].1[j].to_vec().unwrap();
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&vec4), bits(&plain[..268]), "state {j} after step {k}");
            }
        }
    }
}
