//! Compiling a tape into a device graph: every node the outputs need is recorded once, in tape
//! order; memory of an intermediate is reused by later nodes once its last reader has been
//! recorded (the recorder puts the write-after-read barrier in). The program replays with new
//! leaf contents and scalar values.

use super::{Recording, Scalar, Tape, Var};
use crate::tensor::{numel, Tensor};
use crate::vk::{Buffer, Context, Graph, Param, Recorder, VkError};
use std::collections::HashMap;

/// A compiled tape.
pub struct Program {
    graph: Graph,
    params: Vec<Param>,
    outputs: HashMap<Var, Tensor>,
}

impl Program {
    /// Runs the graph once and waits.
    pub fn run(&mut self) -> Result<(), VkError> {
        self.graph.run()
    }

    pub fn set_scalar(&mut self, s: Scalar, value: u32) {
        self.graph.set_param(self.params[s.0], value);
    }

    /// The device tensor of an output named at compile time.
    pub fn tensor(&self, v: Var) -> &Tensor {
        self.outputs
            .get(&v)
            .unwrap_or_else(|| panic!("node {} is not an output of this program", v.0))
    }

    pub fn read(&self, v: Var) -> Result<Vec<f32>, VkError> {
        self.tensor(v).to_vec()
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// For profiling (`Graph::set_profiling`).
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }
}

impl Tape {
    /// Records everything `outputs` depend on. Every leaf they depend on must be bound in
    /// `leaves` to a device tensor of its shape; the program reads those tensors on every run,
    /// so the host may rewrite them between runs.
    pub fn compile(
        &self,
        ctx: &Context,
        outputs: &[Var],
        leaves: &[(Var, &Tensor)],
    ) -> Result<Program, VkError> {
        let needed = self.ancestors(outputs);
        let mut tensors = self.bind_leaves(&needed, leaves);
        let release_at = self.release_plan(&needed, outputs);
        let end = needed.len();
        let mut recorder = Recorder::new(ctx);
        let params: Vec<Param> = self.scalars.iter().map(|&v| recorder.param(v)).collect();
        let mut free: HashMap<u64, Vec<Buffer>> = HashMap::new();
        let mut buffers: Vec<Option<Buffer>> = vec![None; end];
        for i in (0..end).filter(|&i| needed[i]) {
            let node = &self.nodes[i];
            match &node.op {
                None => {
                    if tensors[i].is_none() {
                        panic!("leaf {i} (shape {:?}) is not bound", node.shape);
                    }
                }
                Some(op) if op.is_view() => {
                    let input = tensors[node.inputs[0].0].as_ref().expect("input recorded");
                    tensors[i] = Some(input.reshaped(&node.shape));
                }
                Some(op) => {
                    let bytes = (numel(&node.shape).max(1) * 4) as u64;
                    let class = Buffer::size_class(bytes);
                    let buffer = match free.get_mut(&class).and_then(|l| l.pop()) {
                        Some(b) => b,
                        None => Buffer::new(ctx, bytes)?,
                    };
                    buffers[i] = Some(buffer.clone());
                    let out = Tensor::from_buffer(&node.shape, buffer);
                    let inputs: Vec<&Tensor> = node
                        .inputs
                        .iter()
                        .map(|v| tensors[v.0].as_ref().expect("inputs precede their node"))
                        .collect();
                    // Dropped once the op has recorded, the recording returns the op's
                    // scratch to `free` for the nodes after it.
                    let mut recording = Recording::new(&mut recorder, &params, &mut free);
                    op.record(&mut recording, &inputs, &out);
                    drop(recording);
                    tensors[i] = Some(out);
                }
            }
            for &s in &release_at[i] {
                if let Some(b) = buffers[s].take() {
                    free.entry(b.bytes()).or_default().push(b);
                }
            }
        }
        let outputs = outputs
            .iter()
            .map(|&v| (v, tensors[v.0].clone().expect("output recorded")))
            .collect();
        Ok(Program {
            graph: recorder.finish()?,
            params,
            outputs,
        })
    }

    /// The bound tensor of each needed leaf, by node (checked against the leaf's shape).
    fn bind_leaves(&self, needed: &[bool], leaves: &[(Var, &Tensor)]) -> Vec<Option<Tensor>> {
        let mut tensors: Vec<Option<Tensor>> = vec![None; needed.len()];
        for &(v, t) in leaves {
            if v.0 < needed.len() && needed[v.0] {
                assert!(self.is_leaf(v), "node {} is bound but is not a leaf", v.0);
                assert_eq!(
                    t.shape(),
                    self.shape(v),
                    "leaf {} bound with another shape",
                    v.0
                );
                tensors[v.0] = Some(t.clone());
            }
        }
        tensors
    }

    /// For each node, the storages whose memory is free once it is recorded. Views share their
    /// input's storage; a storage is free after its last reader, unless an output holds it.
    fn release_plan(&self, needed: &[bool], outputs: &[Var]) -> Vec<Vec<usize>> {
        let end = needed.len();
        let mut storage: Vec<usize> = (0..end).collect();
        for i in 0..end {
            if let Some(op) = &self.nodes[i].op {
                if needed[i] && op.is_view() {
                    storage[i] = storage[self.nodes[i].inputs[0].0];
                }
            }
        }
        let mut last_use = vec![0usize; end];
        for i in (0..end).filter(|&i| needed[i]) {
            last_use[storage[i]] = last_use[storage[i]].max(i);
            for v in &self.nodes[i].inputs {
                last_use[storage[v.0]] = last_use[storage[v.0]].max(i);
            }
        }
        let mut pinned = vec![false; end];
        for v in outputs {
            pinned[storage[v.0]] = true;
        }
        let mut release_at: Vec<Vec<usize>> = vec![Vec::new(); end];
        for s in 0..end {
            let owned = needed[s] && storage[s] == s && !self.is_leaf(Var(s));
            if owned && !pinned[s] {
                release_at[last_use[s]].push(s);
            }
        }
        release_at
    }

    /// Compiles, runs once and reads `outputs` back: for tests and one-off work.
    pub fn eval(
        &self,
        ctx: &Context,
        outputs: &[Var],
        leaves: &[(Var, &Tensor)],
    ) -> Result<Vec<Vec<f32>>, VkError> {
        let mut program = self.compile(ctx, outputs, leaves)?;
        program.run()?;
        outputs.iter().map(|&v| program.read(v)).collect()
    }
}
