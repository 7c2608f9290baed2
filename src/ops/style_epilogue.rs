//! The output stage of a StyleGAN2 style block, fused into one kernel:
//!
//!   `style_epilogue(y, d, noise, bias, slope)` = lrelu(y * d[:, :, None, None]
//!   + scale * noise + bias[None, :, None, None])
//!
//! with y `[B, C, H, W]` the modulated convolution before demodulation, d `[B, C]` its
//! demodulation factors, the optional noise `([B, 1, H, W], scale [1])` and bias `[C]`;
//! `lrelu(v) = v if v > 0 else slope * v`, slope >= 0. Unfused, this is a broadcast multiply, a
//! multiply and an add for the noise and `bias_leaky_relu`: three passes over the activation
//! and four dispatches where this takes one.
//!
//! Backward, with out = lrelu(pre) and G = leaky_relu_grad(g, out, slope) = dL/dpre (for
//! slope >= 0, out > 0 exactly where pre > 0):
//! - dy = G * d, dd = sum over (H, W) of G * y, dbias = sum over (B, H, W) of G;
//! - dnoise = scale * sum over C of G, dscale = sum of G * noise.
//!
//! Every gradient is built from ops, so it differentiates again; the second derivative through
//! the activation's step is zero almost everywhere, as `leaky_relu_grad` states.

use super::fastdiv::magic;
use super::{dispatch_1d, leaky_relu_grad, mul, mul_sum_to, reshape, sum};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::StyleEpiloguePush;
use crate::vk::{read, write};

/// See the module header; `noise` is (noise, scale).
pub fn style_epilogue(
    t: &mut Tape,
    y: Var,
    d: Var,
    noise: Option<(Var, Var)>,
    bias: Var,
    slope: f32,
) -> Var {
    let s = t.shape(y).to_vec();
    let mut inputs = vec![y];
    inputs.extend(stage_inputs(t, "style_epilogue", &s, d, noise, bias, slope));
    t.push(StyleEpilogue { slope }, &inputs, &s)
}

/// The stage's operands after y, in the op's input order (d, bias, then noise and its scale),
/// checked against the stage's output shape `s` [B, C, H, W]; `what` names the op in a panic.
pub(super) fn stage_inputs(
    t: &Tape,
    what: &str,
    s: &[usize],
    d: Var,
    noise: Option<(Var, Var)>,
    bias: Var,
    slope: f32,
) -> Vec<Var> {
    assert!(
        s.len() == 4 && t.shape(d) == [s[0], s[1]] && t.shape(bias) == [s[1]],
        "{what}: output {s:?} needs [B, C, H, W], d [B, C] and bias [C], got d {:?}, bias {:?}",
        t.shape(d),
        t.shape(bias)
    );
    assert!(
        slope >= 0.0,
        "{what}: slope {slope} < 0 (the backward reads the sign of the output)"
    );
    let mut inputs = vec![d, bias];
    if let Some((n, scale)) = noise {
        assert!(
            t.shape(n) == [s[0], 1, s[2], s[3]] && t.shape(scale) == [1],
            "{what}: noise {:?} (want [B, 1, H, W]), scale {:?} (want [1])",
            t.shape(n),
            t.shape(scale)
        );
        inputs.extend([n, scale]);
    }
    inputs
}

pub(super) struct StyleEpilogue {
    pub(super) slope: f32,
}

impl Op for StyleEpilogue {
    fn name(&self) -> &'static str {
        "style_epilogue"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (y, d, bias) = (inputs[0], inputs[1], inputs[2]);
        let (c, hw) = (y.shape[1], y.shape[2] * y.shape[3]);
        let data = y
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (row, p) = (i / hw, i % hw);
                let mut pre = v * d.data[row] + bias.data[row % c];
                if let [_, _, _, noise, scale] = inputs {
                    pre += scale.data[0] * noise.data[(row / c) * hw + p];
                }
                if pre > 0.0 {
                    pre
                } else {
                    pre * self.slope as f64
                }
            })
            .collect();
        CpuTensor::new(&y.shape, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let s = out.shape();
        let (n, c, hw) = (out.numel(), s[1], s[2] * s[3]);
        let (hw_magic, hw_log) = magic(hw as u32);
        let (c_magic, c_log) = magic(c as u32);
        let bias = inputs[2].buffer();
        // Without noise the kernel reads neither; the bias fills both bindings.
        let (noise, scale) = match inputs {
            [_, _, _, noise, scale] => (noise.buffer(), scale.buffer()),
            _ => (bias, bias),
        };
        let ctx = rec.context();
        let u = |v: usize| (v as u32).into();
        dispatch_1d(
            rec,
            &ctx.kernels().style_epilogue,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                read(noise),
                read(scale),
                read(bias),
                write(out.buffer()),
            ],
            &StyleEpiloguePush {
                n: u(n),
                C: u(c),
                HW: u(hw),
                hw_magic: hw_magic.into(),
                hw_log: hw_log.into(),
                c_magic: c_magic.into(),
                c_log: c_log.into(),
                has_noise: (inputs.len() == 5).into(),
                slope: self.slope.into(),
            },
            n,
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], out: Var, g: Var) -> Vec<Option<Var>> {
        let (y, d) = (inputs[0], inputs[1]);
        let s = t.shape(y).to_vec();
        let pre = leaky_relu_grad(t, g, out, self.slope);
        let d4 = reshape(t, d, &[s[0], s[1], 1, 1]);
        let dy = mul(t, pre, d4);
        let dd = mul_sum_to(t, pre, y, &[s[0], s[1], 1, 1]);
        let dd = reshape(t, dd, &[s[0], s[1]]);
        let dbias = sum(t, pre, &[0, 2, 3], false);
        let mut grads = vec![Some(dy), Some(dd), Some(dbias)];
        if let [_, _, _, noise, scale] = *inputs {
            let per_pixel = sum(t, pre, &[1], true);
            let dnoise = mul(t, per_pixel, scale);
            let dscale = mul_sum_to(t, per_pixel, noise, &[1]);
            grads.extend([Some(dnoise), Some(dscale)]);
        }
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn style_epilogue_matches_cpu_with_gradients() {
        for (b, c, h, w) in [(3, 5, 7, 9), (2, 1, 1, 3), (4, 7, 4, 4)] {
            for slope in [0.2, 0.0] {
                check_op(OpCase::new(
                    "style_epilogue with noise",
                    &[&[b, c, h, w], &[b, c], &[c], &[b, 1, h, w], &[1]],
                    move |t, v| style_epilogue(t, v[0], v[1], Some((v[3], v[4])), v[2], slope),
                ));
                check_op(OpCase::new(
                    "style_epilogue without noise",
                    &[&[b, c, h, w], &[b, c], &[c]],
                    move |t, v| style_epilogue(t, v[0], v[1], None, v[2], slope),
                ));
            }
        }
    }

    /// A second-order path that does not vanish: the output squared.
    #[test]
    fn squared_output_second_order() {
        check_op(OpCase::new(
            "style_epilogue squared",
            &[&[2, 3, 5, 7], &[2, 3], &[3], &[2, 1, 5, 7], &[1]],
            |t, v| {
                let y = style_epilogue(t, v[0], v[1], Some((v[3], v[4])), v[2], 0.2);
                ops::square(t, y)
            },
        ));
    }

    /// The fused stage equals the ops it replaces, on the device.
    #[test]
    fn equals_the_unfused_ops() {
        let ctx = crate::testing::context();
        let shapes: [&[usize]; 5] = [&[3, 4, 5, 6], &[3, 4], &[4], &[3, 1, 5, 6], &[1]];
        let mut t = Tape::new();
        let v: Vec<Var> = shapes.iter().map(|s| t.leaf(s, false)).collect();
        let fused = style_epilogue(&mut t, v[0], v[1], Some((v[3], v[4])), v[2], 0.2);
        let d4 = ops::reshape(&mut t, v[1], &[3, 4, 1, 1]);
        let y = ops::mul(&mut t, v[0], d4);
        let y = ops::noise_inject(&mut t, y, v[3], v[4]);
        let unfused = ops::bias_leaky_relu(&mut t, y, v[2], 0.2);
        let values: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let data: Vec<f32> = crate::testing::random(s, 40 + k as u64)
                    .data
                    .iter()
                    .map(|&x| x as f32)
                    .collect();
                Tensor::from_f32(&ctx, s, &data).unwrap()
            })
            .collect();
        let bound: Vec<(Var, &Tensor)> = v.iter().copied().zip(&values).collect();
        let got = t.eval(&ctx, &[fused, unfused], &bound).unwrap();
        let want: Vec<f64> = got[1].iter().map(|&x| x as f64).collect();
        crate::testing::assert_close(&got[0], &want, 1e-6, 1e-6, "fused against unfused");
    }
}
