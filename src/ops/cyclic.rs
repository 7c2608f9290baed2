//! Cyclic folds: the building blocks of fast, deterministic sums over whole tensors (the
//! gradient norm). With x flattened to n elements and k slots:
//!
//! - `cyclic_sum(x, k)`: y[i] = sum over j < n with j mod k = i of x[j]; shape [k].
//!   Linear; dx = cyclic_expand(g, shape of x).
//! - `cyclic_sum_squares(x, k)`: y[i] = sum over the same j of x[j]^2; shape [k].
//!   dx = 2 x cyclic_expand(g, shape of x).
//! - `cyclic_expand(y, shape)`: x[j] = y[j mod k] for the n = numel(shape) elements of shape
//!   (y of shape [k]). Linear and the adjoint of `cyclic_sum`; dy = cyclic_sum(g, k).
//!
//! Slots past n are 0; a slot sums at most `MAX_PER_SLOT` elements. One shader
//! (`cyclic.comp`, a kernel per mode): a fold has one invocation per slot, neighbouring
//! invocations reading neighbouring elements, each a sequential f32 sum, so the result is the
//! same on every run.

use super::{dispatch_1d, mul, scale};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, CpuTensor, Tensor};
use crate::vk::push::CyclicPush;
use crate::vk::{read, write, Kernel, Kernels};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sum,
    SumSquares,
    Expand,
}

impl Mode {
    fn kernel(self, kernels: &Kernels) -> &Kernel<CyclicPush> {
        match self {
            Mode::Sum => &kernels.cyclic_sum,
            Mode::SumSquares => &kernels.cyclic_sum_squares,
            Mode::Expand => &kernels.cyclic_expand,
        }
    }
}

struct Cyclic {
    mode: Mode,
    /// The number of slots k.
    parts: usize,
    /// The shape of the unfolded side (x of a fold, the output of an expand).
    shape: Vec<usize>,
}

/// The most elements one slot may sum. llvmpipe (Mesa 22.3) silently stops any loop of a
/// shader invocation after 65535 iterations (a sum of 10^6 ones onto one slot comes out as
/// 65534), so a fold asks for no more than a quarter of that.
pub const MAX_PER_SLOT: usize = 16384;

fn fold(t: &mut Tape, x: Var, parts: usize, mode: Mode) -> Var {
    assert!(parts > 0, "cyclic fold onto 0 slots");
    let n = t.numel(x);
    assert!(n < 1 << 31, "cyclic fold of more than 2^31 elements");
    assert!(
        n.div_ceil(parts) <= MAX_PER_SLOT,
        "cyclic fold of {n} elements onto {parts} slots: more than {MAX_PER_SLOT} per slot"
    );
    let shape = t.shape(x).to_vec();
    t.push(Cyclic { mode, parts, shape }, &[x], &[parts])
}

pub fn cyclic_sum(t: &mut Tape, x: Var, parts: usize) -> Var {
    fold(t, x, parts, Mode::Sum)
}

pub fn cyclic_sum_squares(t: &mut Tape, x: Var, parts: usize) -> Var {
    fold(t, x, parts, Mode::SumSquares)
}

/// `y` (shape [k]) repeated cyclically to fill `shape`.
pub fn cyclic_expand(t: &mut Tape, y: Var, shape: &[usize]) -> Var {
    let ys = t.shape(y);
    assert!(
        ys.len() == 1 && ys[0] > 0,
        "cyclic_expand of {ys:?}: needs shape [k]"
    );
    assert!(
        numel(shape) < 1 << 31,
        "cyclic_expand to more than 2^31 elements"
    );
    let parts = ys[0];
    t.push(
        Cyclic {
            mode: Mode::Expand,
            parts,
            shape: shape.to_vec(),
        },
        &[y],
        shape,
    )
}

impl Op for Cyclic {
    fn name(&self) -> &'static str {
        match self.mode {
            Mode::Sum => "cyclic_sum",
            Mode::SumSquares => "cyclic_sum_squares",
            Mode::Expand => "cyclic_expand",
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = &inputs[0].data;
        let k = self.parts;
        match self.mode {
            Mode::Expand => {
                let n = numel(&self.shape);
                CpuTensor::new(&self.shape, (0..n).map(|j| x[j % k]).collect())
            }
            Mode::Sum | Mode::SumSquares => {
                let mut y = vec![0.0; k];
                for (j, &v) in x.iter().enumerate() {
                    y[j % k] += if self.mode == Mode::Sum { v } else { v * v };
                }
                CpuTensor::new(&[k], y)
            }
        }
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = numel(&self.shape);
        let invocations = if self.mode == Mode::Expand {
            n
        } else {
            self.parts
        };
        let ctx = rec.context();
        dispatch_1d(
            rec,
            self.mode.kernel(ctx.kernels()),
            &[read(inputs[0].buffer()), write(out.buffer())],
            &CyclicPush {
                n: (n as u32).into(),
                parts: (self.parts as u32).into(),
            },
            invocations,
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let dx = match self.mode {
            Mode::Sum => cyclic_expand(t, g, &self.shape),
            Mode::SumSquares => {
                let e = cyclic_expand(t, g, &self.shape);
                let two_x = scale(t, inputs[0], 2.0);
                mul(t, e, two_x)
            }
            Mode::Expand => cyclic_sum(t, g, self.parts),
        };
        vec![Some(dx)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn each_mode_runs_the_kernel_built_for_it() {
        let ctx = crate::testing::context();
        for mode in [Mode::Sum, Mode::SumSquares, Mode::Expand] {
            let op = Cyclic {
                mode,
                parts: 1,
                shape: vec![1],
            };
            assert_eq!(mode.kernel(ctx.kernels()).spec.name, op.name());
        }
    }

    #[test]
    fn folds_and_expand() {
        // More slots than elements, fewer, and a count that does not divide the size.
        for (shape, parts) in [
            (&[1][..], 1),
            (&[7, 9][..], 5),
            (&[3, 5, 67][..], 64),
            (&[13][..], 29),
        ] {
            check_op(OpCase::new("cyclic_sum", &[shape], move |t, x| {
                cyclic_sum(t, x[0], parts)
            }));
            check_op(OpCase::new("cyclic_sum_squares", &[shape], move |t, x| {
                cyclic_sum_squares(t, x[0], parts)
            }));
            let s = shape.to_vec();
            check_op(OpCase::new("cyclic_expand", &[&[parts]], move |t, x| {
                cyclic_expand(t, x[0], &s)
            }));
        }
    }

    #[test]
    fn fold_of_a_large_tensor() {
        check_op(
            OpCase::new("cyclic_sum_squares", &[&[1009, 67]], |t, x| {
                cyclic_sum_squares(t, x[0], 4096)
            })
            .tolerance(1e-5, 1e-5),
        );
    }
}
