//! `permute(x, perm)`: axis i of the result is axis perm[i] of x (rank <= 6), so
//! y[c_0, .., c_{r-1}] = x[c'] with c'[perm[i]] = c_i and y's shape[i] = x's shape[perm[i]].
//! Linear; dx = permute(g, inv) with inv[perm[i]] = i, whose own backward permutes back by
//! perm, so it differentiates again without end. Used for weight transposes in the
//! convolution gradients.

use super::dispatch_1d;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, strides, CpuTensor, Tensor};
use crate::vk::push::{u32s, PermutePush};
use crate::vk::{read, write};

const MAX_RANK: usize = 6;

/// `x` with its axes reordered: axis i of the result is axis `perm[i]` of `x`.
pub fn permute(t: &mut Tape, x: Var, perm: &[usize]) -> Var {
    let shape = t.shape(x).to_vec();
    assert_eq!(
        perm.len(),
        shape.len(),
        "permutation {perm:?} of shape {shape:?}"
    );
    let mut seen = vec![false; perm.len()];
    for &p in perm {
        assert!(p < perm.len() && !seen[p], "{perm:?} is not a permutation");
        seen[p] = true;
    }
    assert!(
        shape.len() <= MAX_RANK,
        "permute of rank {} > {MAX_RANK}",
        shape.len()
    );
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return x;
    }
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    t.push(
        Permute {
            perm: perm.to_vec(),
            in_shape: shape,
        },
        &[x],
        &out,
    )
}

struct Permute {
    perm: Vec<usize>,
    in_shape: Vec<usize>,
}

impl Permute {
    fn out_shape(&self) -> Vec<usize> {
        self.perm.iter().map(|&p| self.in_shape[p]).collect()
    }

    /// The input stride of the axis that lands on each output axis.
    fn src_strides(&self) -> Vec<usize> {
        let st = strides(&self.in_shape);
        self.perm.iter().map(|&p| st[p]).collect()
    }
}

impl Op for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let out = self.out_shape();
        let src = self.src_strides();
        let mut y = CpuTensor::full(&out, 0.0);
        for (i, v) in y.data.iter_mut().enumerate() {
            let mut rest = i;
            let mut offset = 0;
            for d in (0..out.len()).rev() {
                offset += (rest % out[d]) * src[d];
                rest /= out[d];
            }
            *v = inputs[0].data[offset];
        }
        y
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = numel(out.shape());
        let push = PermutePush {
            n: (n as u32).into(),
            rank: (self.perm.len() as u32).into(),
            dims: u32s(&self.out_shape()),
            src_strides: u32s(&self.src_strides()),
        };
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().permute,
            &[read(inputs[0].buffer()), write(out.buffer())],
            &push,
            n,
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let mut inv = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inv[p] = i;
        }
        vec![Some(permute(t, g, &inv))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn transposes_and_rank_two() {
        check_op(OpCase::new("permute", &[&[7, 13]], |t, x| {
            permute(t, x[0], &[1, 0])
        }));
        check_op(OpCase::new("permute", &[&[3, 5, 7]], |t, x| {
            permute(t, x[0], &[2, 0, 1])
        }));
    }

    #[test]
    fn permutes_of_rank_four_five_and_six() {
        // The weight transpose of a convolution: [O, I, kh, kw] -> [I, O, kh, kw].
        check_op(OpCase::new("permute", &[&[5, 3, 3, 2]], |t, x| {
            permute(t, x[0], &[1, 0, 2, 3])
        }));
        check_op(OpCase::new("permute", &[&[2, 3, 5, 7]], |t, x| {
            permute(t, x[0], &[3, 1, 0, 2])
        }));
        check_op(OpCase::new("permute", &[&[2, 3, 1, 5, 4]], |t, x| {
            permute(t, x[0], &[4, 2, 0, 3, 1])
        }));
        check_op(OpCase::new("permute", &[&[2, 3, 2, 1, 3, 2]], |t, x| {
            permute(t, x[0], &[5, 4, 3, 2, 1, 0])
        }));
    }

    #[test]
    fn permute_then_nonlinearity() {
        check_op(OpCase::new("permute_square", &[&[3, 4, 5, 2]], |t, x| {
            let p = permute(t, x[0], &[2, 3, 0, 1]);
            ops::square(t, p)
        }));
    }

    #[test]
    fn identity_permutation_is_the_input() {
        let mut t = Tape::new();
        let x = t.leaf(&[3, 5, 7], true);
        assert_eq!(permute(&mut t, x, &[0, 1, 2]), x);
    }

    #[test]
    #[should_panic(expected = "is not a permutation")]
    fn repeated_axes_panic() {
        let mut t = Tape::new();
        let x = t.leaf(&[3, 5, 7], true);
        permute(&mut t, x, &[0, 1, 1]);
    }
}
