//! `bias_leaky_relu(x, bias, slope)`: `y = lrelu(x + bias[None, :, None, None])`, x
//! `[B, C, ...]` (rank >= 2, channels on axis 1; an image `[B,C,H,W]` or a linear layer's
//! `[B,C]`), bias `[C]`, `lrelu(v) = v if v > 0 else slope * v` with slope >= 0. One kernel.
//!
//! Backward: `dx = leaky_relu_grad(g, y, slope)` (for slope >= 0, y > 0 exactly where
//! x + bias > 0, so the output stands in for the pre-activation), `dbias = sum of dx over every
//! axis but 1`. Both are ops, so they differentiate again; the second derivative through the
//! step function is zero almost everywhere (see unary.rs), which leaky_relu_grad already states.

use super::{dispatch_1d, leaky_relu_grad, sum};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::BiasLreluPush;
use crate::vk::{read, write};

/// See the module header.
pub fn bias_leaky_relu(t: &mut Tape, x: Var, bias: Var, slope: f32) -> Var {
    let s = t.shape(x).to_vec();
    assert!(
        s.len() >= 2 && t.shape(bias) == [s[1]],
        "bias_leaky_relu: x {s:?} needs [B, C, ...] and bias [C], got bias {:?}",
        t.shape(bias)
    );
    assert!(
        slope >= 0.0,
        "bias_leaky_relu: slope {slope} < 0 (the backward reads the sign of the output)"
    );
    t.push(BiasLeakyRelu { slope }, &[x, bias], &s)
}

struct BiasLeakyRelu {
    slope: f32,
}

impl Op for BiasLeakyRelu {
    fn name(&self) -> &'static str {
        "bias_leaky_relu"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, bias) = (inputs[0], inputs[1]);
        let c = x.shape[1];
        let inner = x.numel() / (x.shape[0] * c);
        let data = x
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let v = v + bias.data[(i / inner) % c];
                if v > 0.0 {
                    v
                } else {
                    v * self.slope as f64
                }
            })
            .collect();
        CpuTensor::new(&x.shape, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = out.shape();
        let n = out.numel();
        let inner = n / (s[0] * s[1]);
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().bias_lrelu,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                write(out.buffer()),
            ],
            &BiasLreluPush {
                n: (n as u32).into(),
                c: (s[1] as u32).into(),
                inner: (inner as u32).into(),
                slope: self.slope.into(),
            },
            n,
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], out: Var, g: Var) -> Vec<Option<Var>> {
        let dx = leaky_relu_grad(t, g, out, self.slope);
        let axes: Vec<usize> = (0..t.shape(out).len()).filter(|&a| a != 1).collect();
        let dbias = sum(t, dx, &axes, false);
        vec![Some(dx), Some(dbias)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn bias_leaky_relu_matches_cpu_with_gradients() {
        for (x, c) in [(&[3, 5, 7, 9][..], 5), (&[2, 3, 1, 1], 3), (&[7, 13], 13)] {
            for slope in [0.2, 0.0] {
                check_op(OpCase::new("bias_leaky_relu", &[x, &[c]], move |t, v| {
                    bias_leaky_relu(t, v[0], v[1], slope)
                }));
            }
        }
    }

    /// A second-order path that does not vanish: the output squared, so that d/dx of the
    /// gradient is 2 lrelu'(.)^2 rather than zero.
    #[test]
    fn squared_output_second_order() {
        check_op(OpCase::new(
            "bias_leaky_relu squared",
            &[&[2, 3, 5, 7], &[3]],
            |t, v| {
                let y = bias_leaky_relu(t, v[0], v[1], 0.2);
                ops::square(t, y)
            },
        ));
    }
}
