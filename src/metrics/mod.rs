//! Image-quality metrics computed on the device.
//!
//! - [`swd`]: the multi-scale sliced Wasserstein distance of Karras et al. 2018 (Progressive
//!   Growing of GANs, section 5), built on [`pyramid`] (Laplacian pyramids), [`patches`]
//!   (random 7x7 descriptors) and [`sort`] (a bitonic sort of rows).
//!
//! Everything here is for measuring, never for training through: the ops these files add give
//! no gradient (each says so).

pub mod elementwise;
pub mod patches;
pub mod pyramid;
pub mod sort;
pub mod swd;

use crate::autograd::Recording;
use crate::vk::push::{PushBlock, U32};
use crate::vk::{Binding, Kernel};

/// Dispatches a kernel over `n` items (shaders/common/items.glsl): in slices of at most
/// 65535 workgroups along x, each told its first item by the push block's `offset`, which
/// `push` fills in from the slice's first item, so no grid needs a second row of workgroups.
/// (These kernels were written while `flat_index` mis-indexed rows past the first; the cause
/// was the include order, since fixed in shaders/common/index.glsl. The slicing stays: it is
/// correct and costs nothing.)
pub(crate) fn dispatch_items<P: PushBlock>(
    rec: &mut Recording,
    kernel: &Kernel<P>,
    bindings: &[Binding],
    n: usize,
    push: impl Fn(U32) -> P,
) {
    let per_slice = 65535 * kernel.spec.local_size[0] as usize;
    let mut offset = 0;
    while offset < n {
        let items = (n - offset).min(per_slice);
        rec.dispatch(
            kernel,
            bindings,
            &push((offset as u32).into()),
            [
                items.div_ceil(kernel.spec.local_size[0] as usize) as u32,
                1,
                1,
            ],
        );
        offset += items;
    }
}

pub use swd::{descriptors, distance, swd, swd_with, Descriptors, SwdConfig, SwdReport};
