//! The parameters of the three networks under the reference's `state_dict` names (prefixed
//! `mapping_network.`, `generator.`, `discriminator.`), their initial values, and their
//! safetensors form, which is the PyTorch reference's: a checkpoint it writes loads here and
//! one written here loads there. Files are read by [`crate::persist::checkpoint`].

use super::config::ModelConfig;
use crate::autograd::{Tape, Var};
use crate::persist::checkpoint::{Checkpoint, CheckpointError};
use crate::tensor::{numel, Tensor};
use crate::vk::{Context, VkError};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, 1) (every weight: the equalized-lr constant is applied at use).
    Normal,
    Constant(f32),
    /// The fixed [1,2,1]x[1,2,1]/16 smoothing kernel (a buffer, not trained).
    SmoothKernel,
}

#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    pub trainable: bool,
}

/// Which network a parameter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Net {
    Mapping,
    Generator,
    Discriminator,
}

impl Net {
    pub fn prefix(self) -> &'static str {
        match self {
            Net::Mapping => "mapping_network.",
            Net::Generator => "generator.",
            Net::Discriminator => "discriminator.",
        }
    }

    pub fn of(name: &str) -> Option<Net> {
        [Net::Mapping, Net::Generator, Net::Discriminator]
            .into_iter()
            .find(|n| name.starts_with(n.prefix()))
    }
}

struct Specs(Vec<ParamSpec>);

impl Specs {
    fn add(&mut self, name: String, shape: &[usize], init: Init) {
        self.0.push(ParamSpec {
            name,
            shape: shape.to_vec(),
            init,
            trainable: init != Init::SmoothKernel,
        });
    }

    fn linear(&mut self, prefix: &str, inp: usize, out: usize, bias: f32) {
        self.add(format!("{prefix}.weight.weight"), &[out, inp], Init::Normal);
        self.add(format!("{prefix}.bias"), &[out], Init::Constant(bias));
    }

    fn conv(&mut self, prefix: &str, inp: usize, out: usize, k: usize) {
        self.add(
            format!("{prefix}.weight.weight"),
            &[out, inp, k, k],
            Init::Normal,
        );
        self.add(format!("{prefix}.bias"), &[out], Init::Constant(1.0));
    }

    fn smooth(&mut self, prefix: &str) {
        self.add(
            format!("{prefix}.smooth.kernel"),
            &[1, 1, 3, 3],
            Init::SmoothKernel,
        );
    }

    fn style_block(&mut self, prefix: &str, d: usize, inp: usize, out: usize) {
        self.linear(&format!("{prefix}.to_style"), d, inp, 1.0);
        self.add(
            format!("{prefix}.conv.weight.weight"),
            &[out, inp, 3, 3],
            Init::Normal,
        );
        self.add(format!("{prefix}.scale_noise"), &[1], Init::Constant(0.0));
        self.add(format!("{prefix}.bias"), &[out], Init::Constant(0.0));
    }

    fn rgb_layer(&mut self, prefix: &str, d: usize, features: usize) {
        self.linear(&format!("{prefix}.to_style"), d, features, 1.0);
        self.add(
            format!("{prefix}.conv.weight.weight"),
            &[3, features, 1, 1],
            Init::Normal,
        );
        self.add(format!("{prefix}.bias"), &[3], Init::Constant(0.0));
    }
}

/// Every parameter and buffer of the three networks, in `state_dict` order.
pub fn parameter_specs(cfg: &ModelConfig) -> Vec<ParamSpec> {
    let mut s = Specs(Vec::new());
    let d = cfg.d_latent;
    for i in 0..cfg.mapping_layers {
        s.linear(&format!("mapping_network.net.{}", 2 * i), d, d, 0.0);
    }
    let gf = cfg.generator_features();
    s.add(
        "generator.initial_constant".into(),
        &[1, gf[0], 4, 4],
        Init::Normal,
    );
    s.style_block("generator.style_block", d, gf[0], gf[0]);
    s.rgb_layer("generator.to_rgb", d, gf[0]);
    for i in 1..gf.len() {
        let p = format!("generator.blocks.{}", i - 1);
        s.style_block(&format!("{p}.style_block1"), d, gf[i - 1], gf[i]);
        s.style_block(&format!("{p}.style_block2"), d, gf[i], gf[i]);
        s.rgb_layer(&format!("{p}.to_rgb"), d, gf[i]);
    }
    s.smooth("generator.up_sample");
    let df = cfg.discriminator_features();
    s.conv("discriminator.from_rgb.0", 3, df[0], 1);
    for i in 0..df.len() - 1 {
        let p = format!("discriminator.blocks.{i}");
        s.smooth(&format!("{p}.residual.0"));
        s.conv(&format!("{p}.residual.1"), df[i], df[i + 1], 1);
        s.conv(&format!("{p}.block.0"), df[i], df[i], 3);
        s.conv(&format!("{p}.block.2"), df[i], df[i + 1], 3);
        s.smooth(&format!("{p}.down_sample"));
    }
    let f = df[df.len() - 1] + 1;
    s.conv("discriminator.conv", f, f, 3);
    s.linear("discriminator.final", 4 * f, 1, 0.0);
    s.0
}

/// Problems loading parameters: the file (which names the tensor) or the device.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error(transparent)]
    File(#[from] CheckpointError),
    #[error(transparent)]
    Device(#[from] VkError),
}

/// Device tensors for every parameter of a configuration.
pub struct ParamStore {
    specs: Vec<ParamSpec>,
    tensors: Vec<Tensor>,
    index: HashMap<String, usize>,
}

fn smooth_kernel() -> Vec<f32> {
    [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]
        .iter()
        .map(|v| v / 16.0)
        .collect()
}

impl ParamStore {
    /// Fresh parameters: weights N(0,1) from `seed`, biases at their constants.
    pub fn init(ctx: &Context, cfg: &ModelConfig, seed: u64) -> Result<Self, VkError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let specs = parameter_specs(cfg);
        let mut tensors = Vec::with_capacity(specs.len());
        for spec in &specs {
            let n = numel(&spec.shape);
            let data: Vec<f32> = match spec.init {
                Init::Normal => (0..n).map(|_| standard_normal(&mut rng)).collect(),
                Init::Constant(c) => vec![c; n],
                Init::SmoothKernel => smooth_kernel(),
            };
            tensors.push(Tensor::from_f32(ctx, &spec.shape, &data)?);
        }
        Ok(Self::from_parts(specs, tensors))
    }

    /// Parameters whose values `values` gives per spec (e.g. from a checkpoint).
    pub fn from_fn<E: From<VkError>>(
        ctx: &Context,
        cfg: &ModelConfig,
        mut values: impl FnMut(&ParamSpec) -> Result<Vec<f32>, E>,
    ) -> Result<Self, E> {
        let specs = parameter_specs(cfg);
        let mut tensors = Vec::with_capacity(specs.len());
        for spec in &specs {
            let data = values(spec)?;
            tensors.push(Tensor::from_f32(ctx, &spec.shape, &data)?);
        }
        Ok(Self::from_parts(specs, tensors))
    }

    fn from_parts(specs: Vec<ParamSpec>, tensors: Vec<Tensor>) -> Self {
        let index = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        ParamStore {
            specs,
            tensors,
            index,
        }
    }

    /// Parameters from a safetensors file read by [`crate::persist::checkpoint`], stored under
    /// `prefix` followed by their names (e.g. `"param."` in golden files).
    pub fn from_checkpoint(
        ctx: &Context,
        cfg: &ModelConfig,
        file: &Checkpoint,
        prefix: &str,
    ) -> Result<Self, ParamError> {
        Self::from_fn(ctx, cfg, |spec| -> Result<Vec<f32>, ParamError> {
            let name = format!("{prefix}{}", spec.name);
            Ok(file.parameter(&name, &spec.shape)?.to_vec())
        })
    }

    /// Overwrites every parameter of `net` (or all nets) from `file`, names under `prefix`.
    /// Buffers (the smoothing kernels) are only read when `include_buffers`.
    pub fn overwrite_from(
        &self,
        file: &Checkpoint,
        prefix: &str,
        net: Option<Net>,
        include_buffers: bool,
    ) -> Result<(), ParamError> {
        for (spec, tensor) in self.specs.iter().zip(&self.tensors) {
            if net.is_some_and(|n| Net::of(&spec.name) != Some(n)) {
                continue;
            }
            if !spec.trainable && !include_buffers {
                continue;
            }
            let name = format!("{prefix}{}", spec.name);
            tensor.write(file.parameter(&name, &spec.shape)?)?;
        }
        Ok(())
    }

    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    pub fn get(&self, name: &str) -> &Tensor {
        &self.tensors[*self
            .index
            .get(name)
            .unwrap_or_else(|| panic!("no parameter `{name}`"))]
    }

    /// Trainable parameters of `net`, in order.
    pub fn trainable(&self, net: Net) -> Vec<(&ParamSpec, &Tensor)> {
        self.specs
            .iter()
            .zip(&self.tensors)
            .filter(|(s, _)| s.trainable && Net::of(&s.name) == Some(net))
            .collect()
    }

    /// Every parameter and buffer with its values, for saving.
    pub fn to_host(&self) -> Result<Vec<HostParam>, VkError> {
        self.specs
            .iter()
            .zip(&self.tensors)
            .map(|(s, t)| {
                Ok(HostParam {
                    name: s.name.clone(),
                    shape: s.shape.clone(),
                    data: t.to_vec()?,
                })
            })
            .collect()
    }

    /// Leaves on `tape` for the parameters of `nets`: trainable ones require gradients when
    /// `train` is set. Buffers are not bound (the smoothing kernel is built into the shaders).
    pub fn bind(&self, tape: &mut Tape, nets: &[Net], train: bool) -> Bound {
        let mut vars = HashMap::new();
        let mut leaves = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let net = Net::of(&spec.name).expect("every name has a net prefix");
            if !spec.trainable || !nets.contains(&net) {
                continue;
            }
            let v = tape.leaf(&spec.shape, train);
            vars.insert(spec.name.clone(), v);
            leaves.push((v, i));
        }
        Bound { vars, leaves }
    }

    /// Device bindings of `bound`'s leaves, for `Tape::compile`.
    pub fn bindings<'a>(&'a self, bound: &Bound) -> Vec<(Var, &'a Tensor)> {
        bound
            .leaves
            .iter()
            .map(|&(v, i)| (v, &self.tensors[i]))
            .collect()
    }
}

/// A parameter's values on the host.
pub struct HostParam {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The leaves one tape holds for the parameters.
pub struct Bound {
    vars: HashMap<String, Var>,
    leaves: Vec<(Var, usize)>,
}

impl Bound {
    /// Both sets of leaves (bound on the same tape, for disjoint nets).
    pub fn merged(mut self, other: Bound) -> Bound {
        self.vars.extend(other.vars);
        self.leaves.extend(other.leaves);
        self.leaves.sort_by_key(|&(_, i)| i);
        self
    }

    /// The leaf of a parameter by full name.
    pub fn get(&self, name: &str) -> Var {
        *self
            .vars
            .get(name)
            .unwrap_or_else(|| panic!("parameter `{name}` is not bound on this tape"))
    }

    /// (name, leaf) of every bound parameter whose name starts with `prefix`, in order.
    pub fn under(&self, prefix: &str, store: &ParamStore) -> Vec<(String, Var)> {
        self.leaves
            .iter()
            .filter(|(_, i)| store.specs[*i].name.starts_with(prefix))
            .map(|&(v, i)| (store.specs[i].name.clone(), v))
            .collect()
    }
}

/// Box-Muller on the generator's uniform draws.
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
