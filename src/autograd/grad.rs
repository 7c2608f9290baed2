//! Reverse-mode differentiation over the tape. The backward pass is appended to the same tape
//! as ordinary ops; with `create_graph` those nodes track gradients themselves, so the result
//! can be differentiated again (R1 and the path-length penalty need this).

use super::{Tape, Var};
use crate::ops;

impl Tape {
    /// Gradients of `sum_k <outputs[k], grad_outputs[k]>` with respect to each of `inputs`
    /// (`grad_outputs` default to ones). An input the outputs do not depend on gets `None`.
    /// With `create_graph` false the gradient nodes are cut off from further differentiation.
    pub fn grad(
        &mut self,
        outputs: &[Var],
        inputs: &[Var],
        grad_outputs: Option<&[Var]>,
        create_graph: bool,
    ) -> Vec<Option<Var>> {
        if let Some(g) = grad_outputs {
            assert_eq!(g.len(), outputs.len(), "one grad_output per output");
        }
        if create_graph {
            self.backward_pass(outputs, inputs, grad_outputs)
        } else {
            self.no_grad(|t| t.backward_pass(outputs, inputs, grad_outputs))
        }
    }

    fn backward_pass(
        &mut self,
        outputs: &[Var],
        inputs: &[Var],
        grad_outputs: Option<&[Var]>,
    ) -> Vec<Option<Var>> {
        let end = outputs.iter().map(|v| v.0 + 1).max().unwrap_or(0);
        // A node matters when it requires a gradient and leads to one of the inputs.
        let mut leads = vec![false; end];
        for &v in inputs {
            if v.0 < end {
                leads[v.0] = true;
            }
        }
        for i in 0..end {
            if !leads[i] && self.nodes[i].requires_grad {
                leads[i] = self.nodes[i].inputs.iter().any(|v| leads[v.0]);
            }
        }
        let mut grads: Vec<Option<Var>> = vec![None; end];
        for (k, &out) in outputs.iter().enumerate() {
            if !leads[out.0] {
                continue;
            }
            let seed = match grad_outputs {
                Some(g) => {
                    assert_eq!(self.shape(g[k]), self.shape(out), "grad_output shape");
                    g[k]
                }
                None => {
                    let shape = self.shape(out).to_vec();
                    ops::full(self, &shape, 1.0)
                }
            };
            accumulate(self, &mut grads, out, seed);
        }
        for i in (0..end).rev() {
            let Some(g) = grads[i] else { continue };
            let Some(op) = self.nodes[i].op.clone() else {
                continue;
            };
            if !leads[i] || !self.nodes[i].requires_grad {
                continue;
            }
            let node_inputs = self.nodes[i].inputs.clone();
            let input_grads = op.backward(self, &node_inputs, Var(i), g);
            assert_eq!(
                input_grads.len(),
                node_inputs.len(),
                "{}: backward returned the wrong number of gradients",
                op.name()
            );
            for (&input, input_grad) in node_inputs.iter().zip(input_grads) {
                if let Some(ig) = input_grad {
                    if leads[input.0] {
                        assert_eq!(
                            self.shape(ig),
                            self.shape(input),
                            "{}: gradient shape differs from its input's",
                            op.name()
                        );
                        accumulate(self, &mut grads, input, ig);
                    }
                }
            }
        }
        inputs
            .iter()
            .map(|v| grads.get(v.0).copied().flatten())
            .collect()
    }
}

fn accumulate(tape: &mut Tape, grads: &mut [Option<Var>], at: Var, g: Var) {
    grads[at.0] = Some(match grads[at.0] {
        Some(prev) => ops::add(tape, prev, g),
        None => g,
    });
}
