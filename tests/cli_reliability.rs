//! Issue 15's defects, each as the user met it: sizes without bounds, hostile checkpoint
//! files, non-finite values, SIGTERM/SIGINT, output order on a failing write, byte-identical
//! checkpoints, and checkpoint fallback in `generate` and `--resume`.

#[path = "common/cli.rs"]
mod cli;

use cli::{checkpoint, checkpoint_steps, s, scratch, train, vkgan};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use vkgan::persist::checkpoint::{read, write};

/// A tiny run of `steps` steps with a checkpoint every 2 steps, in `dir`.
fn trained(dir: &Path, steps: &str) {
    train(&[
        "--out",
        s(dir),
        "--steps",
        steps,
        "--checkpoint-every",
        "2",
        "--sample-every",
        steps,
    ])
    .expect_ok();
}

#[test]
fn unbounded_sizes_are_refused_at_once_naming_value_and_limit() {
    let tmp = scratch("bounds");
    let out = tmp.path().join("out");
    let began = Instant::now();
    let refuse = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["--out", s(&out), "--steps", "2"];
        args.extend_from_slice(extra);
        train(&args).expect_error(needles);
    };
    refuse(
        &["--mapping-layers", "100000000"],
        &["mapping_layers 100000000", "limit of 64"],
    );
    refuse(
        &["--accumulate", "1000000"],
        &["--accumulate 1000000", "limit of 1024"],
    );
    refuse(
        &["--batch", "1000000"],
        &["--batch 1000000", "limit of 4096"],
    );
    refuse(
        &["--g-max-features", "100000"],
        &["g_max_features 100000", "limit of 4096"],
    );
    refuse(&["--d-latent", "99999999"], &["d_latent 99999999", "4096"]);
    refuse(&["--image-size", "1024"], &["image size 1024", "8 to 256"]);
    train(&["--out", s(&out), "--steps", "99999999999"])
        .expect_error(&["--steps 99999999999", "limit of 1000000000"]);
    assert!(!out.exists());

    // The same values inside a checkpoint's config: generate and --resume refuse them too.
    let run = tmp.path().join("run");
    trained(&run, "2");
    let mut ck = read(&checkpoint(&run, 2)).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(ck.meta("config").unwrap()).unwrap();
    cfg["model"]["mapping_layers"] = 100_000_000.into();
    ck.set_meta("config", cfg.to_string());
    write(&checkpoint(&run, 4), &ck).unwrap();
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&checkpoint(&run, 4)),
        "--out",
        s(&tmp.path().join("g")),
    ])
    .expect_error(&[
        "checkpoint-00000004",
        "mapping_layers 100000000",
        "limit of 64",
    ]);
    vkgan(&["train", "--resume", s(&run), "--no-progress"])
        .expect_error(&["mapping_layers 100000000", "limit of 64"]);
    cfg["model"]["mapping_layers"] = 1.into();
    cfg["accumulate"] = 1_000_000.into();
    ck.set_meta("config", cfg.to_string());
    write(&checkpoint(&run, 4), &ck).unwrap();
    vkgan(&["train", "--resume", s(&run), "--no-progress"])
        .expect_error(&["--accumulate 1000000", "limit of 1024"]);

    // Seed lists and metrics counts.
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&run),
        "--seeds",
        "0-100000",
        "--out",
        s(&tmp.path().join("g")),
    ])
    .expect_error(&["100001 seeds", "limit of 10000"]);
    vkgan(&["mix", "--checkpoint", s(&run), "--rows", "0-99"])
        .expect_error(&["100 seeds", "limit of 32"]);
    vkgan(&["metrics", "--checkpoint", s(&run), "--num", "1000000"])
        .expect_error(&["--num 1000000", "limit of 10000"]);
    assert!(!tmp.path().join("g").exists());
    // Every refusal came before any real work (the one tiny training run included).
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn hostile_checkpoint_files_are_refused_before_their_body_is_read() {
    let tmp = scratch("hostile");
    let out = tmp.path().join("g");
    let generate = |ck: &Path| vkgan(&["generate", "--checkpoint", s(ck), "--out", s(&out)]);
    let began = Instant::now();
    generate(Path::new("/dev/zero")).expect_error(&["/dev/zero", "header length 0"]);
    let sparse = tmp.path().join("sparse.safetensors");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    generate(&sparse).expect_error(&["sparse.safetensors", "header length 0"]);
    // A valid-looking header claiming far more data than the file holds.
    let header = br#"{"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    let claims = tmp.path().join("claims.safetensors");
    std::fs::write(&claims, &bytes).unwrap();
    generate(&claims).expect_error(&["describes 4294967296 bytes", "holds 0"]);
    // Each took no longer than starting the device (reading 2 GiB took 10.7 s before).
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    assert!(!out.exists());
}

#[test]
fn non_finite_values_are_refused_where_they_are_read() {
    let tmp = scratch("finite");
    let out = tmp.path().join("out");
    for (flag, value) in [
        ("--r1-gamma", "nan"),
        ("--r1-gamma", "inf"),
        ("--lr", "inf"),
        ("--lr", "nan"),
        ("--mapping-lr", "inf"),
        ("--ema-kimg", "inf"),
    ] {
        let arg = format!("{flag}={value}");
        train(&["--out", s(&out), "--steps", "2", &arg]).expect_error(&[flag, "finite"]);
    }
    assert!(!out.exists());
    let run = tmp.path().join("run");
    trained(&run, "2");
    let g = tmp.path().join("g");
    for psi in ["nan", "inf", "-inf"] {
        let arg = format!("--truncation={psi}");
        vkgan(&["generate", "--checkpoint", s(&run), &arg, "--out", s(&g)])
            .expect_error(&["--truncation", "finite"]);
        vkgan(&["mix", "--checkpoint", s(&run), &arg, "--out", s(&g)])
            .expect_error(&["--truncation", "finite"]);
    }
    assert!(!g.exists());
}

/// Starts a long training run, waits for its first step, sends `signal` and returns the exit
/// code, stderr and the run directory's checkpoint steps.
fn interrupted(tmp: &TempDir, signal: &str) -> (Option<i32>, String, Vec<u64>) {
    let out = tmp.path().join(signal);
    let mut args = vec!["train".to_string()];
    args.extend(cli::TINY.iter().map(|a| a.to_string()));
    for a in ["--out", s(&out), "--steps", "100000", "--sample-every", "1"] {
        args.push(a.into());
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkgan"))
        .args(&args)
        .env("VKGAN_VALIDATE", "1")
        .env("VKGAN_VALIDATE_ECHO", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the run ended before its first step:\n{seen}");
        }
        seen.push_str(&line);
        if line.starts_with("step 1/") {
            break;
        }
    }
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(!seen.contains("vulkan validation:"), "{seen}");
    (status.code(), seen, checkpoint_steps(&out))
}

#[test]
fn sigterm_and_sigint_finish_the_step_write_a_checkpoint_and_exit_0() {
    let tmp = scratch("signals");
    for signal in ["TERM", "INT"] {
        let (code, stderr, steps) = interrupted(&tmp, signal);
        assert_eq!(code, Some(0), "SIG{signal}:\n{stderr}");
        assert!(stderr.contains("stopping after this step"), "{stderr}");
        let last = *steps
            .last()
            .unwrap_or_else(|| panic!("SIG{signal} left no checkpoint:\n{stderr}"));
        assert!(last >= 1, "{stderr}");
        let named = format!("checkpoint-{last:08}.safetensors");
        assert!(stderr.contains(&named), "SIG{signal}:\n{stderr}");
        let out = tmp.path().join(signal);
        assert!(out.join("samples.png").exists());
        read(&checkpoint(&out, last)).unwrap();
    }
}

#[test]
fn the_checkpoint_is_written_before_plots_that_fail() {
    // loss.png cannot be written (a folder is in its way), as on a full disk: the run fails,
    // but only after the final checkpoint is safe.
    let tmp = scratch("order");
    let out = tmp.path().join("run");
    std::fs::create_dir_all(out.join("loss.png")).unwrap();
    std::fs::write(out.join("loss.png").join("keep"), b"").unwrap();
    let run = train(&["--out", s(&out), "--steps", "2", "--sample-every", "2"]);
    run.expect_error(&["loss.png"]);
    assert_eq!(checkpoint_steps(&out), vec![2], "{run}");
    read(&checkpoint(&out, 2)).unwrap();
}

#[test]
fn identical_runs_write_byte_identical_checkpoints() {
    let tmp = scratch("bytes");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    trained(&a, "2");
    trained(&b, "2");
    let (x, y) = (
        std::fs::read(checkpoint(&a, 2)).unwrap(),
        std::fs::read(checkpoint(&b, 2)).unwrap(),
    );
    assert!(
        x == y,
        "two identical runs wrote different checkpoint bytes"
    );
}

#[test]
fn generate_and_resume_name_every_unreadable_checkpoint_they_skip() {
    let tmp = scratch("fallback");
    let run = tmp.path().join("run");
    trained(&run, "4");
    assert_eq!(checkpoint_steps(&run), vec![2, 4]);
    let newest = checkpoint(&run, 4);
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let g = tmp.path().join("g");
    let done = vkgan(&[
        "generate",
        "--checkpoint",
        s(&run),
        "--seeds",
        "0-1",
        "--out",
        s(&g),
    ])
    .expect_ok();
    let warning = done
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: skipping unreadable checkpoint"))
        .unwrap_or_else(|| panic!("no warning:\n{done}"));
    assert!(warning.contains("checkpoint-00000004"), "{done}");
    // The images are those of the newest good checkpoint.
    let direct = tmp.path().join("direct");
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&checkpoint(&run, 2)),
        "--seeds",
        "0-1",
        "--out",
        s(&direct),
    ])
    .expect_ok();
    assert_eq!(
        std::fs::read(g.join("seed0001.png")).unwrap(),
        std::fs::read(direct.join("seed0001.png")).unwrap()
    );

    // With every checkpoint unreadable, both name the newest and why, not "no checkpoint".
    std::fs::write(checkpoint(&run, 2), b"junk").unwrap();
    vkgan(&["train", "--resume", s(&run), "--no-progress"]).expect_error(&[
        "none of the 2 checkpoints is readable",
        "checkpoint-00000004",
    ]);
    vkgan(&["generate", "--checkpoint", s(&run), "--out", s(&g)]).expect_error(&[
        "none of the 2 checkpoints is readable",
        "checkpoint-00000004",
    ]);
}
