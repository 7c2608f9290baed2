//! `reshape(x, shape)`: the same elements in row-major order under a new shape of the same
//! size. A view: no kernel, no memory. Backward: reshape the gradient back.

use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{numel, CpuTensor, Tensor};

pub fn reshape(t: &mut Tape, x: Var, shape: &[usize]) -> Var {
    assert_eq!(
        numel(shape),
        t.numel(x),
        "reshape {:?} -> {shape:?} changes the element count",
        t.shape(x)
    );
    if t.shape(x) == shape {
        return x;
    }
    t.push(Reshape, &[x], shape)
}

struct Reshape;

impl Op for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }

    fn cpu(&self, _inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        unreachable!("views are evaluated by the tape")
    }

    fn record(&self, _rec: &mut Recording, _inputs: &[&Tensor], _out: &Tensor) {}

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, grad: Var) -> Vec<Option<Var>> {
        let shape = t.shape(inputs[0]).to_vec();
        vec![Some(reshape(t, grad, &shape))]
    }

    fn is_view(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::ops;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn reshape_round_trips_with_gradients() {
        check_op(OpCase::new("reshape", &[&[3, 4, 5]], |t, x| {
            let y = ops::reshape(t, x[0], &[12, 5]);
            ops::square(t, y)
        }));
    }
}
