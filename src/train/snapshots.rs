//! What a training run shows of itself besides checkpoints: the grid of samples of the
//! moving-average generator beside real images (`samples.png`, and one per step under
//! `samples/`), the loss plot (`loss.png`) and MS-SWD plot (`swd.png`) from the run log, and the
//! MS-SWD measurement itself.

use super::config::TrainConfig;
use super::sample::Sampler;
use super::state::TrainState;
use crate::data::Dataset;
use crate::metrics::{self, Descriptors, SwdConfig};
use crate::outputs::images::{self, Batch, GridOptions};
use crate::outputs::plot::{self, PlotOptions};
use crate::outputs::run_log;
use crate::vk::Context;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Samples in the training grid.
const SAMPLES: usize = 16;
/// Seed of the SWD patch positions and projections during training.
const SWD_SEED: u64 = 0;
/// Generator seeds of the SWD images (apart from the sample grid's).
const SWD_FIRST_SEED: u64 = 1 << 32;

/// The sampler and real images a run's snapshots are drawn from.
pub(super) struct Snapshots {
    sampler: Sampler,
    /// The first real images of the set, shown beside the samples.
    reals: Vec<f32>,
    /// Computed at the first measurement, so a run that measures none pays nothing.
    swd_reals: Option<Descriptors>,
    log_path: PathBuf,
}

impl Snapshots {
    /// Snapshots of `state`'s generator; `log_path` is the run log the plots read.
    pub(super) fn new(
        ctx: &Context,
        state: &TrainState,
        dataset: &Dataset,
        log_path: PathBuf,
    ) -> Result<Self> {
        let cfg = &state.cfg;
        let sampler = Sampler::new(ctx, &state.ema, &cfg.model, &state.w_avg, SAMPLES)?;
        let reals: Vec<f32> = (0..SAMPLES.min(dataset.len()))
            .flat_map(|i| dataset.image(i))
            .collect();
        Ok(Snapshots {
            sampler,
            reals,
            swd_reals: None,
            log_path,
        })
    }

    pub(super) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The sample grid of `step` and the plots, into `out`.
    pub(super) fn write(&mut self, cfg: &TrainConfig, out: &Path, step: u64) -> Result<()> {
        self.write_samples(cfg, out, step)?;
        write_plots(&self.log_path, out)
    }

    fn write_samples(&mut self, cfg: &TrainConfig, out: &Path, step: u64) -> Result<()> {
        let seeds: Vec<u64> = (0..self.sampler.batch_size() as u64).collect();
        let fakes = self.sampler.generate(&seeds, None, 0, 1.0)?;
        let r = cfg.model.image_size;
        let fake = Batch::new(&fakes, [seeds.len(), 3, r, r])?;
        let reals = &self.reals;
        let real = Batch::new(reals, [reals.len() / (3 * r * r), 3, r, r])?;
        let opts = GridOptions {
            scale: (128 / r as u32).max(1),
            ..GridOptions::default()
        };
        let grid = images::pair_grid(&fake, &real, &opts)?;
        let dir = out.join("samples");
        std::fs::create_dir_all(&dir)?;
        images::save_png(&dir.join(format!("step-{step:08}.png")), &grid)?;
        images::save_png(&out.join("samples.png"), &grid)?;
        Ok(())
    }

    /// MS-SWD (mean over levels, x1e3) of the EMA generator against `swd_num` real images
    /// (all of them in a smaller set) evenly spaced through `dataset`.
    pub(super) fn swd(
        &mut self,
        ctx: &Context,
        dataset: &Dataset,
        cfg: &TrainConfig,
    ) -> Result<f64> {
        let swd_cfg = SwdConfig::default();
        let size = cfg.model.image_size;
        if self.swd_reals.is_none() {
            let n = cfg.swd_num.min(dataset.len());
            let reals = dataset.evenly_spaced(n);
            let descriptors = metrics::descriptors(ctx, &reals, n, size, SWD_SEED, &swd_cfg)?;
            self.swd_reals = Some(descriptors);
        }
        let reals = self.swd_reals.as_ref().expect("just computed");
        let n = reals.images;
        let seeds: Vec<u64> = (SWD_FIRST_SEED..SWD_FIRST_SEED + n as u64).collect();
        let fakes = self.sampler.generate_all(&seeds, 1.0)?;
        let fake = metrics::descriptors(ctx, &fakes, n, size, SWD_SEED, &swd_cfg)?;
        Ok(metrics::distance(ctx, reals, &fake)?.mean)
    }
}

/// `loss.png` from every logged loss, `swd.png` when SWD was measured, and `ada.png` with
/// ADA's p and r_t when the run adapts its augmentation.
fn write_plots(log_path: &Path, out: &Path) -> Result<()> {
    let log = run_log::read(log_path)?;
    let (ada, rest): (Vec<_>, Vec<_>) = run_log::series(&log.records)
        .into_iter()
        .partition(|s| s.name.starts_with("ada_"));
    let (swd, losses): (Vec<_>, Vec<_>) = rest.into_iter().partition(|s| s.name == "swd");
    if !ada.is_empty() {
        let opts = PlotOptions {
            title: Some("ADA: augmentation probability p and r_t = E[sign D(real)]".into()),
            ..PlotOptions::default()
        };
        plot::save(&out.join("ada.png"), &ada, &opts)?;
    }
    let opts = PlotOptions {
        title: Some("vkgan training losses".into()),
        clip_percentile: Some(1.0),
        ..PlotOptions::default()
    };
    plot::save(&out.join("loss.png"), &losses, &opts)?;
    if !swd.is_empty() {
        let opts = PlotOptions {
            title: Some("MS-SWD x1e3 of the EMA generator (lower is better)".into()),
            ..PlotOptions::default()
        };
        plot::save(&out.join("swd.png"), &swd, &opts)?;
    }
    Ok(())
}
