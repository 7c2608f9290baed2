//! Parity with the PyTorch reference on every golden file in `$VKGAN_GOLDEN_DIR` (default
//! `tests/golden/`), under the contract of `tests/golden/README.md`: teacher forcing before
//! every D and G step, optimizer and path-length state our own, every key of the file
//! compared, a file with a key we do not produce (or missing one we do) fails.
//!
//! Nothing about the shipped files is hard-coded: sizes, iteration counts and crossovers come
//! from each file's `config` metadata, names from the model's parameter list.

mod common;

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use vkgan::autograd::{Tape, Var};
use vkgan::nn::step::{d_step, g_step, Nets, PathLengthState, StepHyper, StepInputs};
use vkgan::nn::{parameter_specs, Bound, ModelConfig, Net, ParamStore};
use vkgan::persist::checkpoint::{self, Checkpoint};
use vkgan::tensor::Tensor;
use vkgan::train::optim::{Optimizer, OptimizerConfig};
use vkgan::vk::Context;

#[derive(Deserialize, Debug)]
struct GoldenConfig {
    image_size: usize,
    d_latent: usize,
    mapping_layers: usize,
    g_n_features: usize,
    g_max_features: usize,
    d_n_features: usize,
    d_max_features: usize,
    batch: usize,
    mbstd_group: usize,
    gp_coef: f32,
    gp_interval: usize,
    plp_beta: f32,
    plp_steps: u32,
    plp_exp_sum_a: f64,
    lr: f32,
    mapping_lr: f32,
    betas: [f32; 2],
    adam_eps: f32,
    clip: f32,
    iterations: usize,
    crossover: Vec<usize>,
    n_gen_blocks: usize,
}

impl GoldenConfig {
    fn model(&self) -> ModelConfig {
        ModelConfig {
            image_size: self.image_size,
            d_latent: self.d_latent,
            mapping_layers: self.mapping_layers,
            g_features: self.g_n_features,
            g_max_features: self.g_max_features,
            d_features: self.d_n_features,
            d_max_features: self.d_max_features,
        }
    }
}

fn golden_files() -> Vec<PathBuf> {
    let dir = std::env::var("VKGAN_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden directory {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.safetensors in {}", dir.display());
    files
}

/// Device leaves the steps read, written per iteration from the file.
struct Inputs {
    z1: Tensor,
    z2: Tensor,
    noise: Vec<(Option<Tensor>, Tensor)>,
    crossover: Tensor,
    real: Tensor,
    plp_y: Tensor,
}

impl Inputs {
    fn new(ctx: &Context, cfg: &GoldenConfig) -> Self {
        let (b, d, r) = (cfg.batch, cfg.d_latent, cfg.image_size);
        let t = |shape: &[usize]| Tensor::zeros(ctx, shape).unwrap();
        let noise = (0..cfg.n_gen_blocks)
            .map(|i| {
                let res = 4 << i;
                let n1 = (i > 0).then(|| t(&[b, 1, res, res]));
                (n1, t(&[b, 1, res, res]))
            })
            .collect();
        Inputs {
            z1: t(&[b, d]),
            z2: t(&[b, d]),
            noise,
            crossover: t(&[1]),
            real: t(&[b, 3, r, r]),
            plp_y: t(&[b, 3, r, r]),
        }
    }

    /// Leaves for these tensors on `tape` (real requires a gradient for R1).
    fn bind(&self, tape: &mut Tape) -> (StepInputs, Vec<(Var, Tensor)>) {
        let mut bindings = Vec::new();
        let mut leaf = |tape: &mut Tape, t: &Tensor, grad: bool| {
            let v = tape.leaf(t.shape(), grad);
            bindings.push((v, t.clone()));
            v
        };
        let z1 = leaf(tape, &self.z1, false);
        let z2 = leaf(tape, &self.z2, false);
        let noise = self
            .noise
            .iter()
            .map(|(n1, n2)| {
                (
                    n1.as_ref().map(|n| leaf(tape, n, false)),
                    leaf(tape, n2, false),
                )
            })
            .collect();
        let crossover = leaf(tape, &self.crossover, false);
        let real = leaf(tape, &self.real, true);
        let plp_y = leaf(tape, &self.plp_y, false);
        let inputs = StepInputs {
            z1,
            z2,
            noise,
            crossover,
            real,
            plp_y,
            augment_real: None,
            augment_fake: None,
        };
        (inputs, bindings)
    }

    /// Writes iteration `k`'s inputs; returns the keys consumed.
    fn load(&self, file: &Checkpoint, k: usize, crossover: usize) -> Vec<String> {
        let mut keys = Vec::new();
        let mut put = |name: String, t: &Tensor| {
            let (shape, data) = file.f32(&name).unwrap();
            assert_eq!(shape, t.shape(), "{name}");
            t.write(data).unwrap();
            keys.push(name);
        };
        put(format!("it{k}.input.z1"), &self.z1);
        put(format!("it{k}.input.z2"), &self.z2);
        put(format!("it{k}.input.real"), &self.real);
        put(format!("it{k}.input.plp_y"), &self.plp_y);
        for (i, (n1, n2)) in self.noise.iter().enumerate() {
            if let Some(n1) = n1 {
                put(format!("it{k}.input.noise.{i}.0"), n1);
            }
            put(format!("it{k}.input.noise.{i}.1"), n2);
        }
        self.crossover.write(&[crossover as f32]).unwrap();
        keys
    }
}

/// Group of a key: up to its kind (`it0.grad.d_gp`, `it0.out`, `it1.after`, `param`).
fn group_of(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    if parts[0] == "param" {
        return "param".into();
    }
    match parts[1] {
        "grad" => parts[..3].join("."),
        _ => parts[..2].join("."),
    }
}

struct Verdict {
    compared: usize,
    worst_ratio: f64,
    worst_key: String,
    failures: Vec<String>,
}

/// The largest magnitude in `v`.
fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs() as f64))
}

/// The largest elementwise difference of `got` from `want`.
fn max_error(got: &[f32], want: &[f32]) -> f64 {
    got.iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()))
}

/// The contract's tolerance for a tensor `reference` whose group's largest magnitude is
/// `group_max`: 2e-3 of its own largest magnitude plus 1e-5 of its group's.
fn tolerance(reference: &[f32], group_max: f64) -> f64 {
    2e-3 * max_abs(reference) + 1e-5 * group_max
}

/// Applies the contract's rule to every produced tensor.
fn judge(file: &Checkpoint, produced: &BTreeMap<String, Vec<f32>>, cfg: &GoldenConfig) -> Verdict {
    let mut reference: HashMap<String, Vec<f32>> = HashMap::new();
    for key in produced.keys() {
        reference.insert(key.clone(), file.f32(key).unwrap().1.to_vec());
    }
    let mut group_max: HashMap<String, f64> = HashMap::new();
    for (key, r) in &reference {
        let g = group_max.entry(group_of(key)).or_default();
        *g = g.max(max_abs(r));
    }
    let mut group_elements: HashMap<String, (usize, usize)> = HashMap::new();
    let mut verdict = Verdict {
        compared: 0,
        worst_ratio: 0.0,
        worst_key: String::new(),
        failures: Vec::new(),
    };
    for (key, got) in produced {
        let r = &reference[key];
        let group = group_of(key);
        if got.len() != r.len() {
            verdict.failures.push(format!(
                "{key}: {} values, reference {}",
                got.len(),
                r.len()
            ));
            continue;
        }
        let tol = tolerance(r, group_max[&group]);
        let err = max_error(got, r);
        verdict.compared += 1;
        let after = group.ends_with(".after") || group.ends_with(".after_d");
        if after {
            // Adam moves each element by about ±lr at first: an element whose gradient is at
            // float noise level may move the other way, so the rule is per group.
            let k: usize = group[2..group.find('.').unwrap()].parse().unwrap();
            let bound = 2.0 * cfg.lr as f64 * (k + 1) as f64;
            let (broken, total) = group_elements.entry(group.clone()).or_default();
            for (a, b) in got.iter().zip(r) {
                let e = (*a as f64 - *b as f64).abs();
                if e > bound {
                    verdict
                        .failures
                        .push(format!("{key}: an element is off by {e:.3e} > {bound:.3e}"));
                }
                *broken += (e > tol) as usize;
                *total += 1;
            }
        } else {
            let ratio = if tol > 0.0 {
                err / tol
            } else if err == 0.0 {
                0.0
            } else {
                f64::INFINITY
            };
            if ratio > verdict.worst_ratio {
                verdict.worst_ratio = ratio;
                verdict.worst_key = key.clone();
            }
            if err > tol {
                verdict
                    .failures
                    .push(format!("{key}: max error {err:.3e} > tolerance {tol:.3e}"));
            }
        }
    }
    for (group, (broken, total)) in group_elements {
        if broken as f64 > 0.005 * total as f64 {
            verdict.failures.push(format!(
                "{group}: {broken} of {total} elements break the tolerance (> 0.5%)"
            ));
        }
    }
    verdict
}

/// All three networks bound on `tape`, only `trained` with gradients, and the step's inputs:
/// the bound parameters, the inputs, and every leaf's tensor (parameters and inputs) to compile
/// with.
fn bind_step(
    tape: &mut Tape,
    store: &ParamStore,
    inputs: &Inputs,
    trained: &[Net],
) -> (Bound, StepInputs, Vec<(Var, Tensor)>) {
    let frozen: Vec<Net> = [Net::Mapping, Net::Generator, Net::Discriminator]
        .into_iter()
        .filter(|n| !trained.contains(n))
        .collect();
    let bound = store.bind(tape, &frozen, false);
    let bound = bound.merged(store.bind(tape, trained, true));
    let (step_inputs, mut leaves) = inputs.bind(tape);
    leaves.extend(
        store
            .bindings(&bound)
            .into_iter()
            .map(|(v, t)| (v, t.clone())),
    );
    (bound, step_inputs, leaves)
}

fn run_case(path: &PathBuf) {
    let bytes = std::fs::read(path).unwrap();
    let file = checkpoint::from_bytes(&bytes).unwrap();
    let config_json = file.meta("config").expect("config metadata");
    let cfg: GoldenConfig = serde_json::from_str(config_json).unwrap();
    let model = cfg.model();
    model.validate().unwrap();
    assert_eq!(model.generator_blocks(), cfg.n_gen_blocks);
    assert_eq!(
        cfg.mbstd_group, 4,
        "the discriminator's minibatch-stddev group is 4"
    );
    let ctx = common::context();
    let store = ParamStore::from_checkpoint(&ctx, &model, &file, "param.").unwrap();
    let hyper = StepHyper {
        r1_gamma: cfg.gp_coef,
        r1_interval: cfg.gp_interval,
        plp_beta: cfg.plp_beta,
    };
    let inputs = Inputs::new(&ctx, &cfg);
    let exp_sum_a = Tensor::from_f32(&ctx, &[1], &[cfg.plp_exp_sum_a as f32]).unwrap();
    let debias = Tensor::zeros(&ctx, &[1]).unwrap();
    let enabled = Tensor::zeros(&ctx, &[1]).unwrap();
    let opt_cfg = |lr: f32| OptimizerConfig {
        lr,
        betas: (cfg.betas[0], cfg.betas[1]),
        eps: cfg.adam_eps,
        clip: cfg.clip,
    };
    let mut opt_d = Optimizer::new(&ctx, &store, &[Net::Discriminator], opt_cfg(cfg.lr)).unwrap();
    let mut opt_g = Optimizer::new(&ctx, &store, &[Net::Generator], opt_cfg(cfg.lr)).unwrap();
    let mut opt_m = Optimizer::new(&ctx, &store, &[Net::Mapping], opt_cfg(cfg.mapping_lr)).unwrap();

    // The D step program.
    let mut td = Tape::new();
    let (pd, d_in, mut d_leaves) = bind_step(&mut td, &store, &inputs, &[Net::Discriminator]);
    let d_nets = Nets {
        store: &store,
        bound: &pd,
        cfg: &model,
    };
    let d = d_step(&mut td, d_nets, &hyper, &d_in, true, true);
    let d_opt = opt_d.append(&mut td, &pd, &d.grads);
    let d_updates = d_opt.updates.clone();
    let mut d_outputs = vec![d.fake, d.d_fake, d.d_real, d.gp.unwrap(), d.loss];
    d_outputs.extend(d.grads.iter().map(|(_, v)| *v));
    d_outputs.extend(d.gp_grads.iter().map(|(_, v)| *v));
    d_outputs.extend(d_updates.iter().copied());
    d_leaves.extend(d_opt.leaves.iter().cloned());
    let refs: Vec<(Var, &Tensor)> = d_leaves.iter().map(|(v, t)| (*v, t)).collect();
    let mut d_program = td.compile(&ctx, &d_outputs, &refs).unwrap();

    // The D step off R1 steps, which judges fakes and reals in one joint pass: compared with
    // the reference's D step less its R1 term (loss - w gp, grads - w gp_grads).
    let mut tp = Tape::new();
    let (pp, p_in, p_leaves) = bind_step(&mut tp, &store, &inputs, &[Net::Discriminator]);
    let p_nets = Nets {
        store: &store,
        bound: &pp,
        cfg: &model,
    };
    let plain = d_step(&mut tp, p_nets, &hyper, &p_in, false, false);
    let mut p_outputs = vec![plain.d_fake, plain.d_real, plain.loss];
    p_outputs.extend(plain.grads.iter().map(|(_, v)| *v));
    let refs: Vec<(Var, &Tensor)> = p_leaves.iter().map(|(v, t)| (*v, t)).collect();
    let mut plain_program = tp.compile(&ctx, &p_outputs, &refs).unwrap();

    // The G step program.
    let mut tg = Tape::new();
    let (pg, g_in, mut g_leaves) =
        bind_step(&mut tg, &store, &inputs, &[Net::Mapping, Net::Generator]);
    let state = PathLengthState {
        exp_sum_a: tg.leaf(&[1], false),
        debias: tg.leaf(&[1], false),
        enabled: tg.leaf(&[1], false),
    };
    g_leaves.push((state.exp_sum_a, exp_sum_a.clone()));
    g_leaves.push((state.debias, debias.clone()));
    g_leaves.push((state.enabled, enabled.clone()));
    let g_nets = Nets {
        store: &store,
        bound: &pg,
        cfg: &model,
    };
    let g = g_step(&mut tg, g_nets, &hyper, &g_in, Some(&state), true);
    let plp = g.plp.as_ref().unwrap();
    let (gen_grads, map_grads): (Vec<_>, Vec<_>) = g
        .grads
        .iter()
        .cloned()
        .partition(|(n, _)| n.starts_with("generator."));
    let g_opt = opt_g.append(&mut tg, &pg, &gen_grads);
    let m_opt = opt_m.append(&mut tg, &pg, &map_grads);
    let mut g_updates = g_opt.updates.clone();
    g_updates.extend(m_opt.updates.iter().copied());
    g_updates.push(vkgan::ops::assign(&mut tg, &exp_sum_a, plp.new_exp_sum_a));
    let mut g_outputs = vec![
        g.w,
        g.fake,
        g.d_fake,
        g.adversarial_loss,
        plp.norm,
        plp.penalty,
    ];
    g_outputs.extend(g.grads.iter().map(|(_, v)| *v));
    g_outputs.extend(g.plp_grads.iter().map(|(_, v)| *v));
    g_outputs.extend(g_updates.iter().copied());
    g_leaves.extend(g_opt.leaves.iter().cloned());
    g_leaves.extend(m_opt.leaves.iter().cloned());
    let refs: Vec<(Var, &Tensor)> = g_leaves.iter().map(|(v, t)| (*v, t)).collect();
    let mut g_program = tg.compile(&ctx, &g_outputs, &refs).unwrap();

    let mut produced: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut known: Vec<String> = Vec::new();
    // Initial parameters: trainable ones are what we loaded; the smoothing kernels must equal
    // the fixed kernel our shaders use.
    for spec in parameter_specs(&model) {
        let key = format!("param.{}", spec.name);
        if spec.trainable {
            known.push(key);
        } else {
            produced.insert(key, store.get(&spec.name).to_vec().unwrap());
        }
    }
    for (k, plp_steps) in (0..cfg.iterations).zip(cfg.plp_steps..) {
        let prefix = format!("it{k}.");
        known.extend(inputs.load(&file, k, cfg.crossover[k]));
        if k > 0 {
            store
                .overwrite_from(&file, &format!("it{}.after.", k - 1), None, false)
                .unwrap();
        }
        plain_program.run().unwrap();
        check_plain_d_step(&file, &prefix, &plain, &plain_program, hyper.r1_weight());
        d_program.set_scalar(d_opt.step, opt_d.advance());
        d_program.run().unwrap();
        let mut put = |key: String, v: Var, program: &vkgan::autograd::Program| {
            produced.insert(key, program.read(v).unwrap());
        };
        put(format!("{prefix}out.fake"), d.fake, &d_program);
        put(format!("{prefix}out.d_fake"), d.d_fake, &d_program);
        put(format!("{prefix}out.d_real"), d.d_real, &d_program);
        put(format!("{prefix}out.gp"), d.gp.unwrap(), &d_program);
        put(format!("{prefix}out.d_loss"), d.loss, &d_program);
        for (name, v) in &d.grads {
            let short = name.trim_start_matches("discriminator.");
            put(format!("{prefix}grad.d.{short}"), *v, &d_program);
        }
        for (name, v) in &d.gp_grads {
            let short = name.trim_start_matches("discriminator.");
            put(format!("{prefix}grad.d_gp.{short}"), *v, &d_program);
        }
        for (spec, t) in store.trainable(Net::Discriminator) {
            produced.insert(
                format!("{prefix}after_d.{}", spec.name),
                t.to_vec().unwrap(),
            );
        }

        // Teacher forcing for D before the G step.
        store
            .overwrite_from(
                &file,
                &format!("{prefix}after_d."),
                Some(Net::Discriminator),
                false,
            )
            .unwrap();
        let beta = cfg.plp_beta as f64;
        let (deb, en) = if plp_steps > 0 {
            ((1.0 / (1.0 - beta.powi(plp_steps as i32))) as f32, 1.0)
        } else {
            (0.0, 0.0)
        };
        debias.write(&[deb]).unwrap();
        enabled.write(&[en]).unwrap();
        g_program.set_scalar(g_opt.step, opt_g.advance());
        g_program.set_scalar(m_opt.step, opt_m.advance());
        g_program.run().unwrap();
        let mut put = |key: String, v: Var| {
            produced.insert(key, g_program.read(v).unwrap());
        };
        put(format!("{prefix}out.w"), g.w);
        put(format!("{prefix}out.g_fake"), g.d_fake);
        put(format!("{prefix}out.g_loss"), g.adversarial_loss);
        put(format!("{prefix}out.plp"), plp.penalty);
        put(format!("{prefix}out.plp_norm"), plp.norm);
        for (name, v) in &g.grads {
            put(format!("{prefix}grad.g.{name}"), *v);
        }
        if plp_steps > 0 {
            for (name, v) in &g.plp_grads {
                put(format!("{prefix}grad.g_plp.{name}"), *v);
            }
        }
        produced.insert(
            format!("{prefix}out.plp_exp_sum_a"),
            exp_sum_a.to_vec().unwrap(),
        );
        for net in [Net::Mapping, Net::Generator, Net::Discriminator] {
            for (spec, t) in store.trainable(net) {
                produced.insert(format!("{prefix}after.{}", spec.name), t.to_vec().unwrap());
            }
        }
    }

    // Every key of the file is produced or consumed; nothing we produce is absent.
    let in_file: Vec<String> = file.tensors.keys().cloned().collect();
    let mut problems = Vec::new();
    for key in &in_file {
        if !produced.contains_key(key) && !known.contains(key) {
            problems.push(format!(
                "the file has `{key}`, which this implementation does not know"
            ));
        }
    }
    for key in produced.keys() {
        if !in_file.contains(key) {
            problems.push(format!("the file lacks `{key}`"));
        }
    }
    let verdict = judge(&file, &produced, &cfg);
    println!(
        "{}: {} tensors compared ({} inputs and parameters consumed), worst error {:.3} of tolerance ({})",
        path.file_name().unwrap().to_string_lossy(),
        verdict.compared,
        known.len(),
        verdict.worst_ratio,
        verdict.worst_key
    );
    problems.extend(verdict.failures);
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        path.display(),
        problems.join("\n")
    );
}

/// The D step without R1 (its joint pass over fakes and reals) against the reference's D step
/// less its R1 term, under the contract's tolerance (2e-3 of a tensor's largest magnitude plus
/// 1e-5 of its group's).
fn check_plain_d_step(
    file: &Checkpoint,
    prefix: &str,
    step: &vkgan::nn::step::DStep,
    program: &vkgan::autograd::Program,
    r1_weight: f32,
) {
    let f = |key: String| file.f32(&key).unwrap().1.to_vec();
    let less_r1 = |with: Vec<f32>, r1: Vec<f32>| -> Vec<f32> {
        with.iter()
            .zip(&r1)
            .map(|(a, b)| a - r1_weight * b)
            .collect()
    };
    let mut cases = vec![
        (
            "out.d_fake".to_string(),
            step.d_fake,
            f(format!("{prefix}out.d_fake")),
        ),
        (
            "out.d_real".to_string(),
            step.d_real,
            f(format!("{prefix}out.d_real")),
        ),
        (
            "out.d_loss".to_string(),
            step.loss,
            less_r1(
                f(format!("{prefix}out.d_loss")),
                f(format!("{prefix}out.gp")),
            ),
        ),
    ];
    for (name, v) in &step.grads {
        let short = name.trim_start_matches("discriminator.");
        let want = less_r1(
            f(format!("{prefix}grad.d.{short}")),
            f(format!("{prefix}grad.d_gp.{short}")),
        );
        cases.push((format!("grad.d.{short}"), *v, want));
    }
    let grads_max = cases
        .iter()
        .filter(|(k, _, _)| k.starts_with("grad."))
        .fold(0.0f64, |m, (_, _, w)| m.max(max_abs(w)));
    for (key, v, want) in cases {
        let got = program.read(v).unwrap();
        assert_eq!(got.len(), want.len(), "{prefix}{key} without R1: length");
        let group = if key.starts_with("grad.") {
            grads_max
        } else {
            max_abs(&want)
        };
        let tol = tolerance(&want, group);
        let err = max_error(&got, &want);
        assert!(
            err <= tol,
            "{prefix}{key} of the D step without R1: max error {err:.3e} > tolerance {tol:.3e}"
        );
    }
}

#[test]
fn golden_parity_with_the_pytorch_reference() {
    for path in golden_files() {
        run_case(&path);
    }
}
