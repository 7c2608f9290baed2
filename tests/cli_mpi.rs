//! Data-parallel training under a real `mpirun` (Open MPI), two ranks on this machine's
//! device: the 2-rank run against a single process of the same global batch, bit-exact
//! resume, rank 0 alone writing, refused mismatches, a killed or failing rank ending the job,
//! and a clean stop on a signal. Built only with `--features mpi`; `scripts/test-drivers.sh`
//! runs it.

#![cfg(feature = "mpi")]

#[path = "common/cli.rs"]
mod cli;

use cli::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vkgan::persist::checkpoint::{self, Checkpoint, TensorData};

/// A batch that splits into whole minibatch-stddev groups over two ranks.
const BATCH: &[&str] = &["--batch", "8"];

/// R1 on every step, and path length from the second step (which starts its running mean)
/// so that the third step uses it.
const EVERY_PENALTY: &[&str] = &[
    "--r1-interval",
    "1",
    "--plp-after",
    "0",
    "--plp-interval",
    "1",
];

/// `mpirun` with one app context per element of `ranks` (each one rank running `vkgan` with
/// those arguments), as the tests' user would start it on a CPU device: no core binding (each
/// rank's lavapipe threads need every core) and ranks that yield while they wait.
fn mpirun_command(ranks: &[Vec<String>]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "--bind-to", "none"])
        .args(["--mca", "mpi_yield_when_idle", "1"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("VKGAN_VALIDATE", "1")
        .env("VKGAN_VALIDATE_ECHO", "1")
        .env_remove("RUST_BACKTRACE");
    for (k, args) in ranks.iter().enumerate() {
        if k > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", "1", env!("CARGO_BIN_EXE_vkgan")])
            .args(args);
    }
    cmd
}

fn mpirun(ranks: &[Vec<String>]) -> Run {
    validated(mpirun_command(ranks).output().expect("mpirun runs"))
}

/// The same arguments for both ranks.
fn two_ranks(extra: &[&str]) -> Vec<Vec<String>> {
    vec![train_args(extra), train_args(extra)]
}

fn f32s<'a>(ck: &'a Checkpoint, name: &str) -> &'a [f32] {
    match &ck.tensors[name].data {
        TensorData::F32(v) => v,
        _ => panic!("{name} is not f32"),
    }
}

/// The golden contract's rule for parameters after `k + 1` iterations of Adam at `lr`:
/// within `2e-3 * max|r| + 1e-5 * (group max)`, or, for at most 0.5% of the group's elements,
/// within `2 * lr * (k + 1)`. Returns (the worst error of the elements within the first
/// tolerance as a fraction of it, how many elements are outside it, of how many).
fn after_step_rule(
    group: &str,
    pairs: &[(&[f32], &[f32])],
    lr: f32,
    k: usize,
) -> (f64, usize, usize) {
    let group_max = pairs
        .iter()
        .flat_map(|(_, r)| r.iter())
        .fold(0.0f64, |m, &x| m.max(x.abs() as f64));
    let (mut broken, mut total, mut worst) = (0usize, 0usize, 0.0f64);
    for (got, want) in pairs {
        let max_r = want.iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64));
        let tol = 2e-3 * max_r + 1e-5 * group_max;
        for (&g, &w) in got.iter().zip(want.iter()) {
            let err = (g as f64 - w as f64).abs();
            total += 1;
            if err > tol {
                broken += 1;
                assert!(
                    err <= 2.0 * lr as f64 * (k + 1) as f64,
                    "{group}: an element differs by {err}, past 2·lr·(k+1)"
                );
            } else {
                worst = worst.max(err / tol.max(f64::MIN_POSITIVE));
            }
        }
    }
    assert!(
        broken as f64 <= 0.005 * total as f64,
        "{group}: {broken} of {total} elements break the relative rule"
    );
    (worst, broken, total)
}

#[test]
fn two_ranks_match_one_process_of_the_same_global_batch() {
    let single = scratch("mpi-single");
    let ranks = scratch("mpi-ranks");
    let elsewhere = scratch("mpi-rank1-out");
    let rank1_out = elsewhere.path().join("never-written");
    let mut flags: Vec<&str> = vec!["--steps", "3", "--checkpoint-every", "3"];
    flags.extend(BATCH);
    flags.extend(EVERY_PENALTY);
    let with_out = |out: &Path| {
        let mut f = flags.clone();
        f.extend(["--out", s(out)]);
        train_args(&f)
    };
    train(&[&flags[..], &["--out", s(single.path())]].concat()).expect_ok();
    // Rank 1 is told another folder: it must write nothing there (rank 0 writes the run).
    let run = mpirun(&[with_out(ranks.path()), with_out(&rank1_out)]).expect_ok();
    assert!(run.stderr.contains("on 2 ranks"), "{run}");
    assert!(run.stderr.contains("all-reduce over 2 ranks"), "{run}");
    assert!(!rank1_out.exists(), "rank 1 wrote {}", rank1_out.display());

    let a = checkpoint::read(&checkpoint(single.path(), 3)).unwrap();
    let b = checkpoint::read(&checkpoint(ranks.path(), 3)).unwrap();
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    for key in ["step", "plp_steps", "adam_steps.d", "adam_steps.g", "ada.p"] {
        assert_eq!(a.meta(key).unwrap(), b.meta(key).unwrap(), "{key}");
    }
    // Every parameter of the three networks and of the moving average, by group.
    for (prefix, lr) in [
        ("discriminator.", 2e-3),
        ("generator.", 2e-3),
        ("mapping_network.", 2e-4),
        ("ema.generator.", 2e-3),
        ("ema.mapping_network.", 2e-4),
    ] {
        let pairs: Vec<(&[f32], &[f32])> = a
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(|k| (f32s(&b, k), f32s(&a, k)))
            .collect();
        assert!(!pairs.is_empty(), "no tensors under {prefix}");
        let (worst, broken, total) = after_step_rule(prefix, &pairs, lr, 2);
        eprintln!("{prefix} worst {worst:.2e} of tolerance; {broken} of {total} past it");
    }
    // The path-length running sum and the running mean of w are reduced over the ranks.
    for name in ["plp.exp_sum_a", "w_avg"] {
        let pair = [(f32s(&b, name), f32s(&a, name))];
        let (_, broken, _) = after_step_rule(name, &pair, 0.0, 0);
        assert_eq!(broken, 0, "{name}");
    }
}

#[test]
fn a_resumed_two_rank_run_matches_an_uninterrupted_one_bit_for_bit() {
    let straight = scratch("mpi-straight");
    let resumed = scratch("mpi-resumed");
    let fresh = |out: &Path, steps: &str| {
        let mut f: Vec<&str> = vec!["--steps", steps, "--out", s(out)];
        f.extend(BATCH);
        f.extend(PENALTIES);
        mpirun(&two_ranks(&f)).expect_ok()
    };
    fresh(straight.path(), "6");
    fresh(resumed.path(), "3");
    let resume: Vec<String> = ["train", "--resume", s(resumed.path()), "--steps", "6"]
        .iter()
        .chain(&["--no-progress"])
        .map(|a| a.to_string())
        .collect();
    mpirun(&[resume.clone(), resume]).expect_ok();
    let a = checkpoint::read(&checkpoint(straight.path(), 6)).unwrap();
    let b = checkpoint::read(&checkpoint(resumed.path(), 6)).unwrap();
    assert_bit_identical(&a, &b);
}

#[test]
fn ranks_started_differently_refuse_to_train_and_write_nothing() {
    let out = scratch("mpi-differ");
    let run_dir = out.path().join("run");
    let base = |extra: &[&str]| {
        let mut f: Vec<&str> = vec!["--steps", "2", "--out", s(&run_dir)];
        f.extend(BATCH);
        f.extend(extra);
        train_args(&f)
    };
    let run = mpirun(&[base(&[]), base(&["--lr", "0.001"])]);
    assert!(!run.ok(), "{run}");
    assert!(
        run.stderr
            .contains("rank 1 was started with other settings than rank 0: its settings differs"),
        "{run}"
    );
    assert!(checkpoint_steps(&run_dir).is_empty());
    assert!(!run_dir.join("config.json").exists());

    let images = out.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for k in 0..8 {
        write_png(&images.join(format!("{k}.png")), 8, 8, k);
    }
    let run = mpirun(&[base(&[]), base(&["--data", s(&images)])]);
    assert!(!run.ok(), "{run}");
    assert!(run.stderr.contains("its dataset differs"), "{run}");
}

/// Waits until `path` exists (or panics after `limit`).
fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to end, at most `limit`; returns how long it took and what it printed.
fn wait_ended(mut child: Child, limit: Duration) -> (Duration, std::process::Output) {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return (start.elapsed(), child.wait_with_output().unwrap());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the job did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A long 2-rank run into `out` whose rank 1 is told `--out rank1_out` (never written, but
/// it tells rank 1's process apart), started and in its training loop.
fn long_run(out: &Path, rank1_out: &Path, kill_after: Option<&str>) -> Child {
    let args = |o: &Path| {
        let mut f: Vec<&str> = vec!["--steps", "100000", "--out", s(o)];
        f.extend(BATCH);
        f.extend(["--sample-every", "1", "--checkpoint-every", "100000"]);
        train_args(&f)
    };
    let mut cmd = mpirun_command(&[args(out), args(rank1_out)]);
    if let Some(seconds) = kill_after {
        // How long mpirun waits before it passes SIGTERM on, and again before SIGKILL.
        cmd.env("OMPI_MCA_odls_base_sigkill_timeout", seconds);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&out.join("samples.png"), Duration::from_secs(60));
    child
}

/// The PID of the process whose command line contains `needle`.
fn pid_of(needle: &str) -> u32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && !cmdline.starts_with("mpirun") {
            return pid;
        }
    }
    panic!("no process runs with {needle}");
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_killed_rank_ends_the_job_within_seconds_naming_it() {
    let out = scratch("mpi-kill");
    let rank1_out = out.path().join("rank1-kill");
    let child = long_run(&out.path().join("run"), &rank1_out, None);
    signal(pid_of(s(&rank1_out)), "KILL");
    let (took, output) = wait_ended(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{stderr}");
    assert!(stderr.contains("rank 1"), "{stderr}");
}

#[test]
fn a_failing_rank_ends_the_job_naming_itself() {
    let out = scratch("mpi-fail");
    let missing = out.path().join("no-such-images");
    let args = |extra: &[&str]| {
        let mut f: Vec<&str> = vec!["--steps", "2", "--out", s(out.path())];
        f.extend(BATCH);
        f.extend(extra);
        train_args(&f)
    };
    let start = Instant::now();
    let run = mpirun(&[args(&[]), args(&["--data", s(&missing)])]);
    assert!(!run.ok(), "{run}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(
        run.stderr.contains("error: rank 1 of 2: data directory"),
        "{run}"
    );
}

#[test]
fn a_signal_to_the_job_stops_every_rank_after_one_step_with_one_checkpoint() {
    // SIGUSR1 to mpirun, which forwards it to every rank at once; SIGTERM to each rank, as a
    // scheduler sends it; and SIGTERM to mpirun, which passes it on after
    // odls_base_sigkill_timeout seconds and kills that long after (it then exits non-zero
    // itself, having been terminated).
    for how in ["usr1-mpirun", "term-ranks", "term-mpirun"] {
        let out = scratch("mpi-stop");
        let run_dir = out.path().join("run");
        let rank1_out = out.path().join(format!("rank1-{how}"));
        let kill_after = (how == "term-mpirun").then_some("3");
        let child = long_run(&run_dir, &rank1_out, kill_after);
        match how {
            "usr1-mpirun" => signal(child.id(), "USR1"),
            "term-mpirun" => signal(child.id(), "TERM"),
            _ => {
                signal(pid_of(s(&rank1_out)), "TERM");
                signal(pid_of(s(&run_dir)), "TERM");
            }
        }
        let (_, output) = wait_ended(child, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() || how == "term-mpirun",
            "{how}:\n{stderr}"
        );
        assert!(
            stderr.contains("stopping after this step"),
            "{how}:\n{stderr}"
        );
        let steps = checkpoint_steps(&run_dir);
        assert_eq!(steps.len(), 1, "{how}: {steps:?}\n{stderr}");
        let log = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
        assert_eq!(log.lines().count() as u64, steps[0], "{how}");
        assert!(!rank1_out.exists());
    }
}
