//! A StyleGAN2 style block's modulated convolution and output stage as one op, for forwards
//! that need no gradient:
//!
//!   `style_conv(x, s, w, p, d, noise, bias, slope)`
//!     = style_epilogue(conv2d_scaled(x, s, w, p), d, noise, bias, slope)
//!     = lrelu(conv2d(x * s[:, :, None, None], w, p) * d[:, :, None, None]
//!       + scale * noise + bias[None, :, None, None])
//!
//! with x `[B, I, H, W]`, s `[B, I]`, w `[O, I, k, k]`, d `[B, O]`, the optional noise
//! `([B, 1, Ho, Wo], scale [1])`, bias `[O]`; shapes and rules as in conv2d_scaled.rs and
//! style_epilogue.rs.
//!
//! Why an op of its own: the unfused pair writes the convolution's output y, a whole
//! activation, and reads it back in the epilogue. Here the GPU family's kernel
//! (`conv2d_gemm_style`) applies the stage as it stores, so y never leaves the kernel; in the
//! CPU family the convolution writes y into the output and `style_epilogue` rewrites it in
//! place, the unfused kernels without y's own tensor. Both give the unfused pair's bits on
//! drivers that do not contract the multiply-adds (tested on lavapipe).
//!
//! Backward: the stage's backward needs y (dd = sum over (H, W) of G * y), which this op does
//! not keep, so it recomputes y = conv2d_scaled(x, s, w, p) and then applies the two ops'
//! backward rules in turn; all built from ops, so it differentiates again. That repeats the
//! convolution, which is why the generator takes this op only where no gradient flows
//! (`nn::layers::style_block`): the discriminator step's generator forward and generation.

use super::conv2d::{record_tile_conv, Fused, StyleStage, TileConv};
use super::conv2d_scaled::{conv2d_scaled, scaled_forward_shape, Conv2dScaled};
use super::style_epilogue::{stage_inputs, StyleEpilogue};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::KernelFamily;

/// See the module header; `noise` is (noise, scale).
#[allow(clippy::too_many_arguments)]
pub fn style_conv(
    t: &mut Tape,
    x: Var,
    s: Var,
    w: Var,
    padding: usize,
    d: Var,
    noise: Option<(Var, Var)>,
    bias: Var,
    slope: f32,
) -> Var {
    let out = scaled_forward_shape(t, x, s, w, padding, "style_conv");
    let mut inputs = vec![x, s, w];
    inputs.extend(stage_inputs(t, "style_conv", &out, d, noise, bias, slope));
    t.push(
        StyleConv {
            conv: Conv2dScaled { padding },
            stage: StyleEpilogue { slope },
        },
        &inputs,
        &out,
    )
}

/// Inputs x, s, w, d, bias and optionally noise, scale: the convolution's three, then the
/// stage's in `style_epilogue`'s order after its y.
struct StyleConv {
    conv: Conv2dScaled,
    stage: StyleEpilogue,
}

impl Op for StyleConv {
    fn name(&self) -> &'static str {
        "style_conv"
    }

    fn cpu(&self, inputs: &[&CpuTensor], env: &CpuEnv) -> CpuTensor {
        let y = self.conv.cpu(&inputs[..3], env);
        let mut stage = vec![&y];
        stage.extend(inputs[3..].iter().copied());
        self.stage.cpu(&stage, env)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        if rec.context().kernel_family() == KernelFamily::Cpu {
            self.conv.record(rec, &inputs[..3], out);
            // In place: each invocation of the elementwise stage reads y[i] and then writes
            // out[i], and no other reads it.
            let mut stage = vec![out];
            stage.extend(inputs[3..].iter().copied());
            self.stage.record(rec, &stage, out);
            return;
        }
        let (x, s, w) = (inputs[0], inputs[1], inputs[2]);
        let mut conv = TileConv::forward(x.shape(), w.shape(), out.shape(), self.conv.padding);
        conv.activation = Some(self.stage.slope);
        let style = StyleStage {
            d: inputs[3].buffer(),
            bias: inputs[4].buffer(),
            noise: (inputs.len() == 7).then(|| (inputs[5].buffer(), inputs[6].buffer())),
        };
        let fused = Fused {
            scale: Some(s.buffer()),
            style: Some(style),
        };
        record_tile_conv(
            rec,
            &conv,
            x.buffer(),
            w.buffer(),
            None,
            fused,
            out.buffer(),
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], out: Var, g: Var) -> Vec<Option<Var>> {
        let (x, s, w) = (inputs[0], inputs[1], inputs[2]);
        let y = conv2d_scaled(t, x, s, w, self.conv.padding);
        let mut stage = vec![y];
        stage.extend(inputs[3..].iter().copied());
        // [dy, dd, dbias, dnoise, dscale]; out is also the unfused stage's output.
        let stage_grads = self.stage.backward(t, &stage, out, g);
        let dy = stage_grads[0].expect("the stage's backward gives dy");
        let mut grads = self.conv.backward(t, &inputs[..3], y, dy);
        grads.extend_from_slice(&stage_grads[1..]);
        grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, convolution_families, fused_and_unfused, OpCase};

    fn case(x: [usize; 4], o: usize, k: usize, p: usize, noise: bool, fam: KernelFamily) -> OpCase {
        let out = [x[0], o, x[2] + 2 * p + 1 - k, x[3] + 2 * p + 1 - k];
        let mut shapes: Vec<Vec<usize>> = vec![
            x.to_vec(),
            vec![x[0], x[1]],
            vec![o, x[1], k, k],
            vec![x[0], o],
            vec![o],
        ];
        if noise {
            shapes.extend([vec![out[0], 1, out[2], out[3]], vec![1]]);
        }
        let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let name = format!("style_conv k{k} p{p} noise {noise}");
        OpCase::new(&name, &shapes, move |t, v| {
            let noise = noise.then(|| (v[5], v[6]));
            style_conv(t, v[0], v[1], v[2], p, v[3], noise, v[4], 0.2)
        })
        // f32 sums of up to I k k = 45 products of three values in [-2, 2], then the stage.
        .tolerance(4e-5, 4e-4)
        .kernels(fam)
    }

    #[test]
    fn style_conv_matches_cpu_with_gradients_in_each_family() {
        for family in convolution_families() {
            for (k, p) in [(3, 1), (1, 0)] {
                check_op(case([3, 5, 7, 9], 6, k, p, true, family));
            }
            check_op(case([2, 3, 6, 5], 4, 3, 0, false, family));
            // More than one 32-channel x 64-pixel tile of the GPU kernel, ragged in both.
            check_op(case([2, 3, 9, 8], 37, 3, 1, true, family));
        }
    }

    /// The fused op gives the unfused conv2d_scaled + style_epilogue bit for bit, in one
    /// dispatch after the weight packing on the GPU family and with the unfused kernels on
    /// the CPU family.
    #[test]
    fn equals_the_unfused_ops_bit_for_bit() {
        let shapes: [&[usize]; 7] = [
            &[2, 5, 8, 8],
            &[2, 5],
            &[7, 5, 3, 3],
            &[2, 7],
            &[7],
            &[2, 1, 8, 8],
            &[1],
        ];
        for family in convolution_families() {
            let (names, fused, unfused) = fused_and_unfused(family, &shapes, 70, |t, v| {
                let noise = Some((v[5], v[6]));
                let fused = style_conv(t, v[0], v[1], v[2], 1, v[3], noise, v[4], 0.2);
                let y = ops::conv2d_scaled(t, v[0], v[1], v[2], 1);
                (fused, ops::style_epilogue(t, y, v[3], noise, v[4], 0.2))
            });
            let want = match family {
                KernelFamily::Gpu => vec!["conv2d_wpack", "conv2d_gemm_style"],
                KernelFamily::Cpu => vec![
                    "binary_vec4_mul",
                    "conv2d_wino_pack",
                    "conv2d_wino8",
                    "style_epilogue",
                ],
            };
            assert_eq!(names, want, "{family:?}");
            assert_eq!(fused, unfused, "{family:?}: fused against unfused");
        }
    }
}
