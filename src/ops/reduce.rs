//! Sums and means over chosen axes.
//!
//! - `sum(x, axes, keepdim)`: y[kept] = sum over the reduced coordinates of x.
//!   Backward: dx = expand(reshape(g, keepdim shape), shape of x).
//! - `sum_to(x, shape)`: the sum that undoes broadcasting `shape` to x's shape (leading axes
//!   and axes where `shape` has 1); used by every broadcasting op's backward.
//! - `mul_sum_to(a, b, shape)` = sum_to(a * b, shape) for a and b of one shape, in one pass
//!   (the product is never written out): a broadcast product's backward. Backward:
//!   da = g * b, db = g * a, g broadcast back to a's shape.
//! - `mean(x, axes, keepdim)` = sum / count; `sum_all`, `mean_all` reduce to shape [].
//!
//! The kernel sums in f32 in a fixed order (no atomics), so results are the same on every run:
//! sequentially per output element in the CPU family (`sum_axes`), 64 invocations per output
//! element in the GPU family, their partial sums added by subgroup arithmetic where the device
//! has it (`sum_axes_subgroup`) and in a shared-memory tree otherwise (`sum_axes_tree`, also
//! under `VKGAN_LIMITS=minimum`).

use super::{dispatch_1d, expand, mul, reshape, scale};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, strided_offset as offset, strides, CpuTensor, Tensor};
use crate::vk::push::{u32s, SumAxesPush};
use crate::vk::{read, write, KernelFamily};

const MAX_RANK: usize = 6;
/// Elements one invocation sums (see the shader on why loops stay short).
const CHUNK: usize = 4096;
/// Invocations per output of the tree kernels (their workgroup size).
const TREE: usize = 64;
/// Outputs past which one invocation per output already fills a GPU.
const TREE_OUTPUTS: usize = 1 << 16;

/// One pass of the chunked sum kernel: `out[i * chunks + c]` = chunk c of element i.
#[allow(clippy::too_many_arguments)]
fn sum_pass(
    rec: &mut Recording,
    ctx: &crate::vk::Context,
    input: &Tensor,
    factor: Option<&Tensor>,
    out: &Tensor,
    n_out: usize,
    n_red: usize,
    chunks: usize,
    [kept, kept_strides, red, red_strides]: [&[usize]; 4],
) {
    let push = SumAxesPush {
        n_out: (n_out as u32).into(),
        n_red: (n_red as u32).into(),
        chunk: (CHUNK as u32).into(),
        chunks: (chunks as u32).into(),
        kept_dims: u32s(kept),
        kept_strides: u32s(kept_strides),
        red_dims: u32s(red),
        red_strides: u32s(red_strides),
    };
    // The GPU family's tree kernels take a workgroup of 64 per output value: for few outputs
    // with long sums. Short sums, or outputs enough to fill a device one invocation each, run
    // one invocation per output as in the CPU family.
    let kernels = ctx.kernels();
    let tree = ctx.kernel_family() == KernelFamily::Gpu
        && n_red.min(CHUNK) >= TREE
        && n_out * chunks < TREE_OUTPUTS;
    let subgroups = ctx.limits().subgroup_arithmetic;
    let (kernel, invocations) = match (tree, factor.is_some()) {
        (false, false) => (&kernels.sum_axes, n_out * chunks),
        (false, true) => (&kernels.sum_axes_mul, n_out * chunks),
        (true, false) if subgroups => (&kernels.sum_axes_subgroup, n_out * chunks * TREE),
        (true, true) if subgroups => (&kernels.sum_axes_subgroup_mul, n_out * chunks * TREE),
        (true, false) => (&kernels.sum_axes_tree, n_out * chunks * TREE),
        (true, true) => (&kernels.sum_axes_tree_mul, n_out * chunks * TREE),
    };
    let mut bindings = vec![read(input.buffer()), write(out.buffer())];
    bindings.extend(factor.map(|f| read(f.buffer())));
    dispatch_1d(rec, kernel, &bindings, &push, invocations);
}

pub fn sum(t: &mut Tape, x: Var, axes: &[usize], keepdim: bool) -> Var {
    let shape = t.shape(x).to_vec();
    let mut reduced = vec![false; shape.len()];
    for &a in axes {
        assert!(a < shape.len(), "axis {a} out of range for shape {shape:?}");
        reduced[a] = true;
    }
    let kept: Vec<usize> = shape
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let summed = if axes.is_empty() {
        x
    } else {
        t.push(
            Sum {
                reduced,
                in_shape: shape.clone(),
                product: false,
            },
            &[x],
            &kept,
        )
    };
    if keepdim {
        summed
    } else {
        let squeezed: Vec<usize> = shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect();
        reshape(t, summed, &squeezed)
    }
}

pub fn sum_all(t: &mut Tape, x: Var) -> Var {
    let axes: Vec<usize> = (0..t.shape(x).len()).collect();
    sum(t, x, &axes, false)
}

pub fn mean(t: &mut Tape, x: Var, axes: &[usize], keepdim: bool) -> Var {
    let shape = t.shape(x);
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    let s = sum(t, x, axes, keepdim);
    scale(t, s, 1.0 / count as f32)
}

pub fn mean_all(t: &mut Tape, x: Var) -> Var {
    let axes: Vec<usize> = (0..t.shape(x).len()).collect();
    mean(t, x, &axes, false)
}

/// Sums `x` down to `shape`, which must broadcast to x's shape.
pub fn sum_to(t: &mut Tape, x: Var, shape: &[usize]) -> Var {
    let from = t.shape(x).to_vec();
    if from == shape {
        return x;
    }
    let axes: Vec<usize> = reduced_axes(&from, shape)
        .iter()
        .enumerate()
        .filter(|(_, &r)| r)
        .map(|(i, _)| i)
        .collect();
    let s = sum(t, x, &axes, true);
    reshape(t, s, shape)
}

/// sum_to(a * b, shape) in one pass; a and b have one shape, which `shape` broadcasts to.
pub fn mul_sum_to(t: &mut Tape, a: Var, b: Var, shape: &[usize]) -> Var {
    let from = t.shape(a).to_vec();
    assert_eq!(from, t.shape(b), "mul_sum_to's factors differ in shape");
    if from == shape {
        return mul(t, a, b);
    }
    let reduced = reduced_axes(&from, shape);
    let kept: Vec<usize> = from
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let s = t.push(
        Sum {
            reduced,
            in_shape: from,
            product: true,
        },
        &[a, b],
        &kept,
    );
    reshape(t, s, shape)
}

/// Which axes of `from` a sum down to `shape` (which broadcasts to `from`) reduces: the
/// leading ones `shape` lacks and those where it has 1.
fn reduced_axes(from: &[usize], shape: &[usize]) -> Vec<bool> {
    assert!(
        shape.len() <= from.len(),
        "cannot sum {from:?} to {shape:?}"
    );
    let lead = from.len() - shape.len();
    (0..from.len())
        .map(|i| i < lead || (shape[i - lead] == 1 && from[i] != 1))
        .collect()
}

struct Sum {
    reduced: Vec<bool>,
    in_shape: Vec<usize>,
    /// Sums the product of two inputs of `in_shape` (mul_sum_to) instead of one input.
    product: bool,
}

impl Sum {
    fn kept_and_reduced(&self) -> (Vec<usize>, Vec<usize>) {
        let kept = self
            .in_shape
            .iter()
            .zip(&self.reduced)
            .map(|(&d, &r)| if r { 1 } else { d })
            .collect();
        let red = self
            .in_shape
            .iter()
            .zip(&self.reduced)
            .map(|(&d, &r)| if r { d } else { 1 })
            .collect();
        (kept, red)
    }
}

impl Op for Sum {
    fn name(&self) -> &'static str {
        if self.product {
            "mul_sum_to"
        } else {
            "sum"
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (kept, red) = self.kept_and_reduced();
        let st = strides(&self.in_shape);
        let data = (0..numel(&kept))
            .map(|i| {
                let base = offset(i, &kept, &st);
                (0..numel(&red))
                    .map(|j| {
                        let at = base + offset(j, &red, &st);
                        let factor = inputs.get(1).map_or(1.0, |y| y.data[at]);
                        inputs[0].data[at] * factor
                    })
                    .sum()
            })
            .collect();
        CpuTensor::new(&kept, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        assert!(self.in_shape.len() <= MAX_RANK, "rank > {MAX_RANK}");
        // Padded to rank 6 on the left, as the kernel expects.
        let pad = |v: &[usize], fill: usize| -> Vec<usize> {
            let mut w = vec![fill; MAX_RANK - v.len()];
            w.extend_from_slice(v);
            w
        };
        let (kept, red) = self.kept_and_reduced();
        let st = pad(&strides(&self.in_shape), 0);
        let (kept, red) = (pad(&kept, 1), pad(&red, 1));
        let n_out = numel(&kept);
        let n_red = numel(&red);
        let ctx = rec.context();
        let chunks = n_red.div_ceil(CHUNK);
        let factor = inputs.get(1).copied();
        if chunks <= 1 {
            sum_pass(
                rec,
                &ctx,
                inputs[0],
                factor,
                out,
                n_out,
                n_red,
                1,
                [&kept, &st, &red, &st],
            );
            return;
        }
        // Partial sums per chunk, then sums of those, until one value per output is left:
        // each loop stays under CHUNK iterations.
        let Some(mut partial) = rec.tensor("partial sums of a reduction", &[n_out, chunks]) else {
            return;
        };
        sum_pass(
            rec,
            &ctx,
            inputs[0],
            factor,
            &partial,
            n_out,
            n_red,
            chunks,
            [&kept, &st, &red, &st],
        );
        let mut width = chunks;
        loop {
            let next = width.div_ceil(CHUNK);
            let rows = pad(&[n_out, 1], 1);
            let row_strides = pad(&[width, 0], 0);
            let cols = pad(&[1, width], 1);
            let col_strides = pad(&[0, 1], 0);
            let dest = if next == 1 {
                out.clone()
            } else {
                match rec.tensor("partial sums of a reduction", &[n_out, next]) {
                    Some(t) => t,
                    None => return,
                }
            };
            sum_pass(
                rec,
                &ctx,
                &partial,
                None,
                &dest,
                n_out,
                width,
                next,
                [&rows, &row_strides, &cols, &col_strides],
            );
            if next == 1 {
                return;
            }
            partial = dest;
            width = next;
        }
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        if !self.product {
            return vec![Some(expand(t, g, &self.in_shape))];
        }
        // g has the kept shape (reduced axes 1), which broadcasts over the inputs'.
        vec![Some(mul(t, g, inputs[1])), Some(mul(t, g, inputs[0]))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn sum_over_axes() {
        let shape: &[usize] = &[3, 5, 7, 2];
        for axes in [&[0][..], &[1], &[3], &[0, 2], &[1, 2, 3], &[0, 1, 2, 3]] {
            for keepdim in [false, true] {
                check_op(OpCase::new("sum", &[shape], move |t, x| {
                    sum(t, x[0], axes, keepdim)
                }));
            }
        }
    }

    /// Innermost reduced axes of a multiple of 4 take the kernel's four-a-pass loop, whose
    /// counter carries into the outer reduced axes.
    #[test]
    fn sum_over_rows_of_four() {
        let shape: &[usize] = &[2, 3, 4, 8];
        for axes in [&[3][..], &[1, 3], &[0, 2, 3], &[0, 1, 2, 3]] {
            check_op(OpCase::new("sum", &[shape], move |t, x| {
                sum(t, x[0], axes, false)
            }));
        }
    }

    /// The fused product sum against the two ops it replaces, to second order: short sums,
    /// rows of four, sums long enough for the GPU family's tree kernels, and a sum past one
    /// chunk (the fused pass, then plain passes over its partial sums).
    #[test]
    fn mul_sum_to_is_the_sum_of_the_product() {
        let cases: [(&[usize], &[usize]); 5] = [
            (&[3, 5, 7, 2], &[5, 1, 1]),
            (&[2, 3, 4, 8], &[1, 3, 1, 1]),
            (&[3, 4, 5], &[4, 5]),
            (&[4, 300], &[4, 1]),
            (&[2, 5000], &[2, 1]),
        ];
        for (from, to) in cases {
            let name = format!("mul_sum_to {from:?} -> {to:?}");
            let case = OpCase::new(&name, &[from, from], move |t, x| {
                mul_sum_to(t, x[0], x[1], to)
            });
            let case = if from[1] == 5000 {
                case.tolerance(1e-3, 1e-4)
            } else {
                case
            };
            check_op(case);
        }
    }

    #[test]
    fn sum_all_of_a_large_odd_tensor() {
        check_op(
            OpCase::new("sum_all", &[&[1009, 13]], |t, x| sum_all(t, x[0])).tolerance(1e-3, 1e-4),
        );
    }

    #[test]
    fn long_reductions_are_exact_past_the_lavapipe_loop_limit() {
        // 70_001 and 300_007 elements per output: past 65535 loop iterations; 16_777_220
        // needs a third pass (more than 4096 x 4096). Quarters keep every sum exact in f32.
        let ctx = crate::testing::context();
        for (shape, axes) in [
            (&[70_001usize][..], &[0usize][..]),
            (&[3, 300_007], &[1]),
            (&[700, 3, 101], &[0, 2]),
            (&[16_777_220], &[0]),
            // More outputs than one row of 65535 workgroups of 64.
            (&[70_001, 3], &[1]),
        ] {
            let mut t = Tape::new();
            let x = t.leaf(shape, false);
            let y = sum(&mut t, x, axes, false);
            let quarters = Tensor::from_f32(&ctx, shape, &vec![0.25; numel(shape)]).unwrap();
            let got = t.eval(&ctx, &[y], &[(x, &quarters)]).unwrap().remove(0);
            let per: usize = axes.iter().map(|&a| shape[a]).product();
            assert!(
                got.iter().all(|&v| v == per as f32 / 4.0),
                "{shape:?} over {axes:?}: {:?}",
                &got[..got.len().min(4)]
            );
        }
    }

    #[test]
    fn every_reduction_kernel_sums_exactly() {
        use crate::testing::context_with;
        use crate::vk::LimitsMode;
        // Minimum limits take subgroup arithmetic away, so the GPU family's shared-memory tree
        // runs on any device; quarters keep every sum exact in f32.
        for (limits, family) in [
            (LimitsMode::Device, KernelFamily::Cpu),
            (LimitsMode::Device, KernelFamily::Gpu),
            (LimitsMode::Minimum, KernelFamily::Gpu),
        ] {
            let ctx = context_with(limits, Some(family));
            let long = match family {
                KernelFamily::Cpu => "sum_axes",
                KernelFamily::Gpu if ctx.limits().subgroup_arithmetic => "sum_axes_subgroup",
                KernelFamily::Gpu => "sum_axes_tree",
            };
            if limits == LimitsMode::Minimum {
                assert_eq!(long, "sum_axes_tree");
            }
            // Long sums over few outputs take the family's kernel; short sums and many outputs
            // one invocation per output in either family.
            for (shape, axes, want) in [
                (&[5usize, 9001][..], &[1usize][..], long),
                (&[64, 7, 33], &[0, 2], long),
                (&[1000, 3], &[1], "sum_axes"),
                (&[70_001, 65], &[1], "sum_axes"),
            ] {
                let mut t = Tape::new();
                let x = t.leaf(shape, false);
                let y = sum(&mut t, x, axes, false);
                let quarters = Tensor::from_f32(&ctx, shape, &vec![0.25; numel(shape)]).unwrap();
                let bound = [(x, &quarters)];
                let program = t.compile(&ctx, &[y], &bound).unwrap();
                assert!(
                    program.graph().kernel_names().contains(&want),
                    "{limits:?} {family:?}: {:?}",
                    program.graph().kernel_names()
                );
                let got = t.eval(&ctx, &[y], &bound).unwrap().remove(0);
                let per: usize = axes.iter().map(|&a| shape[a]).product();
                assert!(
                    got.iter().all(|&v| v == per as f32 / 4.0),
                    "{limits:?} {family:?} {shape:?}: {:?}",
                    &got[..got.len().min(4)]
                );
                // The fused product sum takes the same kernel's _mul build: halves times halves.
                let mut t = Tape::new();
                let (a, b) = (t.leaf(shape, false), t.leaf(shape, false));
                let kept: Vec<usize> = (0..shape.len())
                    .map(|i| if axes.contains(&i) { 1 } else { shape[i] })
                    .collect();
                let y = mul_sum_to(&mut t, a, b, &kept);
                let halves = Tensor::from_f32(&ctx, shape, &vec![0.5; numel(shape)]).unwrap();
                let bound = [(a, &halves), (b, &halves)];
                let program = t.compile(&ctx, &[y], &bound).unwrap();
                let fused = format!("{want}_mul");
                assert!(
                    program.graph().kernel_names().contains(&fused.as_str()),
                    "{limits:?} {family:?}: {:?}",
                    program.graph().kernel_names()
                );
                let got = t.eval(&ctx, &[y], &bound).unwrap().remove(0);
                assert!(
                    got.iter().all(|&v| v == per as f32 / 4.0),
                    "{limits:?} {family:?} {shape:?} mul_sum_to: {:?}",
                    &got[..got.len().min(4)]
                );
            }
        }
    }

    #[test]
    fn mean_and_sum_to() {
        check_op(OpCase::new("mean", &[&[4, 6, 5]], |t, x| {
            mean(t, x[0], &[1], true)
        }));
        check_op(OpCase::new("mean_all", &[&[4, 6, 5]], |t, x| {
            mean_all(t, x[0])
        }));
        check_op(OpCase::new("sum_to", &[&[2, 3, 4, 5]], |t, x| {
            sum_to(t, x[0], &[3, 1, 5])
        }));
    }
}
