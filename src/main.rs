//! The `vkgan` command line: argument parsing and reporting; the work is in the library.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vkgan::data::{Dataset, Source};
use vkgan::dist::World;
use vkgan::infer::bench::{bench, profile_table, shape_table, BenchOptions, BenchReport};
use vkgan::infer::generate::{
    check_truncation, figure_scale, parse_seeds, parse_seeds_at_most, write_images, MAX_MIX_SEEDS,
    MAX_SCALE,
};
use vkgan::infer::interpolate::{self, Noise, Space, Walk, WalkOutput};
use vkgan::infer::load::{load_generator, load_generator_with, Weights};
use vkgan::infer::measure::swd_against;
use vkgan::infer::mix::mixing_figure;
use vkgan::infer::project::{self, ProjectOptions};
use vkgan::nn::ModelConfig;
use vkgan::outputs::animation::{Format, MAX_FPS};
use vkgan::outputs::images::save_png;
use vkgan::persist::checkpoint::Checkpoint;
use vkgan::persist::run_dir;
use vkgan::train::augment::Augment;
use vkgan::train::config::{Preset, TrainConfig, MAX_STEPS, MAX_SWD_NUM};
use vkgan::train::init::InitSource;
use vkgan::train::ranks;
use vkgan::train::run::{checkpoint_dir, default_out_dir, open_dataset, train, RunOptions};
use vkgan::train::state::TrainState;
use vkgan::vk::{self, Context, ContextOptions};

#[derive(Parser)]
#[command(
    name = "vkgan",
    version,
    about = "StyleGAN2 training and image generation on any Vulkan device"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every Vulkan device and mark the one used by default.
    Devices,
    /// Train StyleGAN2 on a folder of images (or the embedded emoji set).
    ///
    /// Unset flags take the preset's values, shown as [default: REFERENCE; quick: QUICK]. With
    /// --resume they keep the run's own, and only the schedule may change; with --init-from the
    /// model sizes are the checkpoint's. Progress shows the losses, images per second over the
    /// last minute, thousands of images seen (kimg) and the time left:
    /// `step 500/1500: D 1.3862  G 0.6931  18.2 img/s  8.0 kimg  ETA 14m39s`.
    Train(Box<TrainArgs>),
    /// Write one PNG per seed from a checkpoint's generator.
    Generate(GenerateArgs),
    /// Write the style-mixing figure: coarse styles from row seeds, fine from column seeds.
    Mix(MixArgs),
    /// Write a looping animation (GIF, APNG or PNG frames) that walks through the seeds.
    Interpolate(InterpolateArgs),
    /// Find the latent w (and noise maps) with which the generator draws a given image.
    Project(ProjectArgs),
    /// Multi-scale sliced Wasserstein distance between generated and real images.
    Metrics(MetricsArgs),
    /// Time training steps on synthetic data: images/s of the plain and the regularized step,
    /// peak device memory, and with --profile the time per kernel.
    ///
    /// The model and batch are the preset's unless set, shown as [default: REFERENCE; quick:
    /// QUICK].
    Bench(BenchArgs),
}

/// The flag of every command that uses a device.
#[derive(Args)]
struct DeviceArg {
    /// Vulkan device index, as `vkgan devices` lists them; default: the one it marks with `*`
    /// (a discrete GPU before an integrated one, a GPU before a CPU).
    #[arg(long = "device", value_name = "N")]
    index: Option<usize>,
}

/// The generator of `generate`, `mix` and `metrics`.
#[derive(Args)]
struct CheckpointArg {
    /// A vkgan checkpoint, a run directory (its newest checkpoint that reads), or a PyTorch
    /// reference state dict in safetensors.
    #[arg(long, value_name = "PATH")]
    checkpoint: PathBuf,
}

/// The sizes of the three networks (`train` and `bench`).
#[derive(Args)]
#[command(next_help_heading = "Model size")]
struct ModelArgs {
    /// Image side in pixels: a power of two from 8 to 256 [default: 32; quick: 16].
    #[arg(long, value_name = "PIXELS")]
    image_size: Option<usize>,
    /// Size of the latent z and of the style w [default: 512; quick: 64].
    #[arg(long, value_name = "N")]
    d_latent: Option<usize>,
    /// Fully connected layers of the mapping network from z to w [default: 8; quick: 2].
    #[arg(long, value_name = "N")]
    mapping_layers: Option<usize>,
    /// Generator feature maps at full resolution, doubling each block towards 4x4 up to
    /// --g-max-features [default: 32; quick: 16].
    #[arg(long, value_name = "N")]
    g_features: Option<usize>,
    /// Most feature maps of any generator block [default: 512; quick: 64].
    #[arg(long, value_name = "N")]
    g_max_features: Option<usize>,
    /// Discriminator feature maps at full resolution, doubling each block towards 4x4 up to
    /// --d-max-features [default: 64; quick: 16].
    #[arg(long, value_name = "N")]
    d_features: Option<usize>,
    /// Most feature maps of any discriminator block [default: 512; quick: 64].
    #[arg(long, value_name = "N")]
    d_max_features: Option<usize>,
}

/// Sets each field of `$cfg` whose flag (of the same name) in `$args` was given.
macro_rules! set_given {
    ($args:expr => $cfg:expr; $($field:ident),+ $(,)?) => {
        $(if let Some(v) = $args.$field { $cfg.$field = v; })+
    };
}

impl ModelArgs {
    fn apply(&self, cfg: &mut ModelConfig) {
        set_given!(self => cfg; image_size, d_latent, mapping_layers, g_features,
            g_max_features, d_features, d_max_features);
    }
}

/// What each step does: batch, optimizer, penalties, moving average and seed.
#[derive(Args)]
#[command(next_help_heading = "Optimization")]
struct OptimArgs {
    /// Images per micro-batch: a multiple of 4, the minibatch-stddev group [default: 32;
    /// quick: 16].
    #[arg(long, value_name = "IMAGES")]
    batch: Option<usize>,
    /// Micro-batches per optimizer step (gradient accumulation): a step sees batch times this
    /// many images [default: 1].
    #[arg(long, value_name = "N")]
    accumulate: Option<usize>,
    /// Adam learning rate of the generator and the discriminator [default: 0.001; quick:
    /// 0.002].
    #[arg(long, value_name = "RATE")]
    lr: Option<f32>,
    /// Adam learning rate of the mapping network [default: 0.00001; quick: 0.0002].
    #[arg(long, value_name = "RATE")]
    mapping_lr: Option<f32>,
    /// Adam's moment decays, each in [0, 1) [default: 0,0.99].
    #[arg(long, value_name = "B1,B2", value_parser = parse_betas)]
    betas: Option<(f32, f32)>,
    /// Weight of the R1 gradient penalty on real images; 0 turns it off [default: 10].
    #[arg(long, value_name = "GAMMA")]
    r1_gamma: Option<f32>,
    /// Steps between R1 penalties (lazy regularization) [default: 4].
    #[arg(long, value_name = "STEPS")]
    r1_interval: Option<u64>,
    /// Steps between path-length penalties of the generator [default: 32; quick: 8].
    #[arg(long, value_name = "STEPS")]
    plp_interval: Option<u64>,
    /// Steps before the path-length penalty starts [default: 5000; quick: 500].
    #[arg(long, value_name = "STEPS")]
    plp_after: Option<u64>,
    /// Decay of the path-length penalty's running mean per penalized step, in [0, 1)
    /// [default: 0.99].
    #[arg(long, value_name = "BETA")]
    plp_beta: Option<f32>,
    /// Probability that a micro-batch mixes two latents' styles at a random block, in [0, 1]
    /// [default: 0.9].
    #[arg(long, value_name = "P")]
    style_mixing_prob: Option<f32>,
    /// Half-life of the generator's moving average, in thousands of images [default: 10;
    /// quick: 1].
    #[arg(long, value_name = "KIMG")]
    ema_kimg: Option<f32>,
    /// Cap that half-life at this fraction of the images seen so far, so a young run's
    /// average follows its weights; 0: no ramp [default: 0.05].
    #[arg(long, value_name = "FRACTION")]
    ema_rampup: Option<f32>,
    /// Seed of every random draw: initial weights, data order, latents and noise [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Augment every image the discriminator sees: ada (adaptive, the ADA paper's pipeline),
    /// diffaug (DiffAugment's colour, translation and cutout) or none; default: ada for
    /// datasets under 30,000 images, else none.
    #[arg(long, value_enum)]
    augment: Option<Augment>,
    /// ADA's target for r_t = E[sign(D(real))], the overfitting heuristic [default: 0.6].
    #[arg(long, value_name = "R")]
    ada_target: Option<f32>,
    /// Steps between adjustments of ADA's probability p [default: 4].
    #[arg(long, value_name = "STEPS")]
    ada_interval: Option<u64>,
    /// Thousands of images over which ADA's p can move from 0 to 1 [default: 500].
    #[arg(long, value_name = "KIMG")]
    ada_kimg: Option<f32>,
}

impl OptimArgs {
    fn apply(&self, cfg: &mut TrainConfig) {
        set_given!(self => cfg; batch, accumulate, lr, mapping_lr, betas, r1_gamma,
            r1_interval, plp_interval, plp_after, plp_beta, style_mixing_prob, ema_kimg, ema_rampup, seed, augment, ada_target,
            ada_interval, ada_kimg);
    }
}

/// When a run stops and what it writes along the way: the settings a resumed run may change
/// (`vkgan::train::resume::RESUMABLE_FLAGS`, the same flags in the same order).
#[derive(Args)]
#[command(next_help_heading = "Schedule (may change on --resume)")]
struct ScheduleArgs {
    /// Step to train up to, counted from the run's start (a resumed run continues to it)
    /// [default: 150000; quick: 1500].
    #[arg(long, value_name = "STEPS")]
    steps: Option<u64>,
    /// Steps between sample grids (samples/step-N.png) and loss plots, and between the log
    /// lines of --no-progress [default: 500; quick: 100].
    #[arg(long, value_name = "STEPS")]
    sample_every: Option<u64>,
    /// Steps between checkpoints [default: 2000; quick: 250].
    #[arg(long, value_name = "STEPS")]
    checkpoint_every: Option<u64>,
    /// How many of the newest checkpoints to keep [default: 3].
    #[arg(long, value_name = "N")]
    keep_checkpoints: Option<usize>,
    /// Steps between MS-SWD measurements into metrics.jsonl and swd.png; 0: never [default:
    /// 0; quick: 250].
    #[arg(long, value_name = "STEPS")]
    swd_every: Option<u64>,
    /// Images on each side of those measurements [default: 256].
    #[arg(long, value_name = "IMAGES")]
    swd_num: Option<usize>,
}

impl ScheduleArgs {
    fn apply(&self, cfg: &mut TrainConfig) {
        set_given!(self => cfg; steps, sample_every, checkpoint_every, keep_checkpoints,
            swd_every, swd_num);
    }
}

/// `vkgan train`: where the run comes from and goes, then its settings in three groups.
#[derive(Args)]
struct TrainArgs {
    /// Named settings to start from: `reference` (the default) or `quick` (small and fast).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Folder of images (jpg, png, webp, bmp, searched recursively); default: the embedded
    /// 1,412 Noto Emoji.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Output directory of checkpoints, samples, plots and metrics.jsonl; default:
    /// runs/<UTC timestamp>.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the newest checkpoint of this run directory, with its settings.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Start a new run from these trained weights (fine-tuning): a vkgan checkpoint, a run
    /// directory (its newest checkpoint that reads) or a PyTorch reference state dict in
    /// safetensors. The model sizes are the checkpoint's; the optimizer, step count, seed and
    /// data are this run's.
    #[arg(long, value_name = "PATH")]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    /// No progress bar: one line per sample interval, with the same fields.
    #[arg(long)]
    no_progress: bool,
    // The groups come last: clap keeps a flattened group's help heading for the flags after
    // it.
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    optim: OptimArgs,
    #[command(flatten)]
    schedule: ScheduleArgs,
}

impl TrainArgs {
    /// Applies every flag the user set to `cfg`.
    fn apply(&self, cfg: &mut TrainConfig) {
        self.model.apply(&mut cfg.model);
        self.optim.apply(cfg);
        self.schedule.apply(cfg);
        if let Some(dir) = &self.data {
            cfg.data = Some(dir.clone());
        }
    }

    /// The preset with the flags applied.
    fn fresh_config(&self) -> TrainConfig {
        let mut cfg = self.preset.unwrap_or(Preset::Reference).config();
        self.apply(&mut cfg);
        cfg
    }
}

fn parse_betas(text: &str) -> Result<(f32, f32), String> {
    let (a, b) = text
        .split_once(',')
        .ok_or_else(|| format!("`{text}`: give two numbers as B1,B2"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<f32>()
            .map_err(|_| format!("`{s}` is not a number"))
    };
    Ok((parse(a)?, parse(b)?))
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    generator: CheckpointArg,
    /// Seeds, one image each: a seed, a range or a list of them, such as 3, 0-15 or 0-3,10.
    #[arg(long, default_value = "0-15")]
    seeds: String,
    /// Truncation psi: 1 is none; lower trades variety for typical images.
    #[arg(long, value_name = "PSI", default_value_t = 1.0)]
    truncation: f32,
    /// Folder to write seedNNNN.png (and grid.png) into.
    #[arg(long, value_name = "DIR", default_value = "generated")]
    out: PathBuf,
    /// Also write grid.png with every image.
    #[arg(long)]
    grid: bool,
    /// Use the weights the optimizer trained instead of their moving average.
    #[arg(long)]
    raw: bool,
    /// Enlarge every image N times (nearest neighbour); default: the model's own resolution
    /// for the per-seed images, about 128 pixels an image for grid.png.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SCALE as i64))]
    scale: Option<u32>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct MetricsArgs {
    #[command(flatten)]
    generator: CheckpointArg,
    /// Folder of real images to compare with; default: the embedded emoji set.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Images on each side, generated and real.
    #[arg(long, value_name = "IMAGES", default_value_t = 2048)]
    num: usize,
    /// Seed of the generated images' latents, the patch positions and the projections.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One line of JSON: {"swd_levels": [...], "swd_mean": ...}.
    #[arg(long)]
    json: bool,
    /// Measure the weights the optimizer trained instead of their moving average.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct MixArgs {
    #[command(flatten)]
    generator: CheckpointArg,
    /// Seeds of the rows (their coarse styles), as for `generate --seeds`.
    #[arg(long, default_value = "0-3")]
    rows: String,
    /// Seeds of the columns (their fine styles).
    #[arg(long, default_value = "4-7")]
    cols: String,
    /// Generator blocks, from 4x4 up, that take the row's style; default: half of them.
    #[arg(long, value_name = "BLOCKS")]
    crossover: Option<usize>,
    /// Truncation psi: 1 is none; lower trades variety for typical images.
    #[arg(long, value_name = "PSI", default_value_t = 1.0)]
    truncation: f32,
    /// The PNG file to write the figure to.
    #[arg(long, value_name = "FILE", default_value = "mixing.png")]
    out: PathBuf,
    /// Enlarge every cell N times (nearest neighbour); default: about 128 pixels a cell.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SCALE as i64))]
    scale: Option<u32>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct InterpolateArgs {
    #[command(flatten)]
    generator: CheckpointArg,
    /// The seeds to walk through, in order, then back to the first (two or more).
    #[arg(long, default_value = "0-3")]
    seeds: String,
    /// Frames from one seed to the next.
    #[arg(long, default_value_t = interpolate::DEFAULT_FRAMES)]
    frames: usize,
    /// Interpolate the mapping outputs w (linearly) or the latents z (along the sphere).
    #[arg(long, value_enum, default_value_t = Space::W)]
    space: Space,
    /// Keep the first seed's noise in every frame, or walk the noise maps from seed to seed
    /// too (for models that draw much of their variety from the noise).
    #[arg(long, value_enum, default_value_t = Noise::Fixed)]
    noise: Noise,
    /// Truncation psi: 1 is none; lower trades variety for typical images.
    #[arg(long, value_name = "PSI", default_value_t = 1.0)]
    truncation: f32,
    /// Enlarge every frame N times (nearest neighbour); default: about 128 pixels a frame.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SCALE as i64))]
    scale: Option<u32>,
    /// gif, apng or frames (a folder of numbered PNGs); default: from --out (.gif; .png or
    /// .apng; no extension or a folder: frames).
    #[arg(long)]
    format: Option<String>,
    /// Frames a second (GIF delays are whole hundredths of a second).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=MAX_FPS as i64))]
    fps: u32,
    /// The file (or folder, for frames) to write.
    #[arg(long, value_name = "PATH", default_value = "walk.gif")]
    out: PathBuf,
    /// Also write a PNG of 8 evenly spaced frames side by side.
    #[arg(long, value_name = "FILE")]
    strip: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct ProjectArgs {
    /// Its discriminator gives the feature distance.
    #[command(flatten)]
    generator: CheckpointArg,
    /// The image to reproduce (resized and centre-cropped to the model's resolution, as
    /// training images are).
    #[arg(long)]
    target: PathBuf,
    /// Optimisation steps.
    #[arg(long, value_name = "STEPS", default_value_t = 1000)]
    steps: usize,
    /// Peak learning rate of Adam on w and the noise maps.
    #[arg(long, value_name = "RATE", default_value_t = 0.1)]
    lr: f32,
    /// Weight of the discriminator-feature distance against the pixel distance (0: pixels
    /// only).
    #[arg(long, default_value_t = 0.1)]
    feature_weight: f32,
    /// Weight of the regulariser that keeps the optimised noise maps white.
    #[arg(long, default_value_t = 1e5)]
    noise_weight: f32,
    /// Keep the noise maps at their initial random draw; optimise w alone.
    #[arg(long)]
    fixed_noise: bool,
    /// Seed of the initial noise maps and of the perturbations of w.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder to write target.png, projected.png, progress.png and w.safetensors into.
    #[arg(long, value_name = "DIR", default_value = "projection")]
    out: PathBuf,
    /// Enlarge target.png and projected.png N times (default: the model's resolution) and
    /// the progress strip (default: about 128 pixels an image).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SCALE as i64))]
    scale: Option<u32>,
    #[command(flatten)]
    device: DeviceArg,
}

/// `vkgan bench`: the preset, batch and model to time, and how.
#[derive(Args)]
struct BenchArgs {
    /// Named settings to take the model and batch from: `reference` (the default) or `quick`.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Images per step: a multiple of 4 [default: 32; quick: 16].
    #[arg(long, value_name = "IMAGES")]
    batch: Option<usize>,
    /// Timed steps of each kind.
    #[arg(long, default_value_t = 5)]
    steps: u64,
    /// Untimed steps of each kind first.
    #[arg(long, value_name = "STEPS", default_value_t = 1)]
    warmup: u64,
    #[command(flatten)]
    device: DeviceArg,
    /// Print one line of JSON (tables, if any, go to stderr).
    #[arg(long)]
    json: bool,
    /// Time every kernel with timestamp queries and print where the time goes.
    #[arg(long)]
    profile: bool,
    /// Print each kernel's dispatches, invocations and shared memory: how much parallel work
    /// the steps offer a device (needs no timestamps, so it tells something on any device).
    #[arg(long)]
    shapes: bool,
    /// Time the steps with this augmentation of D's inputs (ADA at p = 0.5: every stage
    /// runs whatever p is; p changes only what the parameters are).
    #[arg(long, value_enum, default_value_t = Augment::None)]
    augment: Augment,
    // Last: clap keeps a flattened group's help heading for the flags after it.
    #[command(flatten)]
    model: ModelArgs,
}

impl BenchArgs {
    /// The preset with the model and batch flags applied.
    fn config(&self) -> TrainConfig {
        let mut cfg = self.preset.unwrap_or(Preset::Reference).config();
        self.model.apply(&mut cfg.model);
        if let Some(batch) = self.batch {
            cfg.batch = batch;
        }
        cfg.augment = self.augment;
        cfg
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => devices(),
        Command::Train(args) => train_command(*args),
        Command::Generate(args) => generate_command(args),
        Command::Mix(args) => mix_command(args),
        Command::Interpolate(args) => interpolate_command(args),
        Command::Project(args) => project_command(args),
        Command::Metrics(args) => metrics_command(args),
        Command::Bench(args) => bench_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            let setup = e
                .downcast_ref::<vk::VkError>()
                .is_some_and(vk::VkError::is_setup_problem);
            ExitCode::from(if setup { 2 } else { 1 })
        }
    }
}

/// The error and its causes on one line. Many of the library's errors already print their
/// cause (`path: reason`), so a cause whose text ends the line so far is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text.replace('\n', " ")
}

fn devices() -> Result<()> {
    let (devices, default) = vk::list_devices()?;
    let mode = vk::LimitsMode::from_env().map_err(vk::VkError::Environment)?;
    println!(
        "Vulkan devices ({} found; * = default, pick another with --device N):",
        devices.len()
    );
    for d in &devices {
        let mark = if d.index == default { '*' } else { ' ' };
        let (major, minor, patch) = d.api_version;
        let limits = d.limits.in_mode(mode);
        let [wx, wy, wz] = limits.max_workgroup_size;
        let [gx, gy, gz] = limits.max_workgroup_count;
        println!("{mark} {}: {}", d.index, d.name);
        println!("     type:               {}", d.kind.label());
        println!("     driver:             {}", d.driver);
        println!("     Vulkan API:         {major}.{minor}.{patch}");
        println!(
            "     subgroup size:      {}{}",
            d.subgroup_size,
            if limits.subgroup_arithmetic {
                " (arithmetic in compute)"
            } else {
                ""
            }
        );
        println!("     limits in use:      {}", mode.label());
        println!(
            "     max shared memory:  {} bytes",
            limits.max_shared_memory
        );
        println!(
            "     max workgroup size: {wx} x {wy} x {wz} ({} invocations)",
            limits.max_workgroup_invocations
        );
        println!("     max workgroups:     {gx} x {gy} x {gz}");
        println!(
            "     max push constants: {} bytes",
            limits.max_push_constants
        );
        println!("     tensor I/O:         {}", io_paths(&limits));
    }
    Ok(())
}

/// Which path a tensor's reads and writes take on a device with these limits.
fn io_paths(limits: &vk::Limits) -> String {
    let storage = format!(
        "storage buffers up to {} per binding",
        bytes_label(limits.max_storage_buffer_range as u64)
    );
    match limits.texel_bytes() {
        0 => format!("{storage} (r32f/rgba32f texel buffers unsupported)"),
        texel => format!(
            "texel buffers up to {} ({} texels), {storage} past that",
            bytes_label(texel),
            limits.max_texel_buffer_elements
        ),
    }
}

fn bytes_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{} KiB", b >> 10),
    }
}

/// Whether two paths name the same directory (the same text, or the same existing folder).
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Creates `dir` and proves it writable.
fn ensure_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(".vkgan-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("output directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Where a run's state comes from.
enum Start {
    /// Initialised from the seed.
    Fresh,
    /// A run's own checkpoint, continued (`--resume`).
    Resume(Checkpoint),
    /// Another run's (or the reference's) weights, in a new run (`--init-from`).
    Init(InitSource),
}

/// `vkgan train`, as the one process of a run or as one rank of an MPI job. A rank that fails
/// ends the whole job at once (MPI_Abort), naming itself, so that no rank waits forever on
/// one that is gone.
fn train_command(args: TrainArgs) -> Result<()> {
    let world = World::from_environment()?;
    let result = train_as(&world, args);
    if let Err(e) = &result {
        if world.size() > 1 {
            eprintln!(
                "error: rank {} of {}: {}",
                world.rank(),
                world.size(),
                one_line(e)
            );
            world.abort(1);
        }
    }
    result
}

fn train_as(world: &World, args: TrainArgs) -> Result<()> {
    let stop = stop_on_signal()?;
    let (start, cfg, out) = match &args.resume {
        Some(dir) => resumed_run(&args, dir)?,
        None => fresh_run(&args)?,
    };
    cfg.validate().map_err(|e| anyhow!(e))?;
    ranks::check_batch(world, &cfg).map_err(|e| anyhow!(e))?;
    if let Some(dir) = &cfg.data {
        if !dir.is_dir() {
            bail!(
                "data directory {} does not exist or is not a directory",
                dir.display()
            );
        }
    }
    // The dataset is checked before anything is written or the device is set up.
    let dataset = open_dataset(&cfg)?;
    let mut cfg = cfg;
    if args.resume.is_none() && args.optim.augment.is_none() {
        cfg.augment = Augment::default_for(dataset.len());
    }
    if world.is_root() {
        ensure_writable(&out)?;
    }
    let devices = if world.size() > 1 {
        vk::list_devices()?.0.len()
    } else {
        0
    };
    let device = ranks::device_for(world, args.device.index, devices);
    // The state lives on the context the run makes; build it there.
    let ctx = Context::new(&ContextOptions::from_env(device)?)?;
    let state = match &start {
        Start::Resume(ck) => {
            let mut state = TrainState::from_checkpoint(&ctx, ck)?;
            state.cfg = cfg.clone();
            state
        }
        Start::Init(source) => TrainState::init_from(&ctx, &cfg, &source.checkpoint)?,
        Start::Fresh => TrainState::new(&ctx, &cfg)?,
    };
    // Before anything is written: every rank must start from the same point.
    ranks::agree_on_start(world, &cfg, &dataset, &state)?;
    if state.step >= cfg.steps {
        if world.is_root() {
            eprintln!(
                "nothing to do: the run is at step {} of {}",
                state.step, cfg.steps
            );
        }
        return Ok(());
    }
    if world.is_root() {
        std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
        let init = match &start {
            Start::Init(source) => Some(source),
            _ => None,
        };
        announce_training(&cfg, &dataset, &ctx, &out, init, world.size());
    }
    let options = RunOptions {
        out: out.clone(),
        progress: !args.no_progress,
        stop,
        split: false,
    };
    let summary = train(&ctx, state, dataset, &options, world)?;
    if world.is_root() {
        for line in summary.report(&out) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// The flag a first SIGINT, SIGTERM or SIGUSR1 sets; a second SIGINT or SIGTERM exits at
/// once. SIGUSR1 is for MPI jobs: mpirun forwards it to every rank at once, where it answers
/// SIGTERM by killing the ranks shortly after.
fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    // Installed first, so that a signal at any moment of the start takes the graceful path.
    // With ctrlc's `termination` feature this catches SIGTERM (what schedulers send before
    // they kill a job) as well as SIGINT: finish the step, write a checkpoint, exit 0.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (interrupt again to quit at once)");
    })?;
    let flag = stop.clone();
    let mut usr1 = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])?;
    std::thread::Builder::new()
        .name("vkgan-sigusr1".into())
        .spawn(move || {
            for _ in usr1.forever() {
                if !flag.swap(true, Ordering::SeqCst) {
                    eprintln!("\nstopping after this step (SIGUSR1)");
                }
            }
        })?;
    Ok(stop)
}

/// The newest checkpoint of run `dir`, its settings with the flags applied, and `dir`.
fn resumed_run(args: &TrainArgs, dir: &Path) -> Result<(Start, TrainConfig, PathBuf)> {
    if args.init_from.is_some() {
        bail!(
            "--init-from cannot be combined with --resume: a resumed run continues from its own \
             checkpoint (--init-from starts a new run)"
        );
    }
    if let Some(out) = args.out.as_ref().filter(|out| !same_dir(out, dir)) {
        bail!(
            "--out {} cannot be combined with --resume {}: a resumed run continues in its own \
             directory",
            out.display(),
            dir.display()
        );
    }
    if args.preset.is_some() {
        bail!("--preset cannot be combined with --resume: a resumed run keeps its own settings");
    }
    let latest = run_dir::latest(&checkpoint_dir(dir))
        .with_context(|| format!("cannot read checkpoints of {}", dir.display()))?
        .ok_or_else(|| {
            anyhow!(
                "no checkpoint to resume in {}",
                checkpoint_dir(dir).display()
            )
        })?;
    warn_skipped(&latest.skipped);
    let run = TrainState::config_of(&latest.checkpoint)?;
    let mut cfg = run.clone();
    args.apply(&mut cfg);
    run.check_resume(&cfg).map_err(|e| anyhow!(e))?;
    Ok((Start::Resume(latest.checkpoint), cfg, dir.to_path_buf()))
}

/// The preset with the flags applied (and with --init-from, the checkpoint read and its
/// sizes), and an output directory that holds no other run.
fn fresh_run(args: &TrainArgs) -> Result<(Start, TrainConfig, PathBuf)> {
    let (start, cfg) = match &args.init_from {
        Some(path) => {
            let source = InitSource::read(path).context("--init-from")?;
            warn_skipped(&source.skipped);
            // The checkpoint's sizes with only the flags given: those must agree with them.
            let mut wanted = source.model.clone();
            args.model.apply(&mut wanted);
            let cfg = source.train_config(args.fresh_config(), &wanted)?;
            (Start::Init(source), cfg)
        }
        None => (Start::Fresh, args.fresh_config()),
    };
    let out = args.out.clone().unwrap_or_else(default_out_dir);
    // A fresh run never writes over another one's metrics or checkpoints.
    let has_checkpoints = run_dir::list(&checkpoint_dir(&out))
        .map(|l| !l.is_empty())
        .unwrap_or(false);
    if has_checkpoints || out.join("metrics.jsonl").exists() {
        bail!(
            "{} already holds a training run: continue it with --resume {0} or choose another \
             --out",
            out.display()
        );
    }
    Ok((start, cfg, out))
}

/// The line that says what is about to be trained, on what and where.
fn announce_training(
    cfg: &TrainConfig,
    dataset: &Dataset,
    ctx: &Context,
    out: &Path,
    init: Option<&InitSource>,
    ranks: usize,
) {
    let skipped = match dataset.skipped() {
        0 => String::new(),
        1 => "; 1 file skipped".into(),
        n => format!("; {n} files skipped"),
    };
    let data = cfg
        .data
        .as_ref()
        .map_or("the embedded emoji set".to_string(), |d| {
            d.display().to_string()
        });
    let augment = match cfg.augment {
        Augment::None => String::new(),
        Augment::Ada => format!(", augmenting with ADA (target r_t {})", cfg.ada_target),
        Augment::Diffaug => ", augmenting with DiffAugment".into(),
    };
    let init = init.map_or(String::new(), |source| {
        format!(", initialised from {}", source.describe())
    });
    let on = match ranks {
        1 => ctx.info().name.clone(),
        n => format!(
            "{n} ranks ({} images each per step; rank 0 on {})",
            cfg.batch / n,
            ctx.info().name
        ),
    };
    eprintln!(
        "training {}x{} StyleGAN2 on {data} ({} images{skipped}) on {on} into {}{init}{augment}",
        cfg.model.image_size,
        cfg.model.image_size,
        dataset.len(),
        out.display()
    );
}

/// One warning line per unreadable checkpoint passed over for an older one.
fn warn_skipped(skipped: &[impl std::fmt::Display]) {
    for why in skipped {
        eprintln!("warning: skipping unreadable checkpoint {why}");
    }
}

fn generate_command(args: GenerateArgs) -> Result<()> {
    let seeds = parse_seeds(&args.seeds)?;
    check_truncation(args.truncation)?;
    let ctx = Context::new(&ContextOptions::from_env(args.device.index)?)?;
    let weights = Weights::raw_if(args.raw);
    let gen = load_generator_with(&ctx, &args.generator.checkpoint, weights)?;
    warn_skipped(&gen.skipped);
    let paths = write_images(
        &ctx,
        &gen,
        &seeds,
        args.truncation,
        &args.out,
        args.grid,
        args.scale,
    )?;
    let r = gen.cfg.image_size as u32;
    let side = r * args.scale.unwrap_or(1);
    eprintln!(
        "wrote {} images of {side}x{side} pixels to {}{}",
        paths.len(),
        args.out.display(),
        if args.grid { " (and grid.png)" } else { "" }
    );
    let grid_scale = figure_scale(r as usize, args.scale);
    if args.grid && args.scale.is_none() && grid_scale > 1 {
        eprintln!("grid.png shows them enlarged {grid_scale}x for viewing (--scale N to choose)");
    }
    Ok(())
}

fn mix_command(args: MixArgs) -> Result<()> {
    let rows = parse_seeds_at_most(&args.rows, MAX_MIX_SEEDS)?;
    let cols = parse_seeds_at_most(&args.cols, MAX_MIX_SEEDS)?;
    check_truncation(args.truncation)?;
    let ctx = Context::new(&ContextOptions::from_env(args.device.index)?)?;
    let gen = load_generator(&ctx, &args.generator.checkpoint)?;
    warn_skipped(&gen.skipped);
    let blocks = gen.cfg.generator_blocks();
    let crossover = args.crossover.unwrap_or(blocks / 2);
    if crossover > blocks {
        bail!("--crossover {crossover}: the generator has {blocks} blocks");
    }
    let figure = mixing_figure(
        &ctx,
        &gen,
        &rows,
        &cols,
        crossover,
        args.truncation,
        args.scale,
    )?;
    save_png(&args.out, &figure)?;
    let cell_scale = figure_scale(gen.cfg.image_size, args.scale);
    eprintln!(
        "wrote {} (cells enlarged {cell_scale}x{})",
        args.out.display(),
        if args.scale.is_none() {
            " for viewing; --scale N to choose"
        } else {
            ""
        }
    );
    Ok(())
}

fn interpolate_command(args: InterpolateArgs) -> Result<()> {
    let seeds = parse_seeds_at_most(&args.seeds, interpolate::MAX_FRAMES)?;
    let walk = Walk::new(seeds, args.frames, args.space, args.truncation)?.with_noise(args.noise);
    let out = WalkOutput {
        format: Format::resolve(args.format.as_deref(), &args.out)?,
        path: args.out,
        scale: args.scale,
        fps: args.fps,
        strip: args.strip,
    };
    let ctx = Context::new(&ContextOptions::from_env(args.device.index)?)?;
    let gen = load_generator(&ctx, &args.generator.checkpoint)?;
    warn_skipped(&gen.skipped);
    let report = interpolate::write_walk(&ctx, &gen, &walk, &out)?;
    let side = report.side;
    eprintln!(
        "wrote {} ({}): {} frames of {side}x{side} pixels, {} seeds x {} in {} space, {} fps",
        out.path.display(),
        out.format.name(),
        report.frames,
        walk.seeds.len(),
        walk.frames,
        walk.space.name(),
        out.fps
    );
    if args.scale.is_none() && report.scale > 1 {
        eprintln!(
            "frames enlarged {}x for viewing (--scale N to choose)",
            report.scale
        );
    }
    if let (Some(path), Some(n)) = (&out.strip, report.strip_frames) {
        eprintln!("wrote the strip of {n} frames to {}", path.display());
    }
    Ok(())
}

fn project_command(args: ProjectArgs) -> Result<()> {
    let options = ProjectOptions {
        steps: args.steps,
        lr: args.lr,
        feature_weight: args.feature_weight,
        noise_weight: args.noise_weight,
        optimize_noise: !args.fixed_noise,
        seed: args.seed,
    };
    options.validate().map_err(|e| anyhow!(e))?;
    let ctx = Context::new(&ContextOptions::from_env(args.device.index)?)?;
    let gen = load_generator(&ctx, &args.generator.checkpoint)?;
    warn_skipped(&gen.skipped);
    let r = gen.cfg.image_size;
    let target = project::load_target(&args.target, r)?;
    ensure_writable(&args.out)?;
    eprintln!(
        "projecting {} onto the {r}x{r} generator of {} in {} steps on {}",
        args.target.display(),
        args.generator.checkpoint.display(),
        args.steps,
        ctx.info().name
    );
    let every = (args.steps / 10).max(1);
    let report = |loss: &project::StepLoss| {
        let done = loss.step + 1;
        if done == 1 || done % every == 0 || done == args.steps {
            eprintln!(
                "step {done}/{}: pixel mse {:.5}, feature distance {:.4}, noise reg {:.2e}",
                args.steps, loss.pixel, loss.feature, loss.noise
            );
        }
    };
    let projection = project::project(&ctx, &gen, &target, &options, 7, report)?;
    let scale = args.scale.unwrap_or(1);
    let strip = figure_scale(r, args.scale);
    project::save(&args.out, &gen.cfg, &target, &projection, scale, strip)?;
    eprintln!(
        "wrote target.png, projected.png, progress.png (target, then steps {}) and \
         w.safetensors to {}",
        projection
            .snapshots
            .iter()
            .map(|(s, _)| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.out.display()
    );
    Ok(())
}

fn bench_command(args: BenchArgs) -> Result<()> {
    let cfg = args.config();
    cfg.validate().map_err(|e| anyhow!(e))?;
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    for (name, v) in [("steps", args.steps), ("warmup", args.warmup)] {
        if v > MAX_STEPS {
            bail!("--{name} {v} is larger than the limit of {MAX_STEPS}");
        }
    }
    let ctx = Context::new(&ContextOptions::from_env(args.device.index)?)?;
    let r = cfg.model.image_size;
    let span = |features: Vec<usize>| {
        let (lo, hi) = (features.iter().min(), features.iter().max());
        format!("{}..{}", lo.unwrap_or(&0), hi.unwrap_or(&0))
    };
    eprintln!(
        "benchmarking {r}x{r}, batch {}, d_latent {}, {} mapping layers, G features {}, D \
         features {} on {} ({}): {} warm-up and {} timed steps of each kind",
        cfg.batch,
        cfg.model.d_latent,
        cfg.model.mapping_layers,
        span(cfg.model.generator_features()),
        span(cfg.model.discriminator_features()),
        ctx.info().name,
        ctx.info().kind.label(),
        args.warmup,
        args.steps
    );
    let options = BenchOptions {
        steps: args.steps,
        warmup: args.warmup,
        profile: args.profile,
    };
    let report = bench(&ctx, &cfg, &options)?;
    print_bench(&report, args.profile, args.shapes, args.json);
    Ok(())
}

/// The report as one JSON line or as a table (with the kernel profiles when measured).
fn print_bench(report: &BenchReport, profile: bool, shapes: bool, json: bool) {
    let mut tables = if profile {
        format!(
            "\ntime per kernel, plain step (D + G), {} steps:\n{}\ntime per kernel, regularized \
             step (D+R1 + G+path length), {} steps:\n{}",
            report.steps,
            profile_table(&report.plain_profile),
            report.steps,
            profile_table(&report.regularized_profile)
        )
    } else {
        String::new()
    };
    if shapes {
        tables.push_str(&format!(
            "\ndispatches, plain step (D + G), {} kernels:\n{}\ndispatches, regularized step \
             (D+R1 + G+path length):\n{}",
            report.kernels,
            shape_table(&report.plain_shapes),
            shape_table(&report.regularized_shapes)
        ));
    }
    if json {
        eprint!("{tables}");
        println!("{}", report.to_json());
        return;
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "device: {} ({}), {} kernels, {} limits",
        report.device, report.driver, report.kernels, report.limits
    );
    println!(
        "plain step (D + G):                    {:8.3} s/step {:10.2} img/s",
        report.plain_s_per_step,
        report.plain_img_per_s()
    );
    println!(
        "regularized step (D+R1 + G+path len.): {:8.3} s/step {:10.2} img/s",
        report.regularized_s_per_step,
        report.regularized_img_per_s()
    );
    println!(
        "peak device memory: {:.1} MiB of buffers ({:.1} MiB in use at most); programs built \
         in {:.1} s",
        mib(report.peak_device_bytes),
        mib(report.peak_in_use_bytes),
        report.build_s
    );
    print!("{tables}");
}

fn metrics_command(args: MetricsArgs) -> Result<()> {
    if args.num < 2 {
        bail!("--num must be at least 2");
    }
    if args.num > MAX_SWD_NUM {
        bail!(
            "--num {} is larger than the limit of {MAX_SWD_NUM}",
            args.num
        );
    }
    let ctx = Context::new(&ContextOptions::from_env(args.device.index)?)?;
    let weights = Weights::raw_if(args.raw);
    let gen = load_generator_with(&ctx, &args.generator.checkpoint, weights)?;
    warn_skipped(&gen.skipped);
    let source = match &args.data {
        Some(dir) => Source::Dir(dir.clone()),
        None => Source::Emoji,
    };
    let dataset = Dataset::open(&source, gen.cfg.image_size)?;
    let report = swd_against(&ctx, &gen, &dataset, args.num, args.seed)?;
    if args.json {
        let line = serde_json::json!({"swd_levels": report.levels, "swd_mean": report.mean});
        println!("{line}");
    } else {
        let sizes = vkgan::metrics::SwdConfig::default().level_sizes(gen.cfg.image_size);
        for (size, v) in sizes.iter().zip(&report.levels) {
            println!("SWD x1e3 at {size}x{size}: {v:.2}");
        }
        println!("SWD x1e3 mean: {:.2}", report.mean);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use vkgan::train::resume::RESUMABLE_FLAGS;

    /// The values a help line states as `[default: REFERENCE; quick: QUICK]` (or
    /// `[default: BOTH]`).
    fn stated_defaults(help: &str) -> Option<(String, String)> {
        let inside = help.split_once("[default: ")?.1.split_once(']')?.0;
        let (reference, quick) = inside.split_once("; quick: ").unwrap_or((inside, inside));
        Some((reference.to_string(), quick.to_string()))
    }

    /// The configuration `vkgan <command> --preset <preset> --<flag> <value>` trains or
    /// benchmarks.
    fn config_with(command: &str, preset: &str, flag: &str, value: &str) -> TrainConfig {
        let argv = ["vkgan", command, "--preset", preset, flag, value];
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")));
        match cli.command {
            Command::Train(args) => args.fresh_config(),
            Command::Bench(args) => args.config(),
            _ => unreachable!("only train and bench take a preset"),
        }
    }

    #[test]
    fn every_stated_default_is_the_presets_value() {
        // Flags of settings with no preset value: their help says what happens without them.
        let unset = [
            "preset",
            "data",
            "out",
            "resume",
            "init_from",
            "index",
            "no_progress",
            "json",
            "profile",
            "shapes",
            "augment",
        ];
        let cli = Cli::command();
        for command in ["train", "bench"] {
            let sub = cli.find_subcommand(command).unwrap();
            let mut checked = 0;
            for arg in sub.get_arguments() {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let id = arg.get_id().as_str();
                let flag = format!("--{}", arg.get_long().unwrap_or(id));
                let Some((reference, quick)) = stated_defaults(&help) else {
                    // Defaults of clap's own (bench's --steps) are shown by clap.
                    let shown = !arg.get_default_values().is_empty();
                    assert!(
                        unset.contains(&id) || shown,
                        "`vkgan {command} {flag}` states no default: {help}"
                    );
                    continue;
                };
                for (preset, value, cfg) in [
                    ("reference", &reference, Preset::Reference.config()),
                    ("quick", &quick, Preset::Quick.config()),
                ] {
                    assert_eq!(
                        config_with(command, preset, &flag, value),
                        cfg,
                        "`vkgan {command} {flag}` says the {preset} preset's value is {value}"
                    );
                }
                checked += 1;
            }
            let expected = if command == "train" { 30 } else { 8 };
            assert_eq!(checked, expected, "flags with stated defaults of {command}");
        }
    }

    #[test]
    fn the_schedule_group_is_what_a_resumed_run_may_change() {
        let group = ScheduleArgs::augment_args(clap::Command::new("schedule"));
        let flags: Vec<String> = group
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        assert_eq!(flags, RESUMABLE_FLAGS);
    }

    #[test]
    fn the_flags_set_the_fields_they_name() {
        let cli = Cli::try_parse_from([
            "vkgan",
            "train",
            "--g-features",
            "24",
            "--betas",
            "0.5,0.9",
            "--swd-every",
            "7",
            "--data",
            "faces",
        ])
        .unwrap();
        let Command::Train(args) = cli.command else {
            unreachable!()
        };
        let cfg = args.fresh_config();
        let expected = TrainConfig {
            model: ModelConfig {
                g_features: 24,
                ..ModelConfig::default()
            },
            betas: (0.5, 0.9),
            swd_every: 7,
            data: Some("faces".into()),
            ..TrainConfig::default()
        };
        assert_eq!(cfg, expected);
    }
}
