//! The autograd tape. Building a model appends nodes (an op and its inputs) to a `Tape`;
//! nothing runs yet. `grad` appends the backward pass as more nodes made of ordinary ops, so
//! a gradient can be differentiated again (PyTorch's `create_graph=True`). The tape is then
//! either compiled into a replayable device graph (`compile`, in program.rs) or evaluated on
//! the host in f64 by the ops' CPU references (`eval_cpu`), which is what tests compare with.

mod cpu;
mod grad;
mod program;

pub use program::Program;

use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::PushBlock;
use crate::vk::{Binding, Buffer, Context, Kernel, Param, Recorder, VkError};
use std::collections::HashMap;
use std::rc::Rc;

/// A node of a tape. Plain index: cheap to copy, meaningful only with its tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) usize);

impl Var {
    pub fn index(self) -> usize {
        self.0
    }
}

/// A 32-bit value an op reads at run time (a seed, a step counter), changeable between
/// replays of a compiled program without recompiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scalar(pub(crate) usize);

/// An operation on the tape. Implementations live in `crate::ops`, one file each.
pub trait Op {
    fn name(&self) -> &'static str;

    /// The reference: plain loops over f64. It defines the op.
    fn cpu(&self, inputs: &[&CpuTensor], env: &CpuEnv) -> CpuTensor;

    /// Appends the dispatches computing `out` from `inputs`. `out` is fresh memory with
    /// arbitrary contents: the op writes every element.
    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor);

    /// One gradient per input (None where the input gets none), built from ops on `tape` so
    /// that it is itself differentiable. `grad` has the output's shape.
    fn backward(&self, tape: &mut Tape, inputs: &[Var], out: Var, grad: Var) -> Vec<Option<Var>>;

    /// True when the output is input 0's memory under a new shape (reshape, detach): nothing
    /// is recorded, no memory is allocated, and `cpu` is not called.
    fn is_view(&self) -> bool {
        false
    }
}

/// Values a CPU reference may need beyond its inputs.
pub struct CpuEnv<'a> {
    scalars: &'a [u32],
}

impl CpuEnv<'_> {
    pub fn scalar(&self, s: Scalar) -> u32 {
        self.scalars[s.0]
    }
}

/// What an op records into: the recorder, plus the mapping of tape scalars to graph
/// parameters and the program's free buffers.
pub struct Recording<'a> {
    rec: &'a mut Recorder,
    params: &'a [Param],
    /// Buffers no live tensor holds, by size class (the program's memory plan): an op's
    /// scratch comes from here and returns here once the op has recorded, so that scratch
    /// costs memory only while its op runs. The recorder's barriers order the reuse.
    free: &'a mut HashMap<u64, Vec<Buffer>>,
    scratch: Vec<Buffer>,
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        for b in self.scratch.drain(..) {
            self.free.entry(b.bytes()).or_default().push(b);
        }
    }
}

impl<'a> Recording<'a> {
    /// Recording into `rec`, with scratch drawn from and returned to `free`.
    pub(crate) fn new(
        rec: &'a mut Recorder,
        params: &'a [Param],
        free: &'a mut HashMap<u64, Vec<Buffer>>,
    ) -> Self {
        Recording {
            rec,
            params,
            free,
            scratch: Vec::new(),
        }
    }

    pub fn context(&self) -> Context {
        self.rec.context().clone()
    }

    /// The graph parameter that carries a tape scalar, for a push-struct field.
    pub fn param(&self, s: Scalar) -> Param {
        self.params[s.0]
    }

    /// A scratch buffer of `bytes` for `what`; on failure the error (naming `what` and the
    /// size) is deferred to the end of recording and `None` returned, so the op stops
    /// recording instead of panicking.
    pub fn buffer(&mut self, what: &str, bytes: u64) -> Option<Buffer> {
        let pooled = self
            .free
            .get_mut(&Buffer::size_class(bytes))
            .and_then(|l| l.pop());
        let buffer = match pooled {
            Some(b) => b,
            None => {
                let ctx = self.rec.context().clone();
                self.deferred(what, bytes, Buffer::new(&ctx, bytes))?
            }
        };
        self.scratch.push(buffer.clone());
        Some(buffer)
    }

    /// As [`Recording::buffer`], for a tensor of `shape` (its contents undefined).
    pub fn tensor(&mut self, what: &str, shape: &[usize]) -> Option<Tensor> {
        let bytes = shape.iter().fold(4u64, |n, &d| n.saturating_mul(d as u64));
        let buffer = self.buffer(what, bytes)?;
        Some(Tensor::from_buffer(shape, buffer))
    }

    fn deferred<T>(&mut self, what: &str, bytes: u64, made: Result<T, VkError>) -> Option<T> {
        match made {
            Ok(v) => Some(v),
            Err(e) => {
                // The allocator's own message already gives the size; a failed vkCreateBuffer
                // (out of device or host memory) does not.
                let why = match e {
                    VkError::Allocation(why) => format!("{what}: {why}"),
                    other => format!("{what}: {bytes} bytes: {other}"),
                };
                self.rec.fail(VkError::Allocation(why));
                None
            }
        }
    }

    pub fn dispatch<P: PushBlock>(
        &mut self,
        kernel: &Kernel<P>,
        bindings: &[Binding],
        push: &P,
        groups: [u32; 3],
    ) {
        self.rec.dispatch(kernel, bindings, push, groups)
    }
}

pub(crate) struct Node {
    /// None for a leaf.
    pub(crate) op: Option<Rc<dyn Op>>,
    pub(crate) inputs: Vec<Var>,
    pub(crate) shape: Vec<usize>,
    pub(crate) requires_grad: bool,
}

/// The record of a computation.
#[derive(Default)]
pub struct Tape {
    pub(crate) nodes: Vec<Node>,
    pub(crate) scalars: Vec<u32>,
    no_grad_depth: usize,
}

impl Tape {
    pub fn new() -> Self {
        Tape::default()
    }

    /// An input whose value is bound when the tape is compiled or evaluated: a parameter
    /// (`requires_grad` true) or data.
    pub fn leaf(&mut self, shape: &[usize], requires_grad: bool) -> Var {
        self.nodes.push(Node {
            op: None,
            inputs: Vec::new(),
            shape: shape.to_vec(),
            requires_grad,
        });
        Var(self.nodes.len() - 1)
    }

    /// Appends `op` applied to `inputs`, producing a tensor of `shape`. The result requires a
    /// gradient when any input does, unless inside `no_grad`.
    pub fn push(&mut self, op: impl Op + 'static, inputs: &[Var], shape: &[usize]) -> Var {
        let requires_grad = self.would_require_grad(inputs);
        self.nodes.push(Node {
            op: Some(Rc::new(op)),
            inputs: inputs.to_vec(),
            shape: shape.to_vec(),
            requires_grad,
        });
        Var(self.nodes.len() - 1)
    }

    /// A run-time scalar with its initial value.
    pub fn scalar(&mut self, initial: u32) -> Scalar {
        self.scalars.push(initial);
        Scalar(self.scalars.len() - 1)
    }

    /// Sets a scalar's value for `eval_cpu` and for programs compiled afterwards.
    pub fn set_scalar(&mut self, s: Scalar, value: u32) {
        self.scalars[s.0] = value;
    }

    pub fn shape(&self, v: Var) -> &[usize] {
        &self.nodes[v.0].shape
    }

    pub fn numel(&self, v: Var) -> usize {
        self.nodes[v.0].shape.iter().product()
    }

    /// Whether an op pushed now on `inputs` would require a gradient.
    pub fn would_require_grad(&self, inputs: &[Var]) -> bool {
        self.no_grad_depth == 0 && inputs.iter().any(|v| self.nodes[v.0].requires_grad)
    }

    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    pub fn is_leaf(&self, v: Var) -> bool {
        self.nodes[v.0].op.is_none()
    }

    /// The op's name, "leaf" for leaves.
    pub fn op_name(&self, v: Var) -> &'static str {
        self.nodes[v.0].op.as_ref().map_or("leaf", |op| op.name())
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Runs `f` with gradient tracking off: nodes it appends record no backward.
    pub fn no_grad<R>(&mut self, f: impl FnOnce(&mut Tape) -> R) -> R {
        self.no_grad_depth += 1;
        let r = f(self);
        self.no_grad_depth -= 1;
        r
    }

    /// The same values, cut off from the gradient.
    pub fn detach(&mut self, v: Var) -> Var {
        let shape = self.shape(v).to_vec();
        self.no_grad(|t| t.push(Detach, &[v], &shape))
    }
}

/// The identity that stops gradients; a view, so it costs nothing.
struct Detach;

impl Op for Detach {
    fn name(&self) -> &'static str {
        "detach"
    }

    fn cpu(&self, _inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        unreachable!("views are evaluated by the tape")
    }

    fn record(&self, _rec: &mut Recording, _inputs: &[&Tensor], _out: &Tensor) {}

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        vec![None]
    }

    fn is_view(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An op's scratch buffers are its own while it records, then free for the ops after it
    /// (the program's memory plan), so scratch does not add up over a program.
    #[test]
    fn scratch_is_freed_when_its_op_has_recorded() {
        let ctx = crate::testing::context();
        let mut recorder = Recorder::new(&ctx);
        let mut free = HashMap::new();
        let mut rec = Recording::new(&mut recorder, &[], &mut free);
        let a = rec.buffer("a", 1000).unwrap();
        let b = rec.tensor("b", &[250]).unwrap();
        let keys = [a.key(), b.buffer().key()];
        assert_ne!(keys[0], keys[1], "one op's scratch buffers are distinct");
        drop(rec);
        assert_eq!(free.values().map(Vec::len).sum::<usize>(), 2);
        let mut rec = Recording::new(&mut recorder, &[], &mut free);
        let again = rec.buffer("c", 1000).unwrap();
        assert!(
            keys.contains(&again.key()),
            "a later op reuses freed scratch"
        );
    }

    /// An allocation an op cannot get is an error naming what and how much, returned when
    /// recording finishes: never a panic inside `Op::record`.
    #[test]
    fn a_failed_scratch_allocation_is_a_deferred_error_naming_it() {
        let ctx = crate::testing::context();
        let mut recorder = Recorder::new(&ctx);
        let mut free = HashMap::new();
        let mut rec = Recording::new(&mut recorder, &[], &mut free);
        // 16 TiB: more than any heap lavapipe (host memory) or a GPU offers.
        let bytes = 16u64 << 40;
        assert!(rec.buffer("test scratch", bytes).is_none());
        assert!(rec
            .tensor("test partial sums", &[1 << 22, 1 << 20])
            .is_none());
        drop(rec);
        let err = recorder
            .finish()
            .err()
            .expect("the failure is reported")
            .to_string();
        assert!(err.contains("test scratch"), "{err}");
        assert!(err.contains(&bytes.to_string()), "{err}");
        assert!(!err.contains("partial sums"), "the first error wins: {err}");
    }
}
