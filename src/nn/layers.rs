//! The layers the three networks are built from, as functions on the tape over bound
//! parameters (names as in the reference's `state_dict`).
//!
//! - Equalized linear: `y = x (c W)^T + b`, c = 1/sqrt(in).
//! - Equalized conv: `y = conv(x, c W) + b`, c = 1/sqrt(in k k).
//! - Modulated conv, shared-weight form: `y = conv(x * s[b,i], c W) * d[b,o]` with
//!   `d[b,o] = 1/sqrt(sum_i s[b,i]^2 sum_{kh,kw} (c W[o,i,kh,kw])^2 + 1e-8)` when demodulating:
//!   one convolution over the whole batch instead of one per sample, and the demodulation a
//!   small [B,I]x[I,O] product. Identical to the reference's per-sample weights.

use super::params::Bound;
use crate::autograd::{Tape, Var};
use crate::ops;

pub const LRELU_SLOPE: f32 = 0.2;
const DEMOD_EPS: f32 = 1e-8;

fn param(p: &Bound, prefix: &str, leaf: &str) -> Var {
    p.get(&format!("{prefix}.{leaf}"))
}

/// `EqualizedLinear` at `prefix`: x [B,in] -> [B,out].
pub fn equalized_linear(t: &mut Tape, p: &Bound, prefix: &str, x: Var) -> Var {
    let w = param(p, prefix, "weight.weight");
    let b = param(p, prefix, "bias");
    ops::equalized_linear(t, x, w, Some(b))
}

/// `EqualizedConv2d` at `prefix`.
pub fn equalized_conv(t: &mut Tape, p: &Bound, prefix: &str, x: Var, padding: usize) -> Var {
    let (wc, b) = equalized_conv_params(t, p, prefix);
    ops::conv2d(t, x, wc, Some(b), padding)
}

/// `EqualizedConv2d` at `prefix` followed by a leaky ReLU, in one kernel.
pub fn equalized_conv_lrelu(t: &mut Tape, p: &Bound, prefix: &str, x: Var, padding: usize) -> Var {
    let (wc, b) = equalized_conv_params(t, p, prefix);
    ops::conv2d_lrelu(t, x, wc, Some(b), padding, LRELU_SLOPE)
}

/// The scaled kernel c W (c = 1/sqrt(fan in)) and the bias of the convolution at `prefix`.
fn equalized_conv_params(t: &mut Tape, p: &Bound, prefix: &str) -> (Var, Var) {
    let w = param(p, prefix, "weight.weight");
    let b = param(p, prefix, "bias");
    let s = t.shape(w);
    let fan_in = s[1] * s[2] * s[3];
    (ops::scale(t, w, 1.0 / (fan_in as f32).sqrt()), b)
}

/// `Conv2dWeightModulate`: x [B,I,H,W], styles s [B,I], raw weight w [O,I,k,k].
pub fn modulated_conv(t: &mut Tape, x: Var, s: Var, w: Var, demodulate: bool) -> Var {
    let (y, d) = modulated_conv_parts(t, x, s, w, demodulate);
    let Some(d) = d else {
        return y;
    };
    let shape = t.shape(y).to_vec();
    let d4 = ops::reshape(t, d, &[shape[0], shape[1], 1, 1]);
    ops::mul(t, y, d4)
}

/// The modulated convolution before demodulation, `conv(x * s, cW)` [B, O, H, W], and with
/// `demodulate` its factors d [B, O]: the output is y * d over (H, W).
fn modulated_conv_parts(
    t: &mut Tape,
    x: Var,
    s: Var,
    w: Var,
    demodulate: bool,
) -> (Var, Option<Var>) {
    let wc = modulation_kernel(t, w);
    // The style scale rides the convolution's input load on GPUs (ops::conv2d_scaled).
    let y = ops::conv2d_scaled(t, x, s, wc, padding_of(t, w));
    (y, demodulate.then(|| demodulation(t, s, wc)))
}

/// c W, c = 1/sqrt(I k k), of a raw modulated kernel w [O, I, k, k].
fn modulation_kernel(t: &mut Tape, w: Var) -> Var {
    let ws = t.shape(w);
    let fan_in = ws[1] * ws[2] * ws[3];
    ops::scale(t, w, 1.0 / (fan_in as f32).sqrt())
}

/// The "same" padding of the kernel w.
fn padding_of(t: &Tape, w: Var) -> usize {
    (t.shape(w)[2] - 1) / 2
}

/// The demodulation d [B, O] of styles s [B, I] and the scaled kernel wc [O, I, k, k].
fn demodulation(t: &mut Tape, s: Var, wc: Var) -> Var {
    let w2 = ops::square(t, wc);
    let w2 = ops::sum(t, w2, &[2, 3], false); // [O, I]
    let s2 = ops::square(t, s);
    let energy = ops::matmul(t, s2, w2, false, true); // [B, O]
    let energy = ops::add_scalar(t, energy, DEMOD_EPS);
    ops::rsqrt(t, energy)
}

/// Modulated, demodulated convolution, noise, bias and leaky ReLU. Where a gradient flows the
/// last four are one kernel after the convolution (`ops::style_epilogue`), which keeps the
/// convolution's output for its backward; where none does (the discriminator step's
/// generator forward, generation) the whole block is one op (`ops::style_conv`) whose
/// convolution output never becomes a tensor.
pub fn style_block(
    t: &mut Tape,
    p: &Bound,
    prefix: &str,
    x: Var,
    w: Var,
    noise: Option<Var>,
) -> Var {
    let s = equalized_linear(t, p, &format!("{prefix}.to_style"), w);
    let weight = param(p, prefix, "conv.weight.weight");
    let wc = modulation_kernel(t, weight);
    let d = demodulation(t, s, wc);
    let noise = noise.map(|n| (n, param(p, prefix, "scale_noise")));
    let bias = param(p, prefix, "bias");
    let padding = padding_of(t, weight);
    let mut inputs = vec![x, s, wc, d, bias];
    inputs.extend(noise.iter().flat_map(|&(n, scale)| [n, scale]));
    if t.would_require_grad(&inputs) {
        let y = ops::conv2d_scaled(t, x, s, wc, padding);
        ops::style_epilogue(t, y, d, noise, bias, LRELU_SLOPE)
    } else {
        ops::style_conv(t, x, s, wc, padding, d, noise, bias, LRELU_SLOPE)
    }
}

pub fn to_rgb(t: &mut Tape, p: &Bound, prefix: &str, x: Var, w: Var) -> Var {
    let s = equalized_linear(t, p, &format!("{prefix}.to_style"), w);
    let weight = param(p, prefix, "conv.weight.weight");
    let y = modulated_conv(t, x, s, weight, false);
    let bias = param(p, prefix, "bias");
    ops::bias_leaky_relu(t, y, bias, LRELU_SLOPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    /// The shared-weight modulated convolution, to second order in x, s and W, with and
    /// without demodulation, 3x3 and 1x1 (as StyleBlock and ToRGB use it).
    #[test]
    fn modulated_convolution_differentiates_twice() {
        for (k, demodulate) in [(3, true), (3, false), (1, false), (1, true)] {
            let name = format!("modulated_conv k{k} demodulate {demodulate}");
            let case = OpCase::new(
                &name,
                &[&[3, 5, 7, 6], &[3, 5], &[4, 5, k, k]],
                move |t, v| modulated_conv(t, v[0], v[1], v[2], demodulate),
            )
            .tolerance(2e-5, 2e-4);
            check_op(case);
        }
    }
}
