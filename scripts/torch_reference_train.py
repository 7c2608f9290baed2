#!/usr/bin/env python3
"""Trains the PyTorch reference (labml-nn 0.5.1's StyleGAN2 modules) with the reference training
procedure and vkgan's settings, writing checkpoints that `vkgan metrics --checkpoint` loads, so
that both trainers' learning curves can be measured the same way (scripts/compare_learning.py).

The step is labml's experiment.py `Configs.step` (see /work/shared/reference/STYLEGAN2.md):
hinge loss; R1 on real images on steps with (idx+1) % r1_interval == 0, weighted
0.5 * gamma * interval; path-length penalty on steps with idx > plp_after and
(idx+1) % plp_interval == 0 (a NaN penalty is skipped); style mixing with probability p for both
the D and the G step; fresh noise every forward; Adam with betas (0, 0.99) for D, G and,
with its own learning rate, the mapping network; every net's gradients clipped to global norm 1.
Two things are not in experiment.py and are added because vkgan has them and the comparison
measures them:
- the path-length norm is per sample (`--plp-norm per-sample`, the default), as the project
  specifies and vkgan computes; `--plp-norm reference` uses labml's PathLengthPenalty as it is
  (its `.sum(2).mean(1)` averages over the batch instead);
- an exponential moving average of the mapping network and generator, with vkgan's formula
  (per step `ema = beta * ema + (1 - beta) * param`, after the G step, beta = 0.5 ** (batch /
  half_life), half_life = ema_kimg * 1000 images, or with --ema-rampup R at most R times the
  images seen before the step, as NVlabs ramps it; started as a copy of the initial weights),
  and vkgan's running mean of w
  (decay 0.995 over the G step's w). Checkpoints store it as `ema.<name>` and `w_avg`, which
  `vkgan metrics` and `vkgan generate` use; the raw weights are stored under the state-dict
  names as well.

Data: a folder of N x N PNGs, read in sorted order as 8-bit RGB / 255 (vkgan's own conversion).
Make the folder vkgan trains on with
    cargo run --release --example export_dataset -- 16 runs/emoji16
(the embedded emoji set at 16x16, resized by vkgan's own pipeline). Each epoch is a fresh
permutation, the last partial batch is dropped, and epochs cycle (the reference's DataLoader
with shuffle=True, drop_last=True under cycle_dataloader).

Defaults are vkgan's `--preset quick`; `--vkgan-config RUN/config.json` takes every setting from
a vkgan run instead, and flags (named as vkgan's) override either.

`--resume OUT` continues a run that stopped (a machine that went away, a killed job) from its
newest checkpoint, with the settings in OUT/config.json: every checkpoint writes beside it
OUT/resume.pt (networks, optimizer moments, moving averages, path-length state, the random
generators, the data order and the training time so far), so a resumed run draws what the
uninterrupted one would have and writes the same checkpoints; metrics.jsonl records past the
checkpoint are dropped before the run goes on. `--resume OUT --steps N` trains on to N steps.

Output in --out: checkpoints/checkpoint-<step>.safetensors at steps 0 (the initial weights), 1,
every --checkpoint-every and the last; metrics.jsonl (vkgan's format: step numbered from 0,
time, d_loss, g_loss, d_real, d_fake, r1, path_length_penalty); config.json; timing.json (wall
time of the training loop, checkpoint writing included).

Set-up: python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy safetensors
pillow && /tmp/torchvenv/bin/pip install --no-deps labml-nn==0.5.1
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from labml_nn.gan.stylegan import (Discriminator, Generator, GradientPenalty, MappingNetwork,
                                   PathLengthPenalty)

# vkgan's `--preset quick` (src/train/config.rs, Preset::Quick).
QUICK = dict(image_size=16, d_latent=64, mapping_layers=2, g_features=16, g_max_features=64,
             d_features=16, d_max_features=64, batch=16, steps=1500, lr=2e-3, mapping_lr=2e-4,
             betas=[0.0, 0.99], adam_eps=1e-8, clip=1.0, r1_gamma=10.0, r1_interval=4,
             plp_interval=8, plp_after=500, plp_beta=0.99, style_mixing_prob=0.9, ema_kimg=1.0,
             ema_rampup=0.05, seed=0, checkpoint_every=250)
MODEL_KEYS = ["image_size", "d_latent", "mapping_layers", "g_features", "g_max_features",
              "d_features", "d_max_features"]
# vkgan's decay of the running mean of w (src/train/programs.rs W_AVG_BETA).
W_AVG_BETA = 0.995


def ema_beta_at(a, idx):
    """The EMA decay of step idx (from 0): vkgan's TrainConfig::ema_beta."""
    half_life = a.ema_kimg * 1000.0
    if a.ema_rampup > 0:
        half_life = min(half_life, idx * a.batch * a.ema_rampup)
    return 0.0 if half_life <= 0 else 0.5 ** (a.batch / half_life)


def from_vkgan_config(path):
    """The settings of a vkgan run's config.json, in this script's flat form."""
    c = json.loads(Path(path).read_text())
    if c.get("accumulate", 1) != 1:
        sys.exit("gradient accumulation is not supported here")
    flat = {k: c["model"][k] for k in MODEL_KEYS}
    # A config from before --ema-rampup existed trained without the ramp.
    flat.update({k: c.get(k, 0.0) if k == "ema_rampup" else c[k]
                 for k in QUICK if k not in MODEL_KEYS})
    return flat


def parse_args(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--vkgan-config")
    pre.add_argument("--resume")
    known, _ = pre.parse_known_args(argv)
    if known.resume:
        return resume_args(known.resume, argv)
    defaults = from_vkgan_config(known.vkgan_config) if known.vkgan_config else dict(QUICK)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vkgan-config", help="take every setting from a vkgan run's config.json")
    ap.add_argument("--data", required=True, help="folder of N x N PNGs (see export_dataset)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--plp-norm", choices=["per-sample", "reference"], default="per-sample")
    ap.add_argument("--extra-checkpoints", default="0,1",
                    help="steps checkpointed besides every --checkpoint-every (default 0,1)")
    ap.add_argument("--resume", help="continue the run in this folder from its newest checkpoint "
                    "(with --steps, to that many steps in all; no other flag)")
    for k, v in defaults.items():
        flag = "--" + k.replace("_", "-")
        if k == "betas":
            ap.add_argument(flag, default=",".join(str(b) for b in v), help="B1,B2")
        else:
            ap.add_argument(flag, type=type(v), default=v)
    a = ap.parse_args(argv)
    a.betas = tuple(float(b) for b in str(a.betas).split(","))
    return a


def resume_args(run, argv):
    """The settings of the run in `run`, as its config.json recorded them."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--resume", required=True)
    ap.add_argument("--steps", type=int)
    known, extra = ap.parse_known_args(argv)
    if extra:
        sys.exit(f"--resume takes only --steps (the run's config.json holds its settings), "
                 f"not {' '.join(extra)}")
    steps = known.steps
    path = Path(run) / "config.json"
    if not path.exists():
        sys.exit(f"{run} holds no run to resume (no config.json)")
    cfg = json.loads(path.read_text())
    a = argparse.Namespace(**{k: cfg[k] for k in QUICK})
    a.betas = tuple(a.betas)
    a.plp_norm, a.threads, a.data = cfg["plp_norm"], cfg["threads"], cfg["data"]
    a.extra_checkpoints = cfg.get("extra_checkpoints", "0,1")
    a.out, a.resume, a.vkgan_config = run, run, None
    if steps is not None:
        a.steps = steps
        cfg["steps"] = steps
        path.write_text(json.dumps(cfg, indent=2) + "\n")
    return a


def load_images(folder, size):
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")
    if not paths:
        sys.exit(f"no PNG files in {folder}: export them with "
                 f"`cargo run --release --example export_dataset -- {size} {folder}`")
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, p in enumerate(paths):
        img = np.asarray(Image.open(p).convert("RGB"))
        if img.shape != (size, size, 3):
            sys.exit(f"{p} is {img.shape[1]}x{img.shape[0]}, not {size}x{size}")
        out[i] = img.transpose(2, 0, 1)
    # vkgan's conversion: f32::from(byte) / 255.
    return torch.from_numpy(out).float() / 255.0


class Batches:
    """Shuffled epochs, the last partial batch dropped, cycled forever."""

    def __init__(self, images, batch, seed):
        self.images, self.batch = images, batch
        self.gen = torch.Generator().manual_seed(seed)
        self.order, self.pos = None, 0

    def next(self):
        n = self.images.shape[0]
        if self.order is None or self.pos + self.batch > n:
            self.order, self.pos = torch.randperm(n, generator=self.gen), 0
        idx = self.order[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return self.images[idx].clone()


class PerSamplePathLength:
    """labml's PathLengthPenalty with the per-sample norm sqrt(mean_blocks sum_d g^2) that the
    project specifies (STYLEGAN2.md, "Path length penalty"); the state updates are labml's."""

    def __init__(self, beta):
        self.beta = beta
        self.steps = 0
        self.exp_sum_a = torch.tensor(0.0)

    def __call__(self, w, x):
        y = torch.randn(x.shape)
        output = (x * y).sum() / math.sqrt(x.shape[2] * x.shape[3])
        g, = torch.autograd.grad(output, w, torch.ones_like(output), create_graph=True)
        norm = (g ** 2).sum(dim=2).mean(dim=0).sqrt()
        if self.steps > 0:
            a = self.exp_sum_a / (1 - self.beta ** self.steps)
            loss = torch.mean((norm - a) ** 2)
        else:
            loss = norm.new_tensor(0)
        self.exp_sum_a.mul_(self.beta).add_(norm.mean().detach(), alpha=1 - self.beta)
        self.steps += 1
        return loss


def main(argv):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    ck_dir = out / "checkpoints"
    if a.resume:
        if not (out / "resume.pt").exists():
            sys.exit(f"{out} has no resume.pt: it was started before --resume existed, or "
                     "stopped before its first checkpoint; start it again")
        cfg = json.loads((out / "config.json").read_text())
    else:
        if (out / "metrics.jsonl").exists() or (ck_dir.exists() and any(ck_dir.iterdir())):
            sys.exit(f"{out} already holds a run; choose another --out, or --resume it")
        ck_dir.mkdir(parents=True, exist_ok=True)
        cfg = {k: getattr(a, k) for k in QUICK}
        cfg.update(plp_norm=a.plp_norm, threads=a.threads, data=str(a.data),
                   extra_checkpoints=a.extra_checkpoints,
                   trainer="labml-nn 0.5.1 stylegan, torch " + torch.__version__)
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    images = load_images(a.data, a.image_size)
    if images.shape[0] < a.batch:
        sys.exit(f"{images.shape[0]} images, fewer than one batch of {a.batch}")
    batches = Batches(images, a.batch, a.seed + 1)

    log_res = int(math.log2(a.image_size))
    G = Generator(log_res, a.d_latent, n_features=a.g_features, max_features=a.g_max_features)
    D = Discriminator(log_res, n_features=a.d_features, max_features=a.d_max_features)
    M = MappingNetwork(a.d_latent, a.mapping_layers)
    nb = G.n_blocks
    adam = dict(betas=a.betas, eps=a.adam_eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=a.lr, **adam)
    opt_g = torch.optim.Adam(G.parameters(), lr=a.lr, **adam)
    opt_m = torch.optim.Adam(M.parameters(), lr=a.mapping_lr, **adam)
    gradient_penalty = GradientPenalty()
    plp_fn = PathLengthPenalty(a.plp_beta) if a.plp_norm == "reference" else \
        PerSamplePathLength(a.plp_beta)

    nets = {"mapping_network": M, "generator": G, "discriminator": D}
    trained_g = [(f"{p}.{n}", q) for p, net in (("mapping_network", M), ("generator", G))
                 for n, q in net.named_parameters() if q.requires_grad]
    ema = {name: q.detach().clone() for name, q in trained_g}
    w_avg = torch.zeros(a.d_latent)

    def get_w(batch):
        # experiment.py's get_w, draw for draw.
        if torch.rand(()).item() < a.style_mixing_prob:
            cross_over = int(torch.rand(()).item() * nb)
            z2 = torch.randn(batch, a.d_latent)
            z1 = torch.randn(batch, a.d_latent)
            w1 = M(z1)[None].expand(cross_over, -1, -1)
            w2 = M(z2)[None].expand(nb - cross_over, -1, -1)
            return torch.cat((w1, w2), dim=0)
        w = M(torch.randn(batch, a.d_latent))
        return w[None].expand(nb, -1, -1)

    def get_noise(batch):
        noise, r = [], 4
        for i in range(nb):
            n1 = None if i == 0 else torch.randn(batch, 1, r, r)
            noise.append((n1, torch.randn(batch, 1, r, r)))
            r *= 2
        return noise

    def generate(batch):
        w = get_w(batch)
        return G(w, get_noise(batch)), w

    def save(step):
        t = {}
        for prefix, net in nets.items():
            for n, v in net.state_dict().items():
                t[f"{prefix}.{n}"] = v.detach().float().contiguous().clone()
        for name, v in ema.items():
            t[f"ema.{name}"] = v.contiguous().clone()
        t["w_avg"] = w_avg.clone()
        path = ck_dir / f"checkpoint-{step:08d}.safetensors"
        tmp = path.with_suffix(".tmp")
        save_file(t, str(tmp), metadata={"trainer": cfg["trainer"], "step": str(step),
                                         "torch_config": json.dumps(cfg)})
        os.replace(tmp, path)
        # Everything a resumed run needs to draw what this one would have drawn next.
        state = dict(step=step, elapsed=time.time() - began + elapsed_before,
                     nets={k: net.state_dict() for k, net in nets.items()},
                     opts=[o.state_dict() for o in (opt_d, opt_g, opt_m)],
                     ema=ema, w_avg=w_avg, plp=plp_state(), rng=torch.get_rng_state(),
                     batches=(batches.gen.get_state(), batches.order, batches.pos))
        tmp = out / "resume.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, out / "resume.pt")

    def plp_state():
        if isinstance(plp_fn, PerSamplePathLength):
            return dict(steps=plp_fn.steps, exp_sum_a=plp_fn.exp_sum_a)
        return plp_fn.state_dict()

    extra = {int(s) for s in a.extra_checkpoints.split(",") if s.strip()}
    first, elapsed_before = 0, 0.0
    if a.resume:
        state = torch.load(out / "resume.pt", weights_only=False)
        first, elapsed_before = state["step"], state["elapsed"]
        for k, net in nets.items():
            net.load_state_dict(state["nets"][k])
        for o, sd in zip((opt_d, opt_g, opt_m), state["opts"]):
            o.load_state_dict(sd)
        for name, v in state["ema"].items():
            ema[name].copy_(v)
        w_avg.copy_(state["w_avg"])
        if isinstance(plp_fn, PerSamplePathLength):
            plp_fn.steps, plp_fn.exp_sum_a = state["plp"]["steps"], state["plp"]["exp_sum_a"]
        else:
            plp_fn.load_state_dict(state["plp"])
        torch.set_rng_state(state["rng"])
        gen_state, batches.order, batches.pos = state["batches"]
        batches.gen.set_state(gen_state)
        # The records of steps after the checkpoint are run again.
        kept = [line for line in (out / "metrics.jsonl").read_text().splitlines()
                if line.strip() and json.loads(line)["step"] < first]
        (out / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))
        print(f"resuming {out} at step {first}", flush=True)
    log = open(out / "metrics.jsonl", "a")
    began = time.time()
    if 0 in extra and first == 0:
        save(0)
    for idx in range(first, a.steps):
        values = {}
        # ---- discriminator
        opt_d.zero_grad()
        fake, _ = generate(a.batch)
        fake_out = D(fake.detach())
        real = batches.next()
        r1 = a.r1_gamma > 0 and (idx + 1) % a.r1_interval == 0
        if r1:
            real.requires_grad_()
        real_out = D(real)
        d_loss = F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()
        if r1:
            gp = gradient_penalty(real, real_out)
            values["r1"] = gp.item()
            d_loss = d_loss + 0.5 * a.r1_gamma * gp * a.r1_interval
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(D.parameters(), max_norm=a.clip)
        opt_d.step()
        values.update(d_loss=d_loss.item(), d_real=real_out.mean().item(),
                      d_fake=fake_out.mean().item())
        # ---- generator and mapping network
        opt_g.zero_grad()
        opt_m.zero_grad()
        fake, w = generate(a.batch)
        g_loss = -D(fake).mean()
        values["g_loss"] = g_loss.item()
        if idx > a.plp_after and (idx + 1) % a.plp_interval == 0:
            plp = plp_fn(w, fake)
            if not torch.isnan(plp):
                values["path_length_penalty"] = plp.item()
                g_loss = g_loss + plp
        g_loss.backward()
        torch.nn.utils.clip_grad_norm_(G.parameters(), max_norm=a.clip)
        torch.nn.utils.clip_grad_norm_(M.parameters(), max_norm=a.clip)
        opt_g.step()
        opt_m.step()
        with torch.no_grad():
            ema_beta = ema_beta_at(a, idx)
            for name, q in trained_g:
                ema[name].mul_(ema_beta).add_(q.detach(), alpha=1 - ema_beta)
            w_avg.mul_(W_AVG_BETA).add_(w.detach().mean(dim=(0, 1)), alpha=1 - W_AVG_BETA)
        if not all(math.isfinite(v) for v in values.values()):
            sys.exit(f"non-finite value at step {idx}: {values}")
        log.write(json.dumps(dict(step=idx, time=time.time(), **values)) + "\n")
        log.flush()
        done = idx + 1
        if done % a.checkpoint_every == 0 or done == a.steps or done in extra:
            save(done)
        if done % 100 == 0 or done == a.steps:
            el = time.time() - began
            print(f"step {done}/{a.steps}: D {values['d_loss']:.4f}  G {values['g_loss']:.4f}  "
                  f"{(done - first) * a.batch / el:.1f} img/s  {el + elapsed_before:.0f} s",
                  flush=True)
    wall = time.time() - began + elapsed_before
    (out / "timing.json").write_text(json.dumps(
        dict(steps=a.steps, wall_s=wall, img_per_s=a.steps * a.batch / wall,
             threads=a.threads)) + "\n")
    print(f"trained {a.steps} steps in {wall:.0f} s; checkpoints in {ck_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
