//! `assign(target, value)`: copies `value` into a device tensor that outlives the program
//! (running state such as the path-length mean). An effect: its node's own output is empty
//! (shape [0]) and exists only so that the node can be named among a program's outputs, which
//! is what makes it recorded. Effects take no part in differentiation.

use super::dispatch_1d;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::CopyPush;
use crate::vk::{read, write};

pub fn assign(t: &mut Tape, target: &Tensor, value: Var) -> Var {
    assert_eq!(
        t.numel(value),
        target.numel(),
        "assign {:?} into {:?}",
        t.shape(value),
        target.shape()
    );
    t.no_grad(|t| {
        t.push(
            Assign {
                target: target.clone(),
            },
            &[value],
            &[0],
        )
    })
}

struct Assign {
    target: Tensor,
}

impl Op for Assign {
    fn name(&self) -> &'static str {
        "assign"
    }

    /// The value assigned; the host-side target is not modified.
    fn cpu(&self, _inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        CpuTensor::new(&[0], Vec::new())
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], _out: &Tensor) {
        let ctx = rec.context();
        let n = self.target.numel();
        dispatch_1d(
            rec,
            &ctx.kernels().copy,
            &[read(inputs[0].buffer()), write(self.target.buffer())],
            &CopyPush {
                n: (n as u32).into(),
            },
            n,
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Recorded under no_grad: an effect is never differentiated.
        vec![None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{context, random};

    #[test]
    fn assign_writes_the_target_after_the_value_is_computed() {
        let ctx = context();
        let mut t = Tape::new();
        let x = t.leaf(&[5, 7], false);
        let y = ops::scale(&mut t, x, 3.0);
        let target = Tensor::zeros(&ctx, &[35]).unwrap();
        let effect = assign(&mut t, &target, y);
        let value = random(&[5, 7], 1);
        let xt = Tensor::from_cpu(&ctx, &value).unwrap();
        let mut program = t.compile(&ctx, &[effect], &[(x, &xt)]).unwrap();
        program.run().unwrap();
        let want: Vec<f32> = value.data.iter().map(|v| (3.0 * v) as f32).collect();
        assert_eq!(target.to_vec().unwrap(), want);
    }
}
