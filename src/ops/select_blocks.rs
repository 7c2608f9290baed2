//! Style mixing: one latent per synthesis block.
//!
//! - `select_blocks(w1, w2, c, n)`: w1, w2 of one shape S (StyleGAN2: [B, d]); c of shape [1]
//!   holding a block index as an f32 (rounded, clamped to [0, n]); the result has shape
//!   [n, ..S] with block k equal to w1 when k < c, else w2. Held on the device so a compiled
//!   training step can draw a new crossover every run without re-recording.
//!   dw1 = sum_blocks(g, c, First) = sum of g[k] over k < c;
//!   dw2 = sum_blocks(g, c, Second) = sum of g[k] over k >= c.
//!   c gets no gradient: it is an index, and the output is piecewise constant in it (its
//!   derivative is zero wherever it exists), so returning None is exact.
//! - `sum_blocks(g, c, side)`: [n, ..S] -> S, the masked sum above. Linear in g, and its
//!   adjoint is a select with zeros on the other side: dg = select_blocks(h, 0, c, n) for
//!   First, select_blocks(0, h, c, n) for Second. So select and sum_blocks differentiate each
//!   other again without end; c again gets none.
//! - `repeat_blocks(w, n)`: [..S] -> [n, ..S], every block w (no mixing): expand of a reshape.

use super::{dispatch_1d, expand, reshape, zeros};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, CpuTensor, Tensor};
use crate::vk::push::{BlockSumPush, SelectBlocksPush};
use crate::vk::{read, write};

/// Which blocks of a style-mixing select: those below the crossover (w1's) or the rest (w2's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    First = 0,
    Second = 1,
}

/// [n_blocks, ..shape of w1]: block k is w1 if k < crossover else w2.
pub fn select_blocks(t: &mut Tape, w1: Var, w2: Var, crossover: Var, n_blocks: usize) -> Var {
    let shape = t.shape(w1).to_vec();
    assert_eq!(
        t.shape(w2),
        shape,
        "select_blocks: w1 {shape:?} and w2 {:?} differ",
        t.shape(w2)
    );
    assert_eq!(t.shape(crossover), [1], "select_blocks: crossover shape");
    assert!(n_blocks > 0, "select_blocks of no blocks");
    let mut out = vec![n_blocks];
    out.extend(&shape);
    t.push(SelectBlocks { n_blocks }, &[w1, w2, crossover], &out)
}

/// The sum of g's blocks on `side` of the crossover: [n, ..S] -> S.
pub fn sum_blocks(t: &mut Tape, g: Var, crossover: Var, side: Side) -> Var {
    let shape = t.shape(g).to_vec();
    assert!(!shape.is_empty(), "sum_blocks of a scalar");
    assert_eq!(t.shape(crossover), [1], "sum_blocks: crossover shape");
    t.push(
        SumBlocks {
            side,
            n_blocks: shape[0],
        },
        &[g, crossover],
        &shape[1..],
    )
}

/// [..S] -> [n_blocks, ..S], every block `w`.
pub fn repeat_blocks(t: &mut Tape, w: Var, n_blocks: usize) -> Var {
    let mut one = vec![1];
    one.extend(t.shape(w));
    let mut out = one.clone();
    out[0] = n_blocks;
    let r = reshape(t, w, &one);
    expand(t, r, &out)
}

/// The crossover as the shaders read it.
fn crossover_blocks(c: f64, n_blocks: usize) -> usize {
    c.round().clamp(0.0, n_blocks as f64) as usize
}

struct SelectBlocks {
    n_blocks: usize,
}

impl Op for SelectBlocks {
    fn name(&self) -> &'static str {
        "select_blocks"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (w1, w2) = (inputs[0], inputs[1]);
        let c = crossover_blocks(inputs[2].data[0], self.n_blocks);
        let row = w1.numel();
        let mut shape = vec![self.n_blocks];
        shape.extend(&w1.shape);
        let mut y = CpuTensor::full(&shape, 0.0);
        for k in 0..self.n_blocks {
            let src = if k < c { w1 } else { w2 };
            for r in 0..row {
                y.data[k * row + r] = src.data[r];
            }
        }
        y
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let row = inputs[0].numel();
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().select_blocks,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                read(inputs[2].buffer()),
                write(out.buffer()),
            ],
            &SelectBlocksPush {
                n: (n as u32).into(),
                row: (row as u32).into(),
                n_blocks: (self.n_blocks as u32).into(),
            },
            n,
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let c = inputs[2];
        let grad =
            |t: &mut Tape, w: Var, side| t.requires_grad(w).then(|| sum_blocks(t, g, c, side));
        let g1 = grad(t, inputs[0], Side::First);
        let g2 = grad(t, inputs[1], Side::Second);
        // The crossover is an index: see the module header.
        vec![g1, g2, None]
    }
}

struct SumBlocks {
    side: Side,
    n_blocks: usize,
}

impl Op for SumBlocks {
    fn name(&self) -> &'static str {
        "sum_blocks"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let g = inputs[0];
        let c = crossover_blocks(inputs[1].data[0], self.n_blocks);
        let blocks = match self.side {
            Side::First => 0..c,
            Side::Second => c..self.n_blocks,
        };
        let row = numel(&g.shape[1..]);
        let mut y = CpuTensor::full(&g.shape[1..], 0.0);
        for k in blocks {
            for r in 0..row {
                y.data[r] += g.data[k * row + r];
            }
        }
        y
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let row = out.numel();
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().block_sum,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                write(out.buffer()),
            ],
            &BlockSumPush {
                row: (row as u32).into(),
                n_blocks: (self.n_blocks as u32).into(),
                upper: (self.side as u32).into(),
            },
            row,
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], out: Var, h: Var) -> Vec<Option<Var>> {
        let c = inputs[1];
        let shape = t.shape(out).to_vec();
        let z = zeros(t, &shape);
        let dg = match self.side {
            Side::First => select_blocks(t, h, z, c, self.n_blocks),
            Side::Second => select_blocks(t, z, h, c, self.n_blocks),
        };
        // The crossover is an index: see the module header.
        vec![Some(dg), None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, context, OpCase};

    const N: usize = 5;

    fn crossover(c: f64) -> CpuTensor {
        CpuTensor::new(&[1], vec![c])
    }

    #[test]
    fn select_for_every_crossover() {
        for c in 0..=N {
            check_op(
                OpCase::new("select_blocks", &[&[3, 7], &[3, 7], &[1]], |t, x| {
                    select_blocks(t, x[0], x[1], x[2], N)
                })
                .constant(2)
                .input(2, crossover(c as f64)),
            );
        }
    }

    #[test]
    fn select_then_nonlinearity() {
        // square makes the second derivative depend on the selected values.
        for c in [0.0, 2.0, N as f64] {
            check_op(
                OpCase::new("select_square", &[&[2, 11], &[2, 11], &[1]], |t, x| {
                    let w = select_blocks(t, x[0], x[1], x[2], N);
                    ops::square(t, w)
                })
                .constant(2)
                .input(2, crossover(c)),
            );
        }
    }

    #[test]
    fn sum_blocks_on_both_sides() {
        for side in [Side::First, Side::Second] {
            for c in [0.0, 3.0, 7.0] {
                check_op(
                    OpCase::new("sum_blocks", &[&[7, 3, 5], &[1]], move |t, x| {
                        sum_blocks(t, x[0], x[1], side)
                    })
                    .constant(1)
                    .input(1, crossover(c)),
                );
            }
        }
    }

    #[test]
    fn out_of_range_crossovers_clamp() {
        for c in [-3.0, 9.0] {
            check_op(
                OpCase::new("select_clamped", &[&[3, 7], &[3, 7], &[1]], |t, x| {
                    select_blocks(t, x[0], x[1], x[2], N)
                })
                .constant(2)
                .input(2, crossover(c)),
            );
        }
    }

    #[test]
    fn crossover_changes_between_runs_of_one_program() {
        let ctx = context();
        let mut t = Tape::new();
        let w1 = t.leaf(&[2, 3], false);
        let w2 = t.leaf(&[2, 3], false);
        let c = t.leaf(&[1], false);
        let y = select_blocks(&mut t, w1, w2, c, 4);
        let a = Tensor::from_f32(&ctx, &[2, 3], &[1.0; 6]).unwrap();
        let b = Tensor::from_f32(&ctx, &[2, 3], &[2.0; 6]).unwrap();
        let ct = Tensor::from_f32(&ctx, &[1], &[1.0]).unwrap();
        let mut program = t
            .compile(&ctx, &[y], &[(w1, &a), (w2, &b), (c, &ct)])
            .unwrap();
        for k in 0..=4 {
            ct.write(&[k as f32]).unwrap();
            program.run().unwrap();
            let got = program.read(y).unwrap();
            let want: Vec<f32> = (0..4)
                .flat_map(|block| [if block < k { 1.0 } else { 2.0 }; 6])
                .collect();
            assert_eq!(got, want, "crossover {k}");
        }
    }

    #[test]
    fn repeat_blocks_copies_every_block() {
        check_op(OpCase::new("repeat_blocks", &[&[3, 7]], |t, x| {
            repeat_blocks(t, x[0], N)
        }));
        check_op(OpCase::new("repeat_blocks_square", &[&[2, 5]], |t, x| {
            let w = repeat_blocks(t, x[0], 3);
            ops::square(t, w)
        }));
    }
}
