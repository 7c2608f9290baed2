//! Evaluating a tape on the host with the ops' f64 references.

use super::{CpuEnv, Tape, Var};
use crate::tensor::CpuTensor;

impl Tape {
    /// Values of `outputs`, computed on the host from the leaf values in `leaves`.
    pub fn eval_cpu(&self, outputs: &[Var], leaves: &[(Var, &CpuTensor)]) -> Vec<CpuTensor> {
        let needed = self.ancestors(outputs);
        let mut values: Vec<Option<CpuTensor>> = vec![None; needed.len()];
        for &(v, t) in leaves {
            if v.0 < needed.len() {
                assert_eq!(
                    t.shape, self.nodes[v.0].shape,
                    "leaf {} bound with another shape",
                    v.0
                );
                values[v.0] = Some(t.clone());
            }
        }
        let env = CpuEnv {
            scalars: &self.scalars,
        };
        for i in 0..needed.len() {
            if !needed[i] || values[i].is_some() {
                continue;
            }
            let node = &self.nodes[i];
            let op = node
                .op
                .as_ref()
                .unwrap_or_else(|| panic!("leaf {i} has no value"));
            let inputs: Vec<&CpuTensor> = node
                .inputs
                .iter()
                .map(|v| values[v.0].as_ref().expect("inputs precede their node"))
                .collect();
            let out = if op.is_view() {
                CpuTensor::new(&node.shape, inputs[0].data.clone())
            } else {
                op.cpu(&inputs, &env)
            };
            assert_eq!(out.shape, node.shape, "{}: CPU output shape", op.name());
            values[i] = Some(out);
        }
        outputs
            .iter()
            .map(|v| values[v.0].clone().expect("output evaluated"))
            .collect()
    }

    /// Marks every node `outputs` depend on; the vector is as long as the largest output + 1.
    pub(crate) fn ancestors(&self, outputs: &[Var]) -> Vec<bool> {
        let end = outputs.iter().map(|v| v.0 + 1).max().unwrap_or(0);
        let mut needed = vec![false; end];
        for v in outputs {
            needed[v.0] = true;
        }
        for i in (0..end).rev() {
            if needed[i] {
                for v in &self.nodes[i].inputs {
                    needed[v.0] = true;
                }
            }
        }
        needed
    }
}
