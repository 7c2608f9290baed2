//! The convolution of a per-(image, channel) scaled input, the style modulation of StyleGAN2's
//! shared-weight modulated convolution:
//!
//!   `conv2d_scaled(x, s, w, p)` = conv2d(x * s[:, :, None, None], w, p)
//!
//! with x `[B, I, H, W]`, s `[B, I]`, w `[O, I, k, k]` (conv2d's kernels and paddings, see
//! conv2d.rs), output `[B, O, Ho, Wo]`.
//!
//! Backward, with gi = conv2d_input_grad(g, w, p) (the gradient with respect to the scaled
//! input) and s4 = s reshaped to `[B, I, 1, 1]`:
//! - dx = gi * s4, ds = sum over (H, W) of gi * x;
//! - dw = conv2d_scaled_weight_grad(x, s, g, p) = conv2d_weight_grad(x * s4, g, p).
//!
//! `conv2d_scaled_weight_grad` is an op of its own so that the scaled input is never
//! materialized there either. Its backward, for the cotangent V `[O, I, k, k]` and
//! gx = conv2d_input_grad(g, V, p) (the gradient with respect to x * s4):
//! - dx = gx * s4, ds = sum over (H, W) of gx * x;
//! - dg = conv2d_scaled(x, s, V, p).
//!
//! Every gradient is built from ops, so it differentiates again.
//!
//! Kernels: in the GPU family `conv2d_gemm_scaled`, conv2d_gemm built with the scale applied
//! as each input element is staged into shared memory (build.rs `FUSED_VARIANTS`), so x * s is
//! never written nor read back: 7.6 M floats written and read less in a generator forward
//! without gradients (the D step's) at the reference size, the README has the figures; where
//! the weight gradient scales the same way (`conv2d_wgrad_gemm_scaled`). Each product is
//! rounded to f32 before the sums, as the unfused multiply's is, so fused and unfused agree
//! bit for bit. The CPU family records the multiply into scratch and then its usual kernels,
//! so its speed is that of the unfused ops (a scaled build of its register-tile and Winograd
//! kernels is not measured yet).
//!
//! Why the style block's epilogue (demodulation, noise, bias, leaky ReLU: `style_epilogue`) is not
//! fused into the convolution's output stage where a gradient flows: its backward needs the
//! convolution's output y (dd = sum over (H, W) of G * y), and a tape node has exactly one output
//! tensor (a view only renames input 0's whole memory), so a fused op could not hand y to its
//! backward. The ways around it each cost more than they save: writing y and the activation from
//! one kernel needs two-output nodes in the tape (Node, Program and the memory plan all assume one
//! buffer a node); recovering y from the output (y = (lrelu^-1(out) - noise - bias) / d) divides by
//! d and rounds again, so the gradients would no longer be those of the unfused graph; recomputing
//! y in the backward repeats the convolution. What fusing would gain is one read of y (B x O x H x
//! W floats) and one dispatch per style block: 3.8 M floats in a generator forward at the reference
//! size against the convolution's own traffic. Where no gradient is needed (the discriminator
//! step's generator forward under `no_grad`, generation) y has no reader but the epilogue, and
//! there the style block is one op, `ops::style_conv` (style_conv.rs), whose backward recomputes y.

use super::broadcast::record_mul;
use super::conv2d::{
    conv2d_input_grad, for_each_tap, forward_shape, out_hw, record_tile_conv, record_weight_grad,
    weight_grad_shape, Fused, TileConv,
};
use super::{mul, mul_sum_to, reshape};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::KernelFamily;

/// See the module header.
pub fn conv2d_scaled(t: &mut Tape, x: Var, s: Var, w: Var, padding: usize) -> Var {
    let out = scaled_forward_shape(t, x, s, w, padding, "conv2d_scaled");
    t.push(Conv2dScaled { padding }, &[x, s, w], &out)
}

/// The output shape of the convolution of x * s by w, with the shapes of x, s and w checked;
/// `what` names the op in a panic.
pub(super) fn scaled_forward_shape(
    t: &Tape,
    x: Var,
    s: Var,
    w: Var,
    padding: usize,
    what: &str,
) -> [usize; 4] {
    check_scale(t, x, s, what);
    forward_shape(t, x, w, padding, what)
}

fn check_scale(t: &Tape, x: Var, s: Var, what: &str) {
    let xs = t.shape(x);
    assert!(
        xs.len() == 4 && t.shape(s) == [xs[0], xs[1]],
        "{what}: s must be [B, I] for x {xs:?}, got {:?}",
        t.shape(s)
    );
}

/// The gradients with respect to x and s of x * s[:, :, None, None], for the gradient gx of
/// that product.
fn through_scale(t: &mut Tape, x: Var, s: Var, gx: Var) -> (Var, Var) {
    let xs = t.shape(x).to_vec();
    let s4 = reshape(t, s, &[xs[0], xs[1], 1, 1]);
    let dx = mul(t, gx, s4);
    let ds = mul_sum_to(t, gx, x, &[xs[0], xs[1], 1, 1]);
    (dx, reshape(t, ds, &[xs[0], xs[1]]))
}

/// Records x * s[:, :, None, None] into scratch named `what`, for the CPU family, whose kernels
/// fuse no scale; `None` where the recording has failed already.
fn record_scaled_copy(rec: &mut Recording, x: &Tensor, s: &Tensor, what: &str) -> Option<Tensor> {
    let scaled = rec.tensor(what, x.shape())?;
    let xs = x.shape();
    record_mul(rec, x, &s.reshaped(&[xs[0], xs[1], 1, 1]), &scaled);
    Some(scaled)
}

pub(super) struct Conv2dScaled {
    pub(super) padding: usize,
}

impl Op for Conv2dScaled {
    fn name(&self) -> &'static str {
        "conv2d_scaled"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, s, w) = (inputs[0], inputs[1], inputs[2]);
        let hw = x.shape[2] * x.shape[3];
        let (ho, wo) = out_hw(x.shape[2], x.shape[3], w.shape[2], self.padding);
        let shape = [x.shape[0], w.shape[0], ho, wo];
        let mut y = vec![0.0; shape.iter().product()];
        for_each_tap(&x.shape, &w.shape, self.padding, |xi, wi, yi| {
            y[yi] += x.data[xi] * s.data[xi / hw] * w.data[wi]
        });
        CpuTensor::new(&shape, y)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let (x, s, w) = (inputs[0], inputs[1], inputs[2]);
        let conv = TileConv::forward(x.shape(), w.shape(), out.shape(), self.padding);
        let (w, out) = (w.buffer(), out.buffer());
        if rec.context().kernel_family() == KernelFamily::Gpu {
            let fused = Fused {
                scale: Some(s.buffer()),
                style: None,
            };
            record_tile_conv(rec, &conv, x.buffer(), w, None, fused, out);
            return;
        }
        if let Some(scaled) = record_scaled_copy(rec, x, s, "conv2d_scaled input") {
            record_tile_conv(rec, &conv, scaled.buffer(), w, None, Fused::default(), out);
        }
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let (x, s, w) = (inputs[0], inputs[1], inputs[2]);
        let gi = conv2d_input_grad(t, g, w, self.padding);
        let (dx, ds) = through_scale(t, x, s, gi);
        let dw = conv2d_scaled_weight_grad(t, x, s, g, self.padding);
        vec![Some(dx), Some(ds), Some(dw)]
    }
}

/// The weight gradient of `conv2d_scaled(x, s, w, padding)` for its output gradient g, as
/// conv2d_weight_grad(x * s[:, :, None, None], g, padding); see the module header.
pub fn conv2d_scaled_weight_grad(t: &mut Tape, x: Var, s: Var, g: Var, padding: usize) -> Var {
    check_scale(t, x, s, "conv2d_scaled_weight_grad");
    let shape = weight_grad_shape(t, x, g, padding, "conv2d_scaled_weight_grad");
    t.push(ScaledWeightGrad { padding }, &[x, s, g], &shape)
}

struct ScaledWeightGrad {
    padding: usize,
}

impl Op for ScaledWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_scaled_weight_grad"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, s, g) = (inputs[0], inputs[1], inputs[2]);
        let hw = x.shape[2] * x.shape[3];
        let k = x.shape[2] + 2 * self.padding + 1 - g.shape[2];
        let ws = [g.shape[1], x.shape[1], k, k];
        let mut dw = vec![0.0; ws.iter().product()];
        for_each_tap(&x.shape, &ws, self.padding, |xi, wi, yi| {
            dw[wi] += g.data[yi] * x.data[xi] * s.data[xi / hw]
        });
        CpuTensor::new(&ws, dw)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let (x, s, g) = (inputs[0], inputs[1], inputs[2]);
        if rec.context().kernel_family() == KernelFamily::Gpu {
            record_weight_grad(rec, x, Some(s.buffer()), g, out, self.padding);
            return;
        }
        let what = "conv2d_scaled_weight_grad input";
        if let Some(scaled) = record_scaled_copy(rec, x, s, what) {
            record_weight_grad(rec, &scaled, None, g, out, self.padding);
        }
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, v: Var) -> Vec<Option<Var>> {
        let (x, s, g) = (inputs[0], inputs[1], inputs[2]);
        let gx = conv2d_input_grad(t, g, v, self.padding);
        let (dx, ds) = through_scale(t, x, s, gx);
        let dg = conv2d_scaled(t, x, s, v, self.padding);
        vec![Some(dx), Some(ds), Some(dg)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, convolution_families, fused_and_unfused, OpCase};

    fn case(x: [usize; 4], o: usize, k: usize, p: usize, family: KernelFamily) -> OpCase {
        let name = format!("conv2d_scaled k{k} p{p}");
        OpCase::new(
            &name,
            &[&x, &[x[0], x[1]], &[o, x[1], k, k]],
            move |t, v| conv2d_scaled(t, v[0], v[1], v[2], p),
        )
        // f32 sums of up to I k k = 45 products of three values in [-2, 2].
        .tolerance(4e-5, 4e-4)
        .kernels(family)
    }

    #[test]
    fn conv2d_scaled_matches_cpu_with_gradients_in_each_family() {
        for family in convolution_families() {
            for (k, p) in [(3, 1), (3, 0), (1, 0)] {
                check_op(case([3, 5, 7, 9], 6, k, p, family));
            }
            // More than one 32-channel x 64-pixel tile of the GPU kernel, ragged in both.
            check_op(case([2, 3, 9, 8], 37, 3, 1, family));
        }
    }

    fn weight_grad_case(
        x: [usize; 4],
        o: usize,
        k: usize,
        p: usize,
        family: KernelFamily,
    ) -> OpCase {
        let name = format!("conv2d_scaled_weight_grad k{k} p{p}");
        let (ho, wo) = out_hw(x[2], x[3], k, p);
        OpCase::new(
            &name,
            &[&x, &[x[0], x[1]], &[x[0], o, ho, wo]],
            move |t, v| conv2d_scaled_weight_grad(t, v[0], v[1], v[2], p),
        )
        // f32 sums of up to B Ho Wo = 189 products of three values in [-2, 2].
        .tolerance(1e-4, 1e-3)
        .kernels(family)
    }

    #[test]
    fn scaled_weight_grad_matches_cpu_with_gradients_in_each_family() {
        for family in convolution_families() {
            for (k, p) in [(3, 1), (3, 0), (1, 0)] {
                check_op(weight_grad_case([3, 5, 7, 9], 6, k, p, family));
            }
            // More than one 32 x 32 tile of the GPU kernel, ragged in both.
            check_op(weight_grad_case([2, 4, 5, 6], 37, 3, 1, family));
        }
    }

    /// Fused against `conv2d_weight_grad` of the multiplied input, bit for bit: the GPU family
    /// scales as it loads, the CPU family records the multiply and its own kernel.
    #[test]
    fn scaled_weight_grad_equals_the_unfused_ops_bit_for_bit() {
        let shapes: [&[usize]; 3] = [&[2, 5, 8, 8], &[2, 5], &[2, 7, 8, 8]];
        for family in convolution_families() {
            let (names, fused, unfused) = fused_and_unfused(family, &shapes, 61, |t, v| {
                let fused = conv2d_scaled_weight_grad(t, v[0], v[1], v[2], 1);
                let s4 = ops::reshape(t, v[1], &[2, 5, 1, 1]);
                let xs = ops::mul(t, v[0], s4);
                (fused, ops::conv2d_weight_grad(t, xs, v[2], 1))
            });
            let want = match family {
                // Two batch splits, reduced in order.
                KernelFamily::Gpu => vec!["conv2d_wgrad_gemm_scaled", "conv2d_wgrad_reduce"],
                KernelFamily::Cpu => {
                    vec![
                        "binary_vec4_mul",
                        "conv2d_wgrad_wino",
                        "conv2d_wgrad_reduce",
                    ]
                }
            };
            assert_eq!(names, want, "{family:?}");
            assert_eq!(fused, unfused, "{family:?}: fused against unfused");
        }
    }

    /// The GPU family runs the fused kernel and gives the unfused multiply and convolution
    /// bit for bit; the CPU family records that multiply and its own kernel.
    #[test]
    fn equals_the_unfused_ops_bit_for_bit() {
        let shapes: [&[usize]; 3] = [&[2, 5, 8, 8], &[2, 5], &[7, 5, 3, 3]];
        for family in convolution_families() {
            let (names, fused, unfused) = fused_and_unfused(family, &shapes, 60, |t, v| {
                let fused = conv2d_scaled(t, v[0], v[1], v[2], 1);
                let s4 = ops::reshape(t, v[1], &[2, 5, 1, 1]);
                let xs = ops::mul(t, v[0], s4);
                (fused, ops::conv2d(t, xs, v[2], None, 1))
            });
            let want = match family {
                KernelFamily::Gpu => vec!["conv2d_wpack", "conv2d_gemm_scaled"],
                KernelFamily::Cpu => {
                    vec!["binary_vec4_mul", "conv2d_wino_pack", "conv2d_wino8"]
                }
            };
            assert_eq!(names, want, "{family:?}");
            assert_eq!(fused, unfused, "{family:?}: fused against unfused");
        }
    }
}
