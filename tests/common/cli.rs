//! Running the `vkgan` binary as a user would, for the CLI tests: scratch directories, a tiny
//! model configuration, and checks on what a command printed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// Flags for a model small enough that a few training steps take about a second on lavapipe.
pub const TINY: &[&str] = &[
    "--preset",
    "quick",
    "--image-size",
    "8",
    "--batch",
    "4",
    "--d-latent",
    "8",
    "--mapping-layers",
    "1",
    "--g-features",
    "4",
    "--g-max-features",
    "8",
    "--d-features",
    "4",
    "--d-max-features",
    "8",
    "--no-progress",
];

/// Flags whose window from step 3 to 6 holds R1 steps (indices 3 and 5), the first
/// path-length step (index 3, which only starts the running mean) and a second one (index 5,
/// which uses it), with checkpoints every 3 steps: what the bit-exact resume tests stop in.
pub const PENALTIES: &[&str] = &[
    "--r1-interval",
    "2",
    "--plp-after",
    "1",
    "--plp-interval",
    "2",
    "--sample-every",
    "3",
    "--checkpoint-every",
    "3",
];

/// Asserts that two checkpoints hold the same tensors, bit for bit, and the same metadata:
/// what a resumed run must end with against an uninterrupted one.
pub fn assert_bit_identical(
    a: &vkgan::persist::checkpoint::Checkpoint,
    b: &vkgan::persist::checkpoint::Checkpoint,
) {
    use vkgan::persist::checkpoint::{Tensor, TensorData};
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    let bits = |t: &Tensor| -> Vec<u64> {
        match &t.data {
            TensorData::F32(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as u64).collect(),
            TensorData::U64(v) => v.clone(),
        }
    };
    for (name, ta) in &a.tensors {
        let tb = &b.tensors[name];
        assert_eq!(ta.shape, tb.shape, "{name}");
        assert!(bits(ta) == bits(tb), "{name} differs after resume");
    }
    assert_eq!(a.metadata, b.metadata);
}

/// One step of the tiny model into `out` with `--ema-rampup rampup`; returns its checkpoint.
pub fn one_step_with_rampup(out: &Path, rampup: &str) -> PathBuf {
    train(&[
        "--out",
        s(out),
        "--steps",
        "1",
        "--sample-every",
        "1",
        "--ema-rampup",
        rampup,
    ])
    .expect_ok();
    checkpoint(out, 1)
}

/// A fresh directory under the system temp dir named after the test, removed on drop.
pub fn scratch(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vkgan-cli-{name}-"))
        .tempdir()
        .unwrap()
}

/// What a run of the binary left: exit status and both streams as text.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    /// Panics with everything printed unless the command succeeded.
    pub fn expect_ok(self) -> Run {
        assert!(self.ok(), "vkgan failed:\n{self}");
        self
    }

    /// Checks that the command failed with exit code 1 and one clear `error:` line on stderr
    /// (warnings before it are allowed) that contains every one of `needles`; returns that
    /// line.
    pub fn expect_error(&self, needles: &[&str]) -> String {
        assert_eq!(self.output.status.code(), Some(1), "{self}");
        assert!(!self.stderr.contains("panicked"), "panic:\n{self}");
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "panic:\n{self}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "not one error line:\n{self}");
        let last = lines.last().copied().unwrap_or_default();
        assert!(
            last.starts_with("error: "),
            "error is not the last line:\n{self}"
        );
        for n in needles {
            assert!(last.contains(n), "error line lacks `{n}`:\n{self}");
        }
        last.to_string()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout\n{}--- stderr\n{}",
            self.output.status, self.stdout, self.stderr
        )
    }
}

/// Runs `vkgan args...` with the Vulkan validation layer on, and fails the test if the layer
/// reported anything.
pub fn vkgan<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_vkgan"))
        .args(args)
        .env("VKGAN_VALIDATE", "1")
        .env("VKGAN_VALIDATE_ECHO", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("vkgan runs");
    validated(output)
}

/// What a command left, failing the test if the validation layer reported anything (the
/// command must have run vkgan with `VKGAN_VALIDATE_ECHO=1`).
pub fn validated(output: Output) -> Run {
    let run = Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    };
    assert!(
        !run.stderr.contains("vulkan validation:"),
        "the validation layer complained:\n{run}"
    );
    run
}

/// The arguments of `vkgan train` with the tiny model plus `extra` flags (which replace tiny
/// ones of the same name: clap refuses a flag given twice).
pub fn train_args(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["train".to_string()];
    let mut tiny = TINY.iter().peekable();
    while let Some(&flag) = tiny.next() {
        let value = tiny.next_if(|v| !v.starts_with("--")).copied();
        if !extra.contains(&flag) {
            args.push(flag.into());
            args.extend(value.map(String::from));
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `vkgan train` with the tiny model plus `extra` flags (see [`train_args`]).
pub fn train(extra: &[&str]) -> Run {
    vkgan(&train_args(extra))
}

/// A path as a `&str` for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// `dir/checkpoints/checkpoint-<step>.safetensors`.
pub fn checkpoint(dir: &Path, step: u64) -> PathBuf {
    dir.join("checkpoints")
        .join(format!("checkpoint-{step:08}.safetensors"))
}

/// The steps of the checkpoint files in `dir/checkpoints`, sorted.
pub fn checkpoint_steps(dir: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = std::fs::read_dir(dir.join("checkpoints"))
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_prefix("checkpoint-")?
                        .strip_suffix(".safetensors")?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    steps.sort();
    steps
}

/// Writes a small PNG with a colour pattern depending on `k`.
pub fn write_png(path: &Path, w: u32, h: u32, k: u8) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 19 + k as u32 * 50) as u8,
            (y * 23 + k as u32 * 30) as u8,
            k.wrapping_mul(77),
        ])
    });
    img.save(path).unwrap();
}

/// Decodes a PNG to its RGB pixels and size.
pub fn decode(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
        .to_rgb8()
}
