//! Everything a run carries from step to step, on the device: the three networks, the EMA
//! copy of the mapping network and generator, the optimizers' moments, the path-length
//! running mean and the running mean of w. `to_checkpoint`/`from_checkpoint` make it exact
//! across a restart (float32 values bit for bit, counters as integers).
//!
//! Checkpoint names: the networks under the reference's `state_dict` names (so PyTorch loads
//! them), `ema.<name>` for the moving average, `adam.<name>.m` / `.v`, `plp.exp_sum_a`,
//! `w_avg`; metadata `config` (JSON), `step`, `plp_steps`, `adam_steps.{d,g,m}`, and ADA's
//! `ada.p`, `ada.sign_sum`, `ada.sign_count`, `ada.last_rt`.
//!
//! A run can also start from another's weights (`init_from`, fine-tuning): the networks, the
//! moving average and w_avg from the checkpoint, everything else as a fresh run has it.

use super::augment::AdaState;
use super::config::TrainConfig;
use super::optim::{Optimizer, OptimizerConfig};
use super::sample::estimate_w_avg;
use crate::dist::Fingerprint;
use crate::nn::{parameter_specs, ModelConfig, Net, ParamSpec, ParamStore};
use crate::persist::checkpoint::{Checkpoint, CheckpointError, TensorData};
use crate::tensor::Tensor;
use crate::vk::{Context, VkError};

/// ADA's state from a checkpoint; one from before ADA existed has none (p = 0).
fn ada_of(ck: &Checkpoint) -> Result<AdaState, StateError> {
    if ck.meta("ada.p").is_err() {
        return Ok(AdaState::default());
    }
    Ok(AdaState {
        p: ck.meta_parse("ada.p")?,
        sign_sum: ck.meta_parse("ada.sign_sum")?,
        sign_count: ck.meta_parse("ada.sign_count")?,
        last_rt: ck.meta_parse("ada.last_rt")?,
    })
}

/// Problems restoring a run.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Device(#[from] VkError),
    #[error("the checkpoint's config is unreadable: {0}")]
    Config(String),
}

pub struct TrainState {
    pub cfg: TrainConfig,
    pub params: ParamStore,
    /// The moving average of the mapping network and generator (its discriminator part is
    /// unused).
    pub ema: ParamStore,
    pub opt_d: Optimizer,
    pub opt_g: Optimizer,
    pub opt_m: Optimizer,
    /// [1] the path-length running sum.
    pub plp_exp_sum_a: Tensor,
    pub plp_steps: u32,
    /// [d_latent] the running mean of w (for the truncation trick).
    pub w_avg: Tensor,
    /// The next step to run (from 0).
    pub step: u64,
    /// ADA's probability and statistic (unused without ADA).
    pub ada: AdaState,
}

fn optimizers(
    ctx: &Context,
    params: &ParamStore,
    cfg: &TrainConfig,
) -> Result<[Optimizer; 3], VkError> {
    let oc = |lr| OptimizerConfig {
        lr,
        betas: cfg.betas,
        eps: cfg.adam_eps,
        clip: cfg.clip,
    };
    Ok([
        Optimizer::new(ctx, params, &[Net::Discriminator], oc(cfg.lr))?,
        Optimizer::new(ctx, params, &[Net::Generator], oc(cfg.lr))?,
        Optimizer::new(ctx, params, &[Net::Mapping], oc(cfg.mapping_lr))?,
    ])
}

/// Whether a checkpoint carries a moving average of its generator (vkgan's do; a PyTorch
/// reference state dict does not).
pub fn has_ema(ck: &Checkpoint) -> bool {
    ck.tensors.contains_key("ema.generator.initial_constant")
}

/// The tensors of a checkpoint a new run's parameter `spec` starts from: (its weights, its
/// moving average). The average is the checkpoint's own for the mapping network and
/// generator when it has one (`ema`), else a copy of the weights (and always for the
/// discriminator and the fixed buffers, whose average is unused).
fn init_names(spec: &ParamSpec, ema: bool) -> (String, String) {
    let averaged = ema && Net::of(&spec.name) != Some(Net::Discriminator) && spec.trainable;
    let average = if averaged {
        format!("ema.{}", spec.name)
    } else {
        spec.name.clone()
    };
    (spec.name.clone(), average)
}

/// A hash of a checkpoint's tensors (names, shapes, bits) and metadata but its settings
/// (`config`, which names paths that may differ between machines): equal on every rank of a
/// data-parallel run while the ranks are in lock-step.
pub fn state_fingerprint(ck: &Checkpoint) -> u64 {
    let mut h = Fingerprint::default();
    for (name, t) in &ck.tensors {
        h = h.bytes(name.as_bytes());
        for &d in &t.shape {
            h = h.bytes(&(d as u64).to_le_bytes());
        }
        h = match &t.data {
            TensorData::F32(v) => h.f32s(v),
            TensorData::U32(v) => v.iter().fold(h, |h, x| h.bytes(&x.to_le_bytes())),
            TensorData::U64(v) => v.iter().fold(h, |h, x| h.bytes(&x.to_le_bytes())),
        };
    }
    for (k, v) in ck.metadata.iter().filter(|(k, _)| k.as_str() != "config") {
        h = h.bytes(k.as_bytes()).bytes(b"=").bytes(v.as_bytes());
    }
    h.value()
}

impl TrainState {
    /// A fresh run: parameters initialised from the seed, the EMA a copy of them.
    pub fn new(ctx: &Context, cfg: &TrainConfig) -> Result<Self, VkError> {
        let params = ParamStore::init(ctx, &cfg.model, cfg.seed)?;
        let host = params.to_host()?;
        let ema = ParamStore::from_fn(ctx, &cfg.model, |spec| {
            Ok::<_, VkError>(
                host.iter()
                    .find(|h| h.name == spec.name)
                    .unwrap()
                    .data
                    .clone(),
            )
        })?;
        let [opt_d, opt_g, opt_m] = optimizers(ctx, &params, cfg)?;
        Ok(TrainState {
            cfg: cfg.clone(),
            params,
            ema,
            opt_d,
            opt_g,
            opt_m,
            plp_exp_sum_a: Tensor::zeros(ctx, &[1])?,
            plp_steps: 0,
            w_avg: Tensor::zeros(ctx, &[cfg.model.d_latent])?,
            step: 0,
            ada: AdaState::default(),
        })
    }

    /// Checks on the host, before anything is allocated, that `ck` holds every tensor
    /// [`TrainState::init_from`] reads for a model of `model`'s sizes, in their shapes: the
    /// error names the first that is missing or of another shape.
    pub fn check_init(ck: &Checkpoint, model: &ModelConfig) -> Result<(), CheckpointError> {
        let ema = has_ema(ck);
        for spec in parameter_specs(model) {
            let (weights, average) = init_names(&spec, ema);
            ck.parameter(&weights, &spec.shape)?;
            ck.parameter(&average, &spec.shape)?;
        }
        if ck.tensors.contains_key("w_avg") {
            ck.f32_shaped("w_avg", &[model.d_latent])?;
        }
        Ok(())
    }

    /// A new run of `cfg` (whose model must have `ck`'s sizes) from the weights of `ck`: a
    /// vkgan checkpoint or a PyTorch reference state dict. The three networks are the
    /// checkpoint's; the moving average is its own when it has one (as NVlabs' fine-tuning
    /// loads G_ema with G and D), else a copy of the generator; w_avg is its running mean, or
    /// estimated from 4096 latents when it has none. The optimizers' moments and step counts,
    /// the path-length mean and the step start at zero, as in a fresh run: only the weights
    /// carry over.
    pub fn init_from(
        ctx: &Context,
        cfg: &TrainConfig,
        ck: &Checkpoint,
    ) -> Result<Self, StateError> {
        let ema = has_ema(ck);
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, StateError> {
            Ok(ck.parameter(name, shape)?.to_vec())
        };
        let params =
            ParamStore::from_fn(ctx, &cfg.model, |s| read(&init_names(s, ema).0, &s.shape))?;
        let average =
            ParamStore::from_fn(ctx, &cfg.model, |s| read(&init_names(s, ema).1, &s.shape))?;
        let d = cfg.model.d_latent;
        let w_avg = if ck.tensors.contains_key("w_avg") {
            Tensor::from_f32(ctx, &[d], ck.f32_shaped("w_avg", &[d])?)?
        } else {
            estimate_w_avg(ctx, &average, &cfg.model)?
        };
        let [opt_d, opt_g, opt_m] = optimizers(ctx, &params, cfg)?;
        Ok(TrainState {
            cfg: cfg.clone(),
            params,
            ema: average,
            opt_d,
            opt_g,
            opt_m,
            plp_exp_sum_a: Tensor::zeros(ctx, &[1])?,
            plp_steps: 0,
            w_avg,
            step: 0,
            // A new run adapts its own augmentation from p = 0.
            ada: AdaState::default(),
        })
    }

    pub fn to_checkpoint(&self) -> Result<Checkpoint, StateError> {
        let mut ck = Checkpoint::new();
        let f32s = |ck: &mut Checkpoint, name: String, t: &Tensor| -> Result<(), StateError> {
            ck.insert(&name, t.shape(), TensorData::F32(t.to_vec()?))?;
            Ok(())
        };
        for p in self.params.to_host()? {
            ck.insert(&p.name, &p.shape, TensorData::F32(p.data))?;
        }
        for p in self.ema.to_host()? {
            if Net::of(&p.name) != Some(Net::Discriminator) && !p.name.ends_with(".kernel") {
                ck.insert(format!("ema.{}", p.name), &p.shape, TensorData::F32(p.data))?;
            }
        }
        for opt in [&self.opt_d, &self.opt_g, &self.opt_m] {
            for (name, m, v) in opt.state() {
                f32s(&mut ck, format!("adam.{name}.m"), m)?;
                f32s(&mut ck, format!("adam.{name}.v"), v)?;
            }
        }
        f32s(&mut ck, "plp.exp_sum_a".into(), &self.plp_exp_sum_a)?;
        f32s(&mut ck, "w_avg".into(), &self.w_avg)?;
        let config = serde_json::to_string(&self.cfg).expect("config serialises");
        ck.set_meta("config", config);
        ck.set_meta("step", self.step);
        ck.set_meta("plp_steps", self.plp_steps);
        ck.set_meta("adam_steps.d", self.opt_d.steps());
        ck.set_meta("adam_steps.g", self.opt_g.steps());
        ck.set_meta("adam_steps.m", self.opt_m.steps());
        ck.set_meta("seed", self.cfg.seed);
        // Rust prints floats as the shortest text that reads back to the same bits.
        ck.set_meta("ada.p", self.ada.p);
        ck.set_meta("ada.sign_sum", self.ada.sign_sum);
        ck.set_meta("ada.sign_count", self.ada.sign_count);
        ck.set_meta("ada.last_rt", self.ada.last_rt);
        Ok(ck)
    }

    /// [`state_fingerprint`] of this state's checkpoint.
    pub fn fingerprint(&self) -> Result<u64, StateError> {
        Ok(state_fingerprint(&self.to_checkpoint()?))
    }

    /// The run's configuration as stored in a checkpoint.
    pub fn config_of(ck: &Checkpoint) -> Result<TrainConfig, StateError> {
        let json = ck.meta("config")?;
        serde_json::from_str(json).map_err(|e| StateError::Config(e.to_string()))
    }

    pub fn from_checkpoint(ctx: &Context, ck: &Checkpoint) -> Result<Self, StateError> {
        let cfg = Self::config_of(ck)?;
        cfg.validate().map_err(StateError::Config)?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, StateError> {
            Ok(ck.f32_shaped(name, shape)?.to_vec())
        };
        let params = ParamStore::from_fn(ctx, &cfg.model, |s| read(&s.name, &s.shape))?;
        let ema = ParamStore::from_fn(ctx, &cfg.model, |s| {
            if Net::of(&s.name) == Some(Net::Discriminator) || !s.trainable {
                read(&s.name, &s.shape)
            } else {
                read(&format!("ema.{}", s.name), &s.shape)
            }
        })?;
        let [mut opt_d, mut opt_g, mut opt_m] = optimizers(ctx, &params, &cfg)?;
        for (opt, key) in [(&mut opt_d, "d"), (&mut opt_g, "g"), (&mut opt_m, "m")] {
            for (name, m, v) in opt.state() {
                m.write(&read(&format!("adam.{name}.m"), m.shape())?)?;
                v.write(&read(&format!("adam.{name}.v"), v.shape())?)?;
            }
            opt.set_steps(ck.meta_parse(&format!("adam_steps.{key}"))?);
        }
        let d = cfg.model.d_latent;
        Ok(TrainState {
            plp_exp_sum_a: Tensor::from_f32(ctx, &[1], &read("plp.exp_sum_a", &[1])?)?,
            plp_steps: ck.meta_parse("plp_steps")?,
            w_avg: Tensor::from_f32(ctx, &[d], &read("w_avg", &[d])?)?,
            step: ck.meta_parse("step")?,
            ada: ada_of(ck)?,
            cfg,
            params,
            ema,
            opt_d,
            opt_g,
            opt_m,
        })
    }
}
