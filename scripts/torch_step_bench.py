#!/usr/bin/env python3
# From the project's shared benchmark kit (bench/torch_step_bench.py), so that
# scripts/bench_compare.py needs nothing outside the repository; changed only to take the
# model's widths as optional arguments (their defaults are the kit's, labml-nn's own). It
# times the PyTorch reference implementation: labml-nn's StyleGAN2
# (labml_nn.gan.stylegan, https://github.com/labmlai/annotated_deep_learning_paper_implementations,
# MIT licence), with the reference's hyper-parameters.
"""Times the reference PyTorch training step (labml-nn stylegan, the reference hyper-parameters)
on CUDA when present, else the CPU: images/s for plain steps and for steps with R1 and path-length.
usage: torch_step_bench.py IMAGE_SIZE BATCH D_LATENT STEPS
                          [MAPPING_LAYERS G_FEATURES G_MAX_FEATURES D_FEATURES D_MAX_FEATURES]
Set-up: python3 -m venv .venv && .venv/bin/pip install torch numpy && .venv/bin/pip install --no-deps labml-nn==0.5.1"""
import math, sys, time, torch, torch.nn.functional as F
from labml_nn.gan.stylegan import Generator, Discriminator, MappingNetwork, GradientPenalty, PathLengthPenalty

size, B, d, steps = (int(a) for a in sys.argv[1:5])
n_map, g_f, g_max, d_f, d_max = (int(a) for a in sys.argv[5:10]) if len(sys.argv) > 5 else (8, 32, 512, 64, 512)
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
lr = int(math.log2(size))
G, D = Generator(lr, d, g_f, g_max).to(dev), Discriminator(lr, d_f, d_max).to(dev)
M = MappingNetwork(d, n_map).to(dev)
gp_f, plp_f = GradientPenalty(), PathLengthPenalty(0.99).to(dev)
od = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.99)); og = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.99))
om = torch.optim.Adam(M.parameters(), 1e-5, betas=(0.0, 0.99))
nb = G.n_blocks
real_all = torch.rand(B, 3, size, size, device=dev)

def gen():
    co = int(torch.rand(()).item() * nb)
    w1, w2 = M(torch.randn(B, d, device=dev)), M(torch.randn(B, d, device=dev))
    w = torch.cat((w1[None].expand(co, -1, -1), w2[None].expand(nb - co, -1, -1)))
    noise, r = [], 4
    for i in range(nb):
        noise.append((None if i == 0 else torch.randn(B, 1, r, r, device=dev), torch.randn(B, 1, r, r, device=dev))); r *= 2
    return G(w, noise), w

def step(reg):
    od.zero_grad()
    fake, _ = gen()
    fo = D(fake.detach())
    real = real_all.clone().requires_grad_(reg)
    ro = D(real)
    loss = F.relu(1 - ro).mean() + F.relu(1 + fo).mean()
    if reg:
        loss = loss + 0.5 * 10 * gp_f(real, ro) * 4
    loss.backward(); torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0); od.step()
    og.zero_grad(); om.zero_grad()
    fake, w = gen()
    gl = -D(fake).mean()
    if reg:
        plp_f.steps.fill_(1); gl = gl + plp_f(w, fake)
    gl.backward(); torch.nn.utils.clip_grad_norm_(G.parameters(), 1.0); torch.nn.utils.clip_grad_norm_(M.parameters(), 1.0)
    og.step(); om.step()

def sync():
    if dev == "cuda": torch.cuda.synchronize()

for reg in (False, True):
    step(reg); sync()
    t = time.perf_counter()
    for _ in range(steps): step(reg)
    sync()
    dt = (time.perf_counter() - t) / steps
    print(f"device={dev} threads={torch.get_num_threads()} size={size} batch={B} d_latent={d} regularized={reg}: {dt:.3f} s/step, {B/dt:.2f} img/s")
