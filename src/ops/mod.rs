//! The ops: each file holds one op (or one family sharing a shader): its math, its f64 CPU
//! reference, the dispatch of its shader, its backward rule written in ops, and its tests.
//! Constructors are free functions taking the tape first: `ops::add(&mut tape, a, b)`.

mod adam;
mod affine_resample;
mod assign;
mod bias_leaky_relu;
mod broadcast;
mod clamp;
mod clip;
mod color_matrix;
mod conv2d;
mod conv2d_scaled;
mod cyclic;
mod downsample;
mod ema;
mod fastdiv;
mod fill;
mod linear;
mod matmul;
mod minibatch_stddev;
mod noise_inject;
mod permute;
mod random;
mod reduce;
mod reshape;
mod select_blocks;
mod slice;
mod style_conv;
mod style_epilogue;
mod unary;
mod upsample;

pub use adam::{adam_cpu, adam_step, adam_step_scaled, Adam};
pub use affine_resample::{affine_resample, affine_resample_adjoint, Padding};
pub use assign::assign;
pub use bias_leaky_relu::bias_leaky_relu;
pub use broadcast::{add, broadcast_shape, div, expand, mul, sub};
pub use clamp::clamp_min;
pub use clip::{clip_coefficient, clip_grad_norm, global_norm, sum_of_squares};
pub use color_matrix::{color_matrix, color_matrix_transpose};
pub use conv2d::{conv2d, conv2d_input_grad, conv2d_lrelu, conv2d_weight_grad, equalized_conv2d};
pub use conv2d_scaled::{conv2d_scaled, conv2d_scaled_weight_grad};
pub use cyclic::{cyclic_expand, cyclic_sum, cyclic_sum_squares};
pub use downsample::{downsample, downsample_adjoint};
pub use ema::{ema_cpu, ema_step};
pub use fill::{full, ones, zeros};
pub use linear::{equalized_linear, l2_normalize_rows};
pub use matmul::{matmul, matmul_scaled};
pub use minibatch_stddev::minibatch_stddev;
pub use noise_inject::noise_inject;
pub use permute::permute;
pub use random::{philox4x32_10, random_fill_cpu, random_normal, random_uniform, RandomArg};
pub use reduce::{mean, mean_all, mul_sum_to, sum, sum_all, sum_to};
pub use reshape::reshape;
pub use select_blocks::{repeat_blocks, select_blocks, sum_blocks, Side};
pub use slice::{concat, pad_axis, slice};
pub use style_conv::style_conv;
pub use style_epilogue::style_epilogue;
pub use unary::{add_scalar, leaky_relu, leaky_relu_grad, neg, relu, rsqrt, scale, sqrt, square};
pub use upsample::{upsample, upsample_adjoint};

use crate::autograd::Recording;
use crate::vk::push::PushBlock;
use crate::vk::{grid, Binding, Kernel};

/// A workgroup count past u32 as u32::MAX, which the recorder refuses with an error naming
/// the limit.
pub(crate) fn group_count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `vec4`, the build that moves a 4-float texel an invocation, where a tensor of `n` elements
/// fills whole texels; `plain` (unary.comp: four single floats an invocation), otherwise.
pub(crate) fn by_width<'k, P>(
    n: usize,
    plain: &'k Kernel<P>,
    vec4: &'k Kernel<P>,
) -> &'k Kernel<P> {
    if n % 4 == 0 {
        vec4
    } else {
        plain
    }
}

/// As [`by_width`], where `plain` takes one element an invocation (adam.comp, ema.comp): the
/// build and its invocations.
pub(crate) fn by_width_per_element<'k, P>(
    n: usize,
    plain: &'k Kernel<P>,
    vec4: &'k Kernel<P>,
) -> (&'k Kernel<P>, usize) {
    let kernel = by_width(n, plain, vec4);
    let per_invocation = if std::ptr::eq(kernel, vec4) { 4 } else { 1 };
    (kernel, n / per_invocation)
}

/// Dispatches a kernel over `n` invocations in 1-D (the shader indexes with `flat_index()`).
pub(crate) fn dispatch_1d<P: PushBlock>(
    rec: &mut Recording,
    kernel: &Kernel<P>,
    bindings: &[Binding],
    push: &P,
    n: usize,
) {
    if n == 0 {
        return;
    }
    rec.dispatch(
        kernel,
        bindings,
        push,
        grid(n as u64, kernel.spec.local_size[0]),
    );
}
