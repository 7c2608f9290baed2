//! The `vkgan` command line: argument parsing and reporting; the work is in the library.

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vkgan::data::{Dataset, Source};
use vkgan::infer::bench::{bench, profile_table, shape_table, BenchOptions, BenchReport};
use vkgan::infer::generate::{
    check_truncation, figure_scale, parse_seeds, parse_seeds_at_most, write_images, MAX_MIX_SEEDS,
    MAX_SCALE,
};
use vkgan::infer::interpolate::{self, Space, Walk, WalkOutput};
use vkgan::infer::load::load_generator;
use vkgan::infer::measure::swd_against;
use vkgan::infer::mix::mixing_figure;
use vkgan::outputs::animation::{Format, MAX_FPS};
use vkgan::outputs::images::save_png;
use vkgan::persist::checkpoint::Checkpoint;
use vkgan::persist::run_dir;
use vkgan::train::config::{Preset, TrainConfig, MAX_STEPS, MAX_SWD_NUM};
use vkgan::train::run::{checkpoint_dir, open_dataset, train, RunOptions};
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
    Train(Box<TrainArgs>),
    /// Write one PNG per seed from a checkpoint's generator.
    Generate(GenerateArgs),
    /// Write the style-mixing figure: coarse styles from row seeds, fine from column seeds.
    Mix(MixArgs),
    /// Write a looping animation (GIF, APNG or PNG frames) that walks through the seeds.
    Interpolate(InterpolateArgs),
    /// Multi-scale sliced Wasserstein distance between generated and real images.
    Metrics(MetricsArgs),
    /// Time training steps on synthetic data: images/s of the plain and the regularized step,
    /// peak device memory, and with --profile the time per kernel.
    Bench(BenchArgs),
}

/// Training flags. Unset flags take the preset's values (the reference's by default); with
/// --resume they take the run's own.
#[derive(Args)]
struct TrainArgs {
    /// Named settings to start from: `reference` (the default) or `quick` (small and fast).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Folder of images (jpg, png, webp, bmp, searched recursively); default: the embedded
    /// 1,412 Noto Emoji.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory; default runs/<UTC timestamp>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the newest checkpoint of this run directory, with its settings.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Vulkan device index (see `vkgan devices`).
    #[arg(long)]
    device: Option<usize>,
    /// No progress bar: one line per sample interval.
    #[arg(long)]
    no_progress: bool,
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    image_size: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    d_latent: Option<usize>,
    #[arg(long)]
    mapping_layers: Option<usize>,
    #[arg(long)]
    g_features: Option<usize>,
    #[arg(long)]
    g_max_features: Option<usize>,
    #[arg(long)]
    d_features: Option<usize>,
    #[arg(long)]
    d_max_features: Option<usize>,
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long)]
    mapping_lr: Option<f32>,
    /// Adam betas as `B1,B2`.
    #[arg(long, value_parser = parse_betas)]
    betas: Option<(f32, f32)>,
    #[arg(long)]
    r1_gamma: Option<f32>,
    #[arg(long)]
    r1_interval: Option<u64>,
    #[arg(long)]
    plp_interval: Option<u64>,
    #[arg(long)]
    plp_after: Option<u64>,
    #[arg(long)]
    plp_beta: Option<f32>,
    #[arg(long)]
    style_mixing_prob: Option<f32>,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long)]
    accumulate: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Half-life of the generator's moving average, in thousands of images.
    #[arg(long)]
    ema_kimg: Option<f32>,
    #[arg(long)]
    sample_every: Option<u64>,
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// How many checkpoints to keep.
    #[arg(long)]
    keep_checkpoints: Option<usize>,
    /// Steps between MS-SWD measurements into metrics.jsonl and swd.png (0: never).
    #[arg(long)]
    swd_every: Option<u64>,
    /// Images on each side of those measurements.
    #[arg(long)]
    swd_num: Option<usize>,
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
    /// A vkgan checkpoint, a run directory (its newest checkpoint), or a PyTorch reference
    /// state dict in safetensors.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Seeds: 0-15, 3, 1,5,9 ...
    #[arg(long, default_value = "0-15")]
    seeds: String,
    /// Truncation psi (1 = none).
    #[arg(long, default_value_t = 1.0)]
    truncation: f32,
    #[arg(long, default_value = "generated")]
    out: PathBuf,
    /// Also write grid.png with every image.
    #[arg(long)]
    grid: bool,
    /// Enlarge every image N times (nearest neighbour). Default: the model's own resolution
    /// for the per-seed images, about 128 pixels an image for grid.png.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SCALE as i64))]
    scale: Option<u32>,
    #[arg(long)]
    device: Option<usize>,
}

#[derive(Args)]
struct MetricsArgs {
    /// As for `generate`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Real images to compare with; default: the embedded emoji set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Images on each side.
    #[arg(long, default_value_t = 2048)]
    num: usize,
    /// Seed of the patch positions and projections.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One line of JSON: {"swd_levels": [...], "swd_mean": ...}.
    #[arg(long)]
    json: bool,
    #[arg(long)]
    device: Option<usize>,
}

#[derive(Args)]
struct MixArgs {
    /// As for `generate`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Seeds of the rows (their coarse styles).
    #[arg(long, default_value = "0-3")]
    rows: String,
    /// Seeds of the columns (their fine styles).
    #[arg(long, default_value = "4-7")]
    cols: String,
    /// Generator blocks taking the row's style (default: half of them).
    #[arg(long)]
    crossover: Option<usize>,
    #[arg(long, default_value_t = 1.0)]
    truncation: f32,
    #[arg(long, default_value = "mixing.png")]
    out: PathBuf,
    /// Enlarge every cell N times (nearest neighbour); default: about 128 pixels a cell.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SCALE as i64))]
    scale: Option<u32>,
    #[arg(long)]
    device: Option<usize>,
}

#[derive(Args)]
struct InterpolateArgs {
    /// As for `generate`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The seeds to walk through, in order, then back to the first (two or more).
    #[arg(long, default_value = "0-3")]
    seeds: String,
    /// Frames from one seed to the next.
    #[arg(long, default_value_t = interpolate::DEFAULT_FRAMES)]
    frames: usize,
    /// Interpolate the mapping outputs w (linearly) or the latents z (along the sphere).
    #[arg(long, value_enum, default_value_t = Space::W)]
    space: Space,
    #[arg(long, default_value_t = 1.0)]
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
    #[arg(long, default_value = "walk.gif")]
    out: PathBuf,
    /// Also write a PNG of 8 evenly spaced frames side by side.
    #[arg(long, value_name = "FILE")]
    strip: Option<PathBuf>,
    #[arg(long)]
    device: Option<usize>,
}

/// Benchmark flags; the model and hyper-parameters are the reference's unless set.
#[derive(Args)]
struct BenchArgs {
    #[arg(long)]
    image_size: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    d_latent: Option<usize>,
    /// Timed steps of each kind.
    #[arg(long, default_value_t = 5)]
    steps: u64,
    /// Untimed steps of each kind first.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    #[arg(long)]
    device: Option<usize>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => devices(),
        Command::Train(args) => train_command(*args),
        Command::Generate(args) => generate_command(args),
        Command::Mix(args) => mix_command(args),
        Command::Interpolate(args) => interpolate_command(args),
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

/// Applies every flag the user set to `cfg`.
fn apply_flags(args: &TrainArgs, cfg: &mut TrainConfig) {
    macro_rules! set {
        ($($flag:ident => $($field:ident).+;)*) => {
            $(if let Some(v) = args.$flag.clone() { cfg.$($field).+ = v; })*
        };
    }
    set! {
        steps => steps;
        image_size => model.image_size;
        batch => batch;
        d_latent => model.d_latent;
        mapping_layers => model.mapping_layers;
        g_features => model.g_features;
        g_max_features => model.g_max_features;
        d_features => model.d_features;
        d_max_features => model.d_max_features;
        lr => lr;
        mapping_lr => mapping_lr;
        betas => betas;
        r1_gamma => r1_gamma;
        r1_interval => r1_interval;
        plp_interval => plp_interval;
        plp_after => plp_after;
        plp_beta => plp_beta;
        style_mixing_prob => style_mixing_prob;
        accumulate => accumulate;
        seed => seed;
        ema_kimg => ema_kimg;
        sample_every => sample_every;
        checkpoint_every => checkpoint_every;
        keep_checkpoints => keep_checkpoints;
        swd_every => swd_every;
        swd_num => swd_num;
    }
    if args.data.is_some() {
        cfg.data = args.data.clone();
    }
}

/// On resume only the schedule may change; a flag that would change the model or the
/// optimisation is an error naming the field.
fn check_resume_flags(args: &TrainArgs, run: &TrainConfig) -> Result<()> {
    let mut wanted = run.clone();
    apply_flags(args, &mut wanted);
    wanted.steps = run.steps;
    wanted.sample_every = run.sample_every;
    wanted.checkpoint_every = run.checkpoint_every;
    wanted.keep_checkpoints = run.keep_checkpoints;
    wanted.swd_every = run.swd_every;
    wanted.swd_num = run.swd_num;
    if wanted == *run && args.preset.is_none() {
        return Ok(());
    }
    let a = serde_json::to_value(run)?;
    let b = serde_json::to_value(&wanted)?;
    let field = differing_field(&a, &b, "").unwrap_or_else(|| "preset".into());
    bail!(
        "the run being resumed was trained with a different `{field}`: a resumed run keeps its \
         own settings (only --steps, --sample-every, --checkpoint-every, --keep-checkpoints, \
         --swd-every and --swd-num may change)"
    )
}

fn differing_field(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            x.iter().find_map(|(k, v)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                differing_field(v, y.get(k)?, &p)
            })
        }
        _ if a != b => Some(path.to_string()),
        _ => None,
    }
}

fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(utc_timestamp(secs))
}

/// `YYYYmmdd-HHMMSS` in UTC (days-to-civil conversion of the proleptic Gregorian calendar).
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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

fn train_command(args: TrainArgs) -> Result<()> {
    let stop = stop_on_signal()?;
    let (state_source, cfg, out) = match &args.resume {
        Some(dir) => resumed_run(&args, dir)?,
        None => fresh_run(&args)?,
    };
    cfg.validate().map_err(|e| anyhow!(e))?;
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
    ensure_writable(&out)?;
    // The state lives on the context the run makes; build it there.
    let ctx = Context::new(&ContextOptions::from_env(args.device)?)?;
    let state = match state_source {
        Some(ck) => {
            let mut state = TrainState::from_checkpoint(&ctx, &ck)?;
            state.cfg = cfg.clone();
            state
        }
        None => TrainState::new(&ctx, &cfg)?,
    };
    if state.step >= cfg.steps {
        eprintln!(
            "nothing to do: the run is at step {} of {}",
            state.step, cfg.steps
        );
        return Ok(());
    }
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    announce_training(&cfg, &dataset, &ctx, &out);
    let options = RunOptions {
        out: out.clone(),
        progress: !args.no_progress,
        stop,
    };
    let summary = train(&ctx, state, dataset, &options)?;
    for line in summary.report(&out) {
        eprintln!("{line}");
    }
    Ok(())
}

/// The flag a first SIGINT or SIGTERM sets; a second one exits at once.
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
    Ok(stop)
}

/// The newest checkpoint of run `dir`, its settings with the flags applied, and `dir`.
fn resumed_run(args: &TrainArgs, dir: &Path) -> Result<(Option<Checkpoint>, TrainConfig, PathBuf)> {
    if let Some(out) = args.out.as_ref().filter(|out| !same_dir(out, dir)) {
        bail!(
            "--out {} cannot be combined with --resume {}: a resumed run continues in its own \
             directory",
            out.display(),
            dir.display()
        );
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
    let mut cfg = TrainState::config_of(&latest.checkpoint)?;
    check_resume_flags(args, &cfg)?;
    apply_flags(args, &mut cfg);
    Ok((Some(latest.checkpoint), cfg, dir.to_path_buf()))
}

/// The preset with the flags applied, and an output directory that holds no other run.
fn fresh_run(args: &TrainArgs) -> Result<(Option<Checkpoint>, TrainConfig, PathBuf)> {
    let mut cfg = args.preset.unwrap_or(Preset::Reference).config();
    apply_flags(args, &mut cfg);
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
    Ok((None, cfg, out))
}

/// The line that says what is about to be trained, on what and where.
fn announce_training(cfg: &TrainConfig, dataset: &Dataset, ctx: &Context, out: &Path) {
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
    eprintln!(
        "training {}x{} StyleGAN2 on {data} ({} images{skipped}) on {} into {}",
        cfg.model.image_size,
        cfg.model.image_size,
        dataset.len(),
        ctx.info().name,
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
    let ctx = Context::new(&ContextOptions::from_env(args.device)?)?;
    let gen = load_generator(&ctx, &args.checkpoint)?;
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
    let ctx = Context::new(&ContextOptions::from_env(args.device)?)?;
    let gen = load_generator(&ctx, &args.checkpoint)?;
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
    let walk = Walk::new(seeds, args.frames, args.space, args.truncation)?;
    let out = WalkOutput {
        format: Format::resolve(args.format.as_deref(), &args.out)?,
        path: args.out,
        scale: args.scale,
        fps: args.fps,
        strip: args.strip,
    };
    let ctx = Context::new(&ContextOptions::from_env(args.device)?)?;
    let gen = load_generator(&ctx, &args.checkpoint)?;
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

fn bench_command(args: BenchArgs) -> Result<()> {
    let mut cfg = TrainConfig::default();
    if let Some(v) = args.image_size {
        cfg.model.image_size = v;
    }
    if let Some(v) = args.batch {
        cfg.batch = v;
    }
    if let Some(v) = args.d_latent {
        cfg.model.d_latent = v;
    }
    cfg.validate().map_err(|e| anyhow!(e))?;
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    for (name, v) in [("steps", args.steps), ("warmup", args.warmup)] {
        if v > MAX_STEPS {
            bail!("--{name} {v} is larger than the limit of {MAX_STEPS}");
        }
    }
    let ctx = Context::new(&ContextOptions::from_env(args.device)?)?;
    let r = cfg.model.image_size;
    eprintln!(
        "benchmarking {r}x{r}, batch {}, d_latent {}, {} mapping layers on {} ({}): {} warm-up \
         and {} timed steps of each kind",
        cfg.batch,
        cfg.model.d_latent,
        cfg.model.mapping_layers,
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
    let ctx = Context::new(&ContextOptions::from_env(args.device)?)?;
    let gen = load_generator(&ctx, &args.checkpoint)?;
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

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "19700101-000000");
        assert_eq!(utc_timestamp(1_795_901_696), "20261128-213456");
        assert_eq!(utc_timestamp(951_827_696), "20000229-123456");
    }
}
