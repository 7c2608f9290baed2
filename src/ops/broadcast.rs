//! Elementwise binary ops with numpy broadcasting, and `expand`.
//!
//! Shapes align on the right; a dimension of size 1 (or a missing one) stretches to the other
//! operand's size. With `sum_to(g, s)` summing a gradient back over the stretched dimensions:
//! - `add`: a + b; da = sum_to(g, a), db = sum_to(g, b)
//! - `sub`: a - b; da = sum_to(g, a), db = -sum_to(g, b)
//! - `mul`: a * b; da = sum_to(g * b, a), db = sum_to(g * a, b)
//! - `div`: a / b; da = sum_to(g / b, a), db = -sum_to(g * a / b^2, b)
//! - `expand(x, shape)`: x broadcast to shape; dx = sum_to(g, x)
//!
//! All gradients are built from these same ops, so they differentiate again.

use super::{dispatch_1d, fastdiv, mul_sum_to, neg, sum_to};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, strided_offset as offset, strides, CpuTensor, Tensor};
use crate::vk::push::{u32s, BinaryPush, BinaryVec4Push};
use crate::vk::{read, write, Kernel, Kernels};

const MAX_RANK: usize = 6;

/// The shape both operands broadcast to; panics naming both shapes when they cannot.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let da = if i + a.len() >= rank {
                a[i + a.len() - rank]
            } else {
                1
            };
            let db = if i + b.len() >= rank {
                b[i + b.len() - rank]
            } else {
                1
            };
            match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => panic!("shapes {a:?} and {b:?} do not broadcast"),
            }
        })
        .collect()
}

/// Strides that read a tensor of `shape` as if it had `out` (0 along stretched dimensions).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let offset = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < offset || shape[i - offset] == 1 {
                0
            } else {
                own[i - offset]
            }
        })
        .collect()
}

/// The same strided walk over fewer dimensions: size-1 dimensions dropped, and each
/// dimension merged into the one before it wherever both operands step over it contiguously.
/// Never returns rank 0 (a scalar is one dimension of size 1).
fn collapse(dims: &[usize], a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut d, mut sa, mut sb): (Vec<usize>, Vec<usize>, Vec<usize>) = (vec![], vec![], vec![]);
    for i in 0..dims.len() {
        if dims[i] == 1 {
            continue;
        }
        if let (Some(&la), Some(&lb)) = (sa.last(), sb.last()) {
            if la == a[i] * dims[i] && lb == b[i] * dims[i] {
                let k = d.len() - 1;
                d[k] *= dims[i];
                sa[k] = a[i];
                sb[k] = b[i];
                continue;
            }
        }
        d.push(dims[i]);
        sa.push(a[i]);
        sb.push(b[i]);
    }
    if d.is_empty() {
        return (vec![1], vec![0], vec![0]);
    }
    (d, sa, sb)
}

/// The discriminants are binary.comp's `op`. Unlike unary.comp, binary.comp stays one build
/// that switches on it: a build for `expand` would never read `b`, spirv-opt drops an unread
/// binding, and the builds would then bind differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Expand = 4,
}

struct Binary {
    kind: Kind,
    /// The output shape.
    shape: Vec<usize>,
}

fn binary(t: &mut Tape, kind: Kind, a: Var, b: Var) -> Var {
    let shape = broadcast_shape(t.shape(a), t.shape(b));
    t.push(
        Binary {
            kind,
            shape: shape.clone(),
        },
        &[a, b],
        &shape,
    )
}

pub fn add(t: &mut Tape, a: Var, b: Var) -> Var {
    binary(t, Kind::Add, a, b)
}

pub fn sub(t: &mut Tape, a: Var, b: Var) -> Var {
    binary(t, Kind::Sub, a, b)
}

pub fn mul(t: &mut Tape, a: Var, b: Var) -> Var {
    binary(t, Kind::Mul, a, b)
}

pub fn div(t: &mut Tape, a: Var, b: Var) -> Var {
    binary(t, Kind::Div, a, b)
}

/// Records `out` = a * b (broadcast) inside another op's recording, for an op that needs the
/// product only as scratch.
pub(super) fn record_mul(rec: &mut Recording, a: &Tensor, b: &Tensor, out: &Tensor) {
    let op = Binary {
        kind: Kind::Mul,
        shape: out.shape().to_vec(),
    };
    op.record(rec, &[a, b], out);
}

/// `x` broadcast to `shape` (which `x` must broadcast to exactly).
pub fn expand(t: &mut Tape, x: Var, shape: &[usize]) -> Var {
    assert_eq!(
        broadcast_shape(t.shape(x), shape),
        shape,
        "{:?} does not expand to {shape:?}",
        t.shape(x)
    );
    if t.shape(x) == shape {
        return x;
    }
    let op = Binary {
        kind: Kind::Expand,
        shape: shape.to_vec(),
    };
    t.push(op, &[x], shape)
}

fn apply(kind: Kind, x: f64, y: f64) -> f64 {
    match kind {
        Kind::Add => x + y,
        Kind::Sub => x - y,
        Kind::Mul => x * y,
        Kind::Div => x / y,
        Kind::Expand => x,
    }
}

impl Binary {
    /// The four-outputs-an-invocation kernel (binary_vec4.comp) for an op whose operands
    /// collapse to `dims`, where it applies.
    fn vec4_kernel<'k>(
        &self,
        kernels: &'k Kernels,
        dims: &[usize],
    ) -> Option<&'k Kernel<BinaryVec4Push>> {
        let rows_fit = dims.len() == 1 || dims.last().is_some_and(|d| d % 4 == 0);
        if dims.len() > 3 || !rows_fit {
            return None;
        }
        match self.kind {
            Kind::Add => Some(&kernels.binary_vec4_add),
            Kind::Sub => Some(&kernels.binary_vec4_sub),
            Kind::Mul => Some(&kernels.binary_vec4_mul),
            Kind::Div => Some(&kernels.binary_vec4_div),
            // The general kernel copies; a copying build would bind one tensor less.
            Kind::Expand => None,
        }
    }
}

/// Records `out = a (op) b` with `kernel`, over `dims` (at most three, the last a multiple of
/// 4 unless it is the only one) and the operands' strides along them.
fn record_vec4(
    rec: &mut Recording,
    kernel: &Kernel<BinaryVec4Push>,
    [a, b, out]: [&Tensor; 3],
    dims: &[usize],
    strides: [&[usize]; 2],
) {
    // Leading dimensions of size 1 (stride 0) pad the view to three.
    let pad = 3 - dims.len();
    let dim = |d: usize| if d < pad { 1 } else { dims[d - pad] };
    let stride = |s: &[usize], d: usize| if d < pad { 0 } else { s[d - pad] };
    let (d1_magic, d1_log) = fastdiv::magic(dim(1) as u32);
    let (d2_magic, d2_log) = fastdiv::magic(dim(2) as u32);
    let push = BinaryVec4Push {
        n: (out.numel() as u32).into(),
        d1: (dim(1) as u32).into(),
        d2: (dim(2) as u32).into(),
        d1_magic: d1_magic.into(),
        d2_magic: d2_magic.into(),
        logs: (d1_log | d2_log << 5).into(),
        a_strides: u32s(&[0, 1, 2].map(|d| stride(strides[0], d))),
        b_strides: u32s(&[0, 1, 2].map(|d| stride(strides[1], d))),
    };
    dispatch_1d(
        rec,
        kernel,
        &[read(a.buffer()), read(b.buffer()), write(out.buffer())],
        &push,
        out.numel().div_ceil(4),
    );
}

impl Op for Binary {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Add => "add",
            Kind::Sub => "sub",
            Kind::Mul => "mul",
            Kind::Div => "div",
            Kind::Expand => "expand",
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let out = &self.shape;
        let b = inputs.get(1).unwrap_or(&inputs[0]);
        let sa = broadcast_strides(&inputs[0].shape, out);
        let sb = broadcast_strides(&b.shape, out);
        let data = (0..numel(out))
            .map(|i| {
                apply(
                    self.kind,
                    inputs[0].data[offset(i, out, &sa)],
                    b.data[offset(i, out, &sb)],
                )
            })
            .collect();
        CpuTensor::new(out, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let shape = out.shape();
        assert!(shape.len() <= MAX_RANK, "rank {} > {MAX_RANK}", shape.len());
        let a = inputs[0];
        let b = inputs.get(1).copied().unwrap_or(a);
        let (dims, a_strides, b_strides) = collapse(
            shape,
            &broadcast_strides(a.shape(), shape),
            &broadcast_strides(b.shape(), shape),
        );
        if let Some(kernel) = self.vec4_kernel(rec.context().kernels(), &dims) {
            record_vec4(rec, kernel, [a, b, out], &dims, [&a_strides, &b_strides]);
            return;
        }
        let (magics, logs): (Vec<usize>, Vec<u32>) = dims
            .iter()
            .map(|&d| {
                let (magic, log) = fastdiv::magic(d as u32);
                (magic as usize, log)
            })
            .unzip();
        let logs = logs
            .iter()
            .enumerate()
            .fold(0u32, |acc, (d, log)| acc | log << (5 * d));
        let push = BinaryPush {
            n: (out.numel() as u32).into(),
            op: (self.kind as u32).into(),
            rank: (dims.len() as u32).into(),
            dims: u32s(&dims),
            magics: u32s(&magics),
            logs: logs.into(),
            a_strides: u32s(&a_strides),
            b_strides: u32s(&b_strides),
        };
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().binary,
            &[read(a.buffer()), read(b.buffer()), write(out.buffer())],
            &push,
            out.numel().div_ceil(8),
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let a = inputs[0];
        let shape_a = t.shape(a).to_vec();
        if self.kind == Kind::Expand {
            return vec![Some(sum_to(t, g, &shape_a))];
        }
        let b = inputs[1];
        let shape_b = t.shape(b).to_vec();
        if self.kind == Kind::Mul {
            // A broadcast factor's gradient is a product summed down: one pass where the other
            // factor has the output's shape, as g does.
            let grad = |t: &mut Tape, other: Var, shape: &[usize]| {
                if t.shape(other) == self.shape.as_slice() {
                    mul_sum_to(t, g, other, shape)
                } else {
                    let p = mul(t, g, other);
                    sum_to(t, p, shape)
                }
            };
            return vec![Some(grad(t, b, &shape_a)), Some(grad(t, a, &shape_b))];
        }
        let (ga, gb) = match self.kind {
            Kind::Add => (g, g),
            Kind::Sub => (g, neg(t, g)),
            Kind::Mul => unreachable!(),
            Kind::Div => {
                let ga = div(t, g, b);
                let b2 = mul(t, b, b);
                let ga_b = mul(t, g, a);
                let q = div(t, ga_b, b2);
                (ga, neg(t, q))
            }
            Kind::Expand => unreachable!(),
        };
        vec![Some(sum_to(t, ga, &shape_a)), Some(sum_to(t, gb, &shape_b))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn collapse_merges_contiguous_dimensions() {
        // [2,3,4,5] * [2,3,1,1]: the last two merge (b is 0 over both), the first two merge.
        let dims = [2, 3, 4, 5];
        let a = strides(&dims);
        let b = broadcast_strides(&[2, 3, 1, 1], &dims);
        assert_eq!(
            collapse(&dims, &a, &b),
            (vec![6, 20], vec![20, 1], vec![1, 0])
        );
        // A transposed-like broadcast keeps its dimensions; size-1 dimensions go.
        let dims = [3, 1, 4];
        let b = broadcast_strides(&[3, 1, 1], &dims);
        assert_eq!(
            collapse(&dims, &strides(&dims), &b),
            (vec![3, 4], vec![4, 1], vec![1, 0])
        );
        assert_eq!(
            collapse(&[1, 1], &[1, 1], &[0, 0]),
            (vec![1], vec![0], vec![0])
        );
    }

    #[test]
    fn broadcast_shapes() {
        assert_eq!(broadcast_shape(&[3, 1, 5], &[4, 1]), vec![3, 4, 5]);
        assert_eq!(broadcast_shape(&[], &[2, 3]), vec![2, 3]);
    }

    #[test]
    #[should_panic(expected = "do not broadcast")]
    fn mismatched_shapes_panic() {
        broadcast_shape(&[3, 2], &[4, 3]);
    }

    #[test]
    fn add_sub_mul_broadcast() {
        for (a, b) in [
            (&[7, 13][..], &[7, 13][..]),
            (&[3, 1, 5], &[4, 1]),
            (&[2, 3, 1, 1], &[]),
            (&[1, 1031], &[3, 1]),
        ] {
            check_op(OpCase::new("add", &[a, b], |t, x| add(t, x[0], x[1])));
            check_op(OpCase::new("sub", &[a, b], |t, x| sub(t, x[0], x[1])));
            check_op(OpCase::new("mul", &[a, b], |t, x| mul(t, x[0], x[1])));
        }
    }

    /// Shapes that collapse to at most three dimensions with rows of a multiple of 4 (or to
    /// one dimension) take binary_vec4, the rest the general kernel; both are checked.
    #[test]
    fn each_shape_takes_its_kernel() {
        let cases: [(&[usize], &[usize], &str); 6] = [
            (&[7], &[1], "binary_vec4_mul"),
            (&[3, 5, 8], &[3, 1, 8], "binary_vec4_mul"),
            (&[3, 5, 2, 4], &[3, 5, 1, 1], "binary_vec4_mul"),
            (&[2, 3, 5, 8], &[2, 1, 5, 1], "binary"),
            (&[3, 5], &[5], "binary"),
            (&[2, 3, 4], &[2, 1, 4], "binary_vec4_mul"),
        ];
        for (a, b, kernel) in cases {
            let names = crate::testing::recorded_kernels(&[a, b], |t, x| mul(t, x[0], x[1]));
            assert_eq!(names, [kernel], "{a:?} * {b:?}");
            check_op(OpCase::new("mul", &[a, b], |t, x| mul(t, x[0], x[1])));
        }
        check_op(OpCase::new("div", &[&[4, 8], &[8]], |t, x| {
            let d = crate::ops::square(t, x[1]);
            let d = crate::ops::add_scalar(t, d, 0.5);
            div(t, x[0], d)
        }));
    }

    #[test]
    fn div_broadcast() {
        // The divisor is kept away from zero: x / (|y| + 0.5) shaped through ops.
        for (a, b) in [(&[5, 3][..], &[5, 3][..]), (&[2, 3, 4], &[3, 1])] {
            check_op(OpCase::new("div", &[a, b], |t, x| {
                let d = crate::ops::square(t, x[1]);
                let d = crate::ops::add_scalar(t, d, 0.5);
                div(t, x[0], d)
            }));
        }
    }

    #[test]
    fn expand_to_larger_shapes() {
        check_op(OpCase::new("expand", &[&[3, 1, 5]], |t, x| {
            expand(t, x[0], &[2, 3, 4, 5])
        }));
        check_op(OpCase::new("expand", &[&[]], |t, x| expand(t, x[0], &[67])));
    }
}
