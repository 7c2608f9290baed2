//! The ops: each file holds one op (or one family sharing a shader): its math, its f64 CPU
//! reference, the dispatch of its shader, its backward rule written in ops, and its tests.
//! Constructors are free functions taking the tape first: `ops::add(&mut tape, a, b)`.

mod broadcast;
mod conv2d;
mod fill;
mod reduce;
mod reshape;
mod unary;

pub use broadcast::{add, broadcast_shape, div, expand, mul, sub};
pub use conv2d::{conv2d, conv2d_input_grad, conv2d_weight_grad, equalized_conv2d};
pub use fill::{full, ones, zeros};
pub use reduce::{mean, mean_all, sum, sum_all, sum_to};
pub use reshape::reshape;
pub use unary::{add_scalar, leaky_relu, leaky_relu_grad, neg, relu, rsqrt, scale, sqrt, square};

use crate::autograd::Recording;
use crate::vk::{grid, Binding, Kernel, Word};

/// Dispatches a kernel over `n` invocations in 1-D (the shader indexes with `flat_index()`).
pub(crate) fn dispatch_1d(
    rec: &mut Recording,
    kernel: &Kernel,
    bindings: &[Binding],
    push: &[Word],
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
