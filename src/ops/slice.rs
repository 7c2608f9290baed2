//! Copies along one axis: `slice`, its adjoint `pad_axis`, and `concat`, all through one
//! kernel (`axis_copy`) that sees a tensor as [outer, axis, inner].
//!
//! - `slice(x, axis, start, len)`: y[.., j, ..] = x[.., start + j, ..] for j < len; the shape
//!   of x with `len` along `axis`. dx = pad_axis(g, axis, start, n), n = x's length there.
//! - `pad_axis(x, axis, start, n)`: y of x's shape with `n` along `axis`, y[.., start + j, ..]
//!   = x[.., j, ..] and zero elsewhere. dx = slice(g, axis, start, len).
//!   slice and pad_axis are linear and each other's adjoint, so both differentiate again
//!   without end.
//! - `concat(xs, axis)`: the inputs, equal in shape except along `axis`, laid end to end.
//!   dx_k = slice(g, axis, offset_k, len_k), offset_k the sum of the earlier lengths.
//!
//! concat records one dispatch per input, each writing its own window of the output. The
//! recorder puts a barrier between them (it tracks whole buffers, not ranges); concat is rare
//! in the model (the discriminator's minibatch-stddev channel), so that is not worth a
//! variable-arity kernel.

use super::dispatch_1d;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, CpuTensor, Tensor};
use crate::vk::push::AxisCopyPush;
use crate::vk::{read, write};

/// `x[.., start..start + len, ..]` along `axis`.
pub fn slice(t: &mut Tape, x: Var, axis: usize, start: usize, len: usize) -> Var {
    let shape = t.shape(x).to_vec();
    assert!(axis < shape.len(), "slice axis {axis} of shape {shape:?}");
    assert!(
        start + len <= shape[axis],
        "slice {start}..{} of axis {axis} of shape {shape:?}",
        start + len
    );
    if start == 0 && len == shape[axis] {
        return x;
    }
    let mut out = shape.clone();
    out[axis] = len;
    t.push(
        Window {
            pad: false,
            axis,
            start,
            in_shape: shape,
            out_shape: out.clone(),
        },
        &[x],
        &out,
    )
}

/// `x` placed at `start` along `axis` in zeros of length `size` there.
pub fn pad_axis(t: &mut Tape, x: Var, axis: usize, start: usize, size: usize) -> Var {
    let shape = t.shape(x).to_vec();
    assert!(axis < shape.len(), "pad axis {axis} of shape {shape:?}");
    assert!(
        start + shape[axis] <= size,
        "pad of {shape:?} at {start} along axis {axis} to {size} overflows"
    );
    if start == 0 && shape[axis] == size {
        return x;
    }
    let mut out = shape.clone();
    out[axis] = size;
    t.push(
        Window {
            pad: true,
            axis,
            start,
            in_shape: shape,
            out_shape: out.clone(),
        },
        &[x],
        &out,
    )
}

/// The inputs laid end to end along `axis`; all other dimensions must agree.
pub fn concat(t: &mut Tape, xs: &[Var], axis: usize) -> Var {
    assert!(!xs.is_empty(), "concat of no tensors");
    let first = t.shape(xs[0]).to_vec();
    assert!(axis < first.len(), "concat axis {axis} of shape {first:?}");
    let mut lens = Vec::with_capacity(xs.len());
    for &x in xs {
        let s = t.shape(x);
        let agree = s.len() == first.len()
            && s.iter()
                .zip(&first)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        assert!(
            agree,
            "concat along axis {axis}: shape {s:?} does not match {first:?}"
        );
        lens.push(s[axis]);
    }
    if xs.len() == 1 {
        return xs[0];
    }
    let mut out = first;
    out[axis] = lens.iter().sum();
    t.push(
        Concat {
            axis,
            lens,
            out_shape: out.clone(),
        },
        xs,
        &out,
    )
}

/// (outer, inner) of `shape` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize) {
    (numel(&shape[..axis]), numel(&shape[axis + 1..]))
}

/// One `axis_copy` dispatch over the window [outer, window, inner].
fn record_copy(
    rec: &mut Recording,
    src: &Tensor,
    dst: &Tensor,
    axis: usize,
    window: usize,
    src_shift: i64,
    dst_offset: usize,
) {
    let (outer, inner) = split(dst.shape(), axis);
    let n = outer * window * inner;
    let push = AxisCopyPush {
        n: (n as u32).into(),
        window: (window as u32).into(),
        inner: (inner as u32).into(),
        n_src: (src.shape()[axis] as u32).into(),
        n_dst: (dst.shape()[axis] as u32).into(),
        src_shift: (src_shift as i32).into(),
        dst_offset: (dst_offset as u32).into(),
    };
    let ctx = rec.context();
    dispatch_1d(
        rec,
        &ctx.kernels().axis_copy,
        &[read(src.buffer()), write(dst.buffer())],
        &push,
        n,
    );
}

/// slice (pad false) or pad_axis (pad true).
struct Window {
    pad: bool,
    axis: usize,
    start: usize,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

impl Op for Window {
    fn name(&self) -> &'static str {
        if self.pad {
            "pad_axis"
        } else {
            "slice"
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = inputs[0];
        let (outer, inner) = split(&self.in_shape, self.axis);
        let n_in = self.in_shape[self.axis];
        let n_out = self.out_shape[self.axis];
        let mut y = CpuTensor::full(&self.out_shape, 0.0);
        for o in 0..outer {
            for j in 0..n_out {
                // The input axis index feeding output index j, if any.
                let src = if self.pad {
                    j.checked_sub(self.start).filter(|&s| s < n_in)
                } else {
                    Some(j + self.start)
                };
                if let Some(s) = src {
                    for e in 0..inner {
                        y.data[(o * n_out + j) * inner + e] = x.data[(o * n_in + s) * inner + e];
                    }
                }
            }
        }
        y
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let shift = if self.pad {
            -(self.start as i64)
        } else {
            self.start as i64
        };
        record_copy(
            rec,
            inputs[0],
            out,
            self.axis,
            self.out_shape[self.axis],
            shift,
            0,
        );
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let dx = if self.pad {
            slice(t, g, self.axis, self.start, self.in_shape[self.axis])
        } else {
            pad_axis(t, g, self.axis, self.start, self.in_shape[self.axis])
        };
        vec![Some(dx)]
    }
}

struct Concat {
    axis: usize,
    lens: Vec<usize>,
    out_shape: Vec<usize>,
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (outer, inner) = split(&self.out_shape, self.axis);
        let n_out = self.out_shape[self.axis];
        let mut y = CpuTensor::full(&self.out_shape, 0.0);
        let mut offset = 0;
        for (x, &len) in inputs.iter().zip(&self.lens) {
            for o in 0..outer {
                for j in 0..len {
                    for e in 0..inner {
                        y.data[(o * n_out + offset + j) * inner + e] =
                            x.data[(o * len + j) * inner + e];
                    }
                }
            }
            offset += len;
        }
        y
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let mut offset = 0;
        for (x, &len) in inputs.iter().zip(&self.lens) {
            record_copy(rec, x, out, self.axis, len, 0, offset);
            offset += len;
        }
    }

    fn backward(&self, t: &mut Tape, _inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let mut offset = 0;
        self.lens
            .iter()
            .map(|&len| {
                let dx = slice(t, g, self.axis, offset, len);
                offset += len;
                Some(dx)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn slices_in_the_middle_and_at_the_edges() {
        let shape: &[usize] = &[3, 5, 7];
        for (axis, start, len) in [
            (0, 0, 1),
            (0, 2, 1),
            (1, 0, 2),
            (1, 1, 3),
            (1, 4, 1),
            (2, 0, 7),
            (2, 3, 4),
            (2, 6, 1),
        ] {
            check_op(OpCase::new("slice", &[shape], move |t, x| {
                slice(t, x[0], axis, start, len)
            }));
        }
        // A nonlinear function after the slice makes the second derivative non-trivial.
        check_op(OpCase::new("slice_square", &[&[2, 11, 3, 5]], |t, x| {
            let s = slice(t, x[0], 1, 4, 6);
            ops::square(t, s)
        }));
    }

    #[test]
    fn pads_in_the_middle_and_at_the_edges() {
        let shape: &[usize] = &[3, 5, 7];
        for (axis, start, size) in [(0, 0, 4), (0, 2, 5), (1, 3, 8), (2, 0, 9), (2, 1, 11)] {
            check_op(OpCase::new("pad_axis", &[shape], move |t, x| {
                pad_axis(t, x[0], axis, start, size)
            }));
        }
        check_op(OpCase::new("pad_axis_square", &[&[4, 3, 5]], |t, x| {
            let p = pad_axis(t, x[0], 2, 2, 9);
            ops::square(t, p)
        }));
    }

    #[test]
    fn concat_along_each_axis() {
        check_op(OpCase::new("concat", &[&[2, 3, 4], &[2, 5, 4]], |t, x| {
            concat(t, x, 1)
        }));
        check_op(OpCase::new("concat", &[&[3, 5, 7], &[1, 5, 7]], |t, x| {
            concat(t, x, 0)
        }));
        check_op(OpCase::new(
            "concat",
            &[&[3, 5, 2], &[3, 5, 7], &[3, 5, 1]],
            |t, x| concat(t, x, 2),
        ));
        check_op(OpCase::new(
            "concat_mul",
            &[&[2, 3, 4], &[2, 5, 4], &[2, 8, 4]],
            |t, x| {
                let c = concat(t, &x[..2], 1);
                ops::mul(t, c, x[2])
            },
        ));
    }

    #[test]
    fn full_slices_and_single_concats_are_identities() {
        let mut t = Tape::new();
        let x = t.leaf(&[3, 5], true);
        assert_eq!(slice(&mut t, x, 1, 0, 5), x);
        assert_eq!(pad_axis(&mut t, x, 0, 0, 3), x);
        assert_eq!(concat(&mut t, &[x], 1), x);
    }

    #[test]
    #[should_panic(expected = "does not match")]
    fn concat_of_mismatched_shapes_panics() {
        let mut t = Tape::new();
        let a = t.leaf(&[2, 3, 4], true);
        let b = t.leaf(&[2, 3, 5], true);
        concat(&mut t, &[a, b], 1);
    }
}
