//! `clamp_min(x, lo)` = max(x, lo) elementwise (PyTorch's `clamp_min`).
//!
//! dx = g where x > lo, 0 elsewhere (at x == lo the gradient is taken as 0), written as
//! `leaky_relu_grad(g, x - lo, 0)`: linear in g, so it differentiates again in g, and its
//! derivative in x is zero almost everywhere (a step), which leaky_relu_grad already states.

use super::{add_scalar, dispatch_1d, leaky_relu_grad};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::ClampMinPush;
use crate::vk::{read, write};

pub fn clamp_min(t: &mut Tape, x: Var, lo: f32) -> Var {
    let shape = t.shape(x).to_vec();
    t.push(ClampMin { lo }, &[x], &shape)
}

struct ClampMin {
    lo: f32,
}

impl Op for ClampMin {
    fn name(&self) -> &'static str {
        "clamp_min"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let lo = self.lo as f64;
        inputs[0].map(|v| v.max(lo))
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().clamp_min,
            &[read(inputs[0].buffer()), write(out.buffer())],
            &ClampMinPush {
                n: (n as u32).into(),
                lo: self.lo.into(),
            },
            n,
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        // x - lo > 0 exactly when x > lo: for the normal f32 values of x and lo the difference
        // cannot round to zero unless they are equal.
        let shifted = add_scalar(t, inputs[0], -self.lo);
        vec![Some(leaky_relu_grad(t, g, shifted, 0.0))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn clamp_min_on_both_sides_of_the_bound() {
        for shape in [&[1][..], &[7, 9], &[3, 5, 67]] {
            // lo inside [-2, 2], so both branches are taken; square(x) makes the second
            // derivative non-trivial.
            check_op(OpCase::new("clamp_min", &[shape], |t, x| {
                let c = clamp_min(t, x[0], 0.3);
                crate::ops::square(t, c)
            }));
        }
    }
}
