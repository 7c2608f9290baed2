//! `full(shape, c)`: every element equal to c. No inputs, so no gradient.

use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::FillPush;
use crate::vk::write;

pub fn full(t: &mut Tape, shape: &[usize], value: f32) -> Var {
    t.push(
        Fill {
            value,
            shape: shape.to_vec(),
        },
        &[],
        shape,
    )
}

pub fn zeros(t: &mut Tape, shape: &[usize]) -> Var {
    full(t, shape, 0.0)
}

pub fn ones(t: &mut Tape, shape: &[usize]) -> Var {
    full(t, shape, 1.0)
}

struct Fill {
    value: f32,
    shape: Vec<usize>,
}

impl Op for Fill {
    fn name(&self) -> &'static str {
        "fill"
    }

    fn cpu(&self, _inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        CpuTensor::full(&self.shape, self.value as f64)
    }

    fn record(&self, rec: &mut Recording, _inputs: &[&Tensor], out: &Tensor) {
        let ctx = rec.context();
        let n = out.numel();
        super::dispatch_1d(
            rec,
            &ctx.kernels().fill,
            &[write(out.buffer())],
            &FillPush {
                n: (n as u32).into(),
                value: self.value.into(),
            },
            n,
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{check_op, OpCase};

    #[test]
    fn fill_matches_cpu() {
        check_op(OpCase::new("fill", &[], |t, _| {
            super::full(t, &[3, 5, 7], -1.25)
        }));
    }
}
