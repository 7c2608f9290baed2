//! The global L2 norm of a list of tensors and clipping to a maximum norm, with PyTorch's
//! `torch.nn.utils.clip_grad_norm_` semantics (norm_type 2):
//!
//! - total = sqrt(sum over tensors of sum(g^2))
//! - coef = max_norm / (total + 1e-6), clamped to at most 1; each g is scaled by it.
//!
//! Built from ops only, so everything here is differentiable to any order (the derivative of
//! the clamp is zero almost everywhere on the clamped side, through relu). The clamp is
//! computed as `max_norm / max(total + 1e-6, max_norm)` with
//! `max(a, b) = b + relu(a - b)`: when no clipping is needed the divisor is exactly max_norm
//! and the factor exactly 1 (on devices that divide correctly), and when clipping it is
//! accurate to a few ulp at any ratio (unlike 1 - relu(1 - coef), which loses the bits of a
//! small coef).
//!
//! The sum of squares is two-level and deterministic: each tensor is folded onto 4096 slots
//! (`cyclic_sum_squares`, one dispatch per tensor, all independent; a tensor of more than
//! 4096 x 16384 elements first onto a multiple of 4096), the slot vectors of all
//! tensors are added pairwise in a tree (log2(count) barriers), folded onto 64 slots and
//! summed.

use super::cyclic::MAX_PER_SLOT;
use super::{
    add, add_scalar, cyclic_sum, cyclic_sum_squares, div, full, mul, relu, sqrt, sub, sum_all,
};
use crate::autograd::{Tape, Var};

const SLOTS: usize = 4096;
const FINAL_SLOTS: usize = 64;

/// sum over all `xs` of sum(x^2), shape []. An empty list gives 0.
pub fn sum_of_squares(t: &mut Tape, xs: &[Var]) -> Var {
    fold_squares(t, xs, SLOTS, FINAL_SLOTS)
}

fn fold_squares(t: &mut Tape, xs: &[Var], slots: usize, final_slots: usize) -> Var {
    if xs.is_empty() {
        return full(t, &[], 0.0);
    }
    // Tensors too large for `slots` slots are folded onto a multiple of it first.
    let mut level: Vec<Var> = xs
        .iter()
        .map(|&x| {
            let per_slot = t.numel(x).div_ceil(slots);
            let first = slots * per_slot.div_ceil(MAX_PER_SLOT).max(1);
            let s = cyclic_sum_squares(t, x, first);
            if first > slots {
                cyclic_sum(t, s, slots)
            } else {
                s
            }
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match *pair {
                [a, b] => add(t, a, b),
                [a] => a,
                _ => unreachable!(),
            })
            .collect();
    }
    let folded = cyclic_sum(t, level[0], final_slots);
    sum_all(t, folded)
}

/// The L2 norm of all `xs` together, shape [].
pub fn global_norm(t: &mut Tape, xs: &[Var]) -> Var {
    let s = sum_of_squares(t, xs);
    sqrt(t, s)
}

/// `grads` scaled so that their global norm is at most `max_norm` (PyTorch's
/// clip_grad_norm_), and the norm before clipping.
pub fn clip_grad_norm(t: &mut Tape, grads: &[Var], max_norm: f32) -> (Vec<Var>, Var) {
    let (coef, total) = clip_coefficient(t, grads, max_norm);
    let clipped = grads.iter().map(|&g| mul(t, g, coef)).collect();
    (clipped, total)
}

/// The factor `clip_grad_norm` scales `grads` by (shape [], at most 1), and the norm before
/// clipping: for a consumer that applies the factor as it loads each gradient
/// (`adam_step_scaled`).
pub fn clip_coefficient(t: &mut Tape, grads: &[Var], max_norm: f32) -> (Var, Var) {
    assert!(max_norm > 0.0, "clip_grad_norm: max_norm {max_norm}");
    let total = global_norm(t, grads);
    let a = add_scalar(t, total, 1e-6);
    let b = full(t, &[], max_norm);
    let excess = sub(t, a, b);
    let excess = relu(t, excess);
    let divisor = add(t, b, excess);
    (div(t, b, divisor), total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::tensor::{CpuTensor, Tensor};
    use crate::testing::{assert_close, check_op, context, random, OpCase};

    /// PyTorch's arithmetic in f64: the clipped tensors and the total norm.
    fn clip_reference(grads: &[CpuTensor], max_norm: f64) -> (Vec<Vec<f64>>, f64) {
        let total = grads
            .iter()
            .flat_map(|g| &g.data)
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        let coef = (max_norm / (total + 1e-6)).min(1.0);
        let clipped = grads
            .iter()
            .map(|g| g.data.iter().map(|v| v * coef).collect())
            .collect();
        (clipped, total)
    }

    fn check_clip(shapes: &[&[usize]], max_norm: f32, expect_clipping: bool) {
        let ctx = context();
        let mut t = Tape::new();
        let values: Vec<CpuTensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| random(s, 40 + i as u64))
            .collect();
        let leaves: Vec<Var> = shapes.iter().map(|s| t.leaf(s, false)).collect();
        let (clipped, total) = clip_grad_norm(&mut t, &leaves, max_norm);
        let device: Vec<Tensor> = values
            .iter()
            .map(|v| Tensor::from_cpu(&ctx, v).unwrap())
            .collect();
        let bindings: Vec<(Var, &Tensor)> = leaves.iter().copied().zip(&device).collect();
        let mut outputs = clipped.clone();
        outputs.push(total);
        let got = t.eval(&ctx, &outputs, &bindings).unwrap();
        let cpu_bindings: Vec<(Var, &CpuTensor)> = leaves.iter().copied().zip(&values).collect();
        let cpu = t.eval_cpu(&outputs, &cpu_bindings);
        let (want, want_total) = clip_reference(&values, max_norm as f64);
        assert_eq!(want_total > max_norm as f64, expect_clipping);
        let what = format!("clip {shapes:?} to {max_norm}");
        assert_close(
            &got[shapes.len()],
            &[want_total],
            1e-6,
            1e-6,
            &format!("{what}: norm"),
        );
        assert_close(
            &got[shapes.len()],
            &cpu[shapes.len()].data,
            1e-6,
            1e-6,
            &what,
        );
        for k in 0..shapes.len() {
            assert_close(
                &got[k],
                &want[k],
                1e-6,
                1e-6,
                &format!("{what}: tensor {k}"),
            );
            assert_close(
                &got[k],
                &cpu[k].data,
                1e-6,
                1e-6,
                &format!("{what}: tensor {k} vs tape"),
            );
            if !expect_clipping {
                // The factor is max_norm / max_norm: exactly 1 where division is correctly
                // rounded (lavapipe), within Vulkan's 2.5 ulp elsewhere.
                assert_close(
                    &got[k],
                    &values[k].data,
                    0.0,
                    3e-7,
                    &format!("{what}: {k} kept"),
                );
            }
        }
    }

    #[test]
    fn clip_matches_pytorch_semantics() {
        let shapes: &[&[usize]] = &[&[1], &[7, 9], &[3, 5, 67], &[4099], &[2, 3]];
        // The norm of these is about 60.
        check_clip(shapes, 5.0, true);
        check_clip(shapes, 0.01, true);
        check_clip(shapes, 1000.0, false);
        check_clip(&[&[1009, 13]], 1.0, true);
        check_clip(&[&[6]], 1e6, false);
    }

    #[test]
    fn sums_of_squares_of_large_tensors() {
        // A StyleGAN2 conv weight's size, and (with 64 slots) a tensor that takes the
        // pre-fold, against the f64 sum.
        let ctx = context();
        for (n, slots, final_slots) in
            [(512 * 512 * 9, SLOTS, FINAL_SLOTS), (64 * 16384 + 5, 64, 8)]
        {
            let value = random(&[n], 3);
            let mut t = Tape::new();
            let x = t.leaf(&[n], false);
            let s = fold_squares(&mut t, &[x], slots, final_slots);
            let got = t
                .eval(&ctx, &[s], &[(x, &Tensor::from_cpu(&ctx, &value).unwrap())])
                .unwrap();
            let want: f64 = value.data.iter().map(|v| v * v).sum();
            assert_close(
                &got[0],
                &[want],
                0.0,
                1e-6,
                &format!("sum of squares of {n}"),
            );
            let names: Vec<&str> = (0..t.len()).map(|i| t.op_name(Var(i))).collect();
            let folds = names.iter().filter(|n| n.starts_with("cyclic")).count();
            assert_eq!(folds, if slots == 64 { 3 } else { 2 }, "{names:?}");
        }
    }

    #[test]
    fn clip_is_differentiable() {
        // Through the norm and the clamp, both when clipping and when not.
        for max_norm in [3.0, 100.0] {
            check_op(OpCase::new(
                "clip_grad_norm",
                &[&[7, 9], &[13]],
                move |t, x| clip_grad_norm(t, x, max_norm).0[0],
            ));
            check_op(OpCase::new(
                "global_norm",
                &[&[7, 9], &[13], &[1]],
                move |t, x| {
                    let (clipped, total) = clip_grad_norm(t, x, max_norm);
                    let s = ops::sum_all(t, clipped[1]);
                    ops::mul(t, s, total)
                },
            ));
        }
    }
}
