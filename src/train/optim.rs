//! The optimizer of one network (or group of networks): global gradient-norm clipping, then
//! Adam, both recorded on the training step's tape so that a step runs with no host round
//! trip. The moments live in device tensors owned here; the step count lives on the host
//! (it is the same for every parameter) and reaches the device as a tape scalar.

use crate::autograd::{Scalar, Tape, Var};
use crate::nn::{Bound, Net, ParamStore};
use crate::ops::{self, Adam};
use crate::tensor::Tensor;
use crate::vk::{Context, VkError};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerConfig {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    /// Maximum global L2 norm of the gradients (PyTorch's clip_grad_norm_).
    pub clip: f32,
}

/// Adam moments for the trainable parameters of some networks.
pub struct Optimizer {
    config: OptimizerConfig,
    names: Vec<String>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps: u32,
}

/// What `Optimizer::append` put on a tape.
pub struct OptimizerGraph {
    /// The update placeholders: list them among the program's outputs.
    pub updates: Vec<Var>,
    /// The moment leaves and their tensors, for `Tape::compile`.
    pub leaves: Vec<(Var, Tensor)>,
    /// The Adam step number (from 1): set it before each run.
    pub step: Scalar,
}

impl Optimizer {
    pub fn new(
        ctx: &Context,
        store: &ParamStore,
        nets: &[Net],
        config: OptimizerConfig,
    ) -> Result<Self, VkError> {
        let mut names = Vec::new();
        let mut m = Vec::new();
        let mut v = Vec::new();
        for &net in nets {
            for (spec, _) in store.trainable(net) {
                names.push(spec.name.clone());
                m.push(Tensor::zeros(ctx, &spec.shape)?);
                v.push(Tensor::zeros(ctx, &spec.shape)?);
            }
        }
        Ok(Optimizer {
            config,
            names,
            m,
            v,
            steps: 0,
        })
    }

    /// Appends clipping and the Adam update of every parameter to `t`. `grads` are
    /// (parameter name, gradient) for exactly this optimizer's parameters, any order.
    pub fn append(&self, t: &mut Tape, params: &Bound, grads: &[(String, Var)]) -> OptimizerGraph {
        let ordered = self.order(grads);
        // The clipping factor rides Adam's gradient loads (adam_step_scaled), one dispatch a
        // parameter fewer than scaling each gradient first, with the same bits.
        let (coef, _norm_before_clipping) = ops::clip_coefficient(t, &ordered, self.config.clip);
        let step = t.scalar(1);
        let adam = Adam {
            lr: self.config.lr,
            betas: self.config.betas,
            eps: self.config.eps,
        };
        let mut updates = Vec::new();
        let mut leaves = Vec::new();
        for (k, name) in self.names.iter().enumerate() {
            let shape = self.m[k].shape().to_vec();
            let m = t.leaf(&shape, false);
            let v = t.leaf(&shape, false);
            leaves.push((m, self.m[k].clone()));
            leaves.push((v, self.v[k].clone()));
            updates.push(ops::adam_step_scaled(
                t,
                [params.get(name), m, v],
                (ordered[k], coef),
                adam,
                step,
            ));
        }
        OptimizerGraph {
            updates,
            leaves,
            step,
        }
    }

    /// The optimized parameters' names, in the optimizer's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `grads` (parameter name, gradient), exactly one per optimized parameter in any order,
    /// in the optimizer's order.
    pub fn order(&self, grads: &[(String, Var)]) -> Vec<Var> {
        assert_eq!(
            grads.len(),
            self.names.len(),
            "one gradient per optimized parameter"
        );
        self.names
            .iter()
            .map(|n| {
                grads
                    .iter()
                    .find(|(g, _)| g == n)
                    .unwrap_or_else(|| panic!("no gradient for `{n}`"))
                    .1
            })
            .collect()
    }

    /// Counts one more step and returns its number (from 1), for `OptimizerGraph::step`.
    pub fn advance(&mut self) -> u32 {
        self.steps += 1;
        self.steps
    }

    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// (parameter name, first moment, second moment), for checkpoints.
    pub fn state(&self) -> impl Iterator<Item = (&str, &Tensor, &Tensor)> {
        self.names
            .iter()
            .zip(&self.m)
            .zip(&self.v)
            .map(|((n, m), v)| (n.as_str(), m, v))
    }

    /// Restores the step count (moments are written through `state`).
    pub fn set_steps(&mut self, steps: u32) {
        self.steps = steps;
    }
}
