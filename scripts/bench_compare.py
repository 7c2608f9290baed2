#!/usr/bin/env python3
"""Training throughput of vkgan and of the PyTorch reference, side by side on this machine.

Runs `vkgan bench --json` and then scripts/torch_step_bench.py (one after the other, so they
do not compete for the machine) at the same sizes, and prints images/s of the plain step
(D + G) and of the regularized step (D with R1 + G with the path-length penalty) for both,
with the ratio vkgan / PyTorch. With --rounds N both sides run N times, alternating, and each
side's best images/s is kept: on a shared machine other work only ever slows a run down. Only
the standard library is needed here; the PyTorch side needs a python with torch and labml-nn:

    python3 -m venv .venv && .venv/bin/pip install torch numpy \\
        && .venv/bin/pip install --no-deps labml-nn==0.5.1

usage: bench_compare.py [--vkgan target/release/vkgan] [--python .venv/bin/python]
                        [--image-size 32] [--batch 32] [--d-latent 512] [--mapping-layers 8]
                        [--g-features 32] [--g-max-features 512] [--d-features 64]
                        [--d-max-features 512] [--steps 5] [--rounds 1] [--device N] [--json]
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_LINE = re.compile(
    r"device=(?P<device>\S+) threads=(?P<threads>\d+) .*regularized=(?P<reg>True|False): "
    r"(?P<s>[0-9.]+) s/step, (?P<img>[0-9.]+) img/s"
)


def run(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"error: `{' '.join(cmd)}` exited with status {done.returncode}")
    return done.stdout


SIZES = ("image_size", "batch", "d_latent", "mapping_layers", "g_features", "g_max_features",
         "d_features", "d_max_features")


def vkgan_side(args):
    cmd = [args.vkgan, "bench", "--json", "--steps", str(args.steps)]
    for name in SIZES:
        cmd += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.device is not None:
        cmd += ["--device", str(args.device)]
    lines = [l for l in run(cmd).splitlines() if l.strip()]
    if not lines:
        sys.exit("error: vkgan bench --json printed nothing")
    return json.loads(lines[-1])


def torch_side(args):
    cmd = [args.python, os.path.join(HERE, "torch_step_bench.py"), str(args.image_size),
           str(args.batch), str(args.d_latent), str(args.steps)]
    cmd += [str(getattr(args, name)) for name in SIZES[3:]]
    result = {}
    for line in run(cmd).splitlines():
        m = TORCH_LINE.search(line)
        if m:
            kind = "regularized" if m["reg"] == "True" else "plain"
            result[kind + "_img_per_s"] = float(m["img"])
            result["device"] = f"{m['device']} ({m['threads']} threads)"
    if "plain_img_per_s" not in result or "regularized_img_per_s" not in result:
        sys.exit("error: could not read the PyTorch benchmark's output")
    return result


def best_of(best, run):
    """`run` with each step kind's images/s the higher of `best`'s and its own."""
    for kind in ("plain", "regularized"):
        key = kind + "_img_per_s"
        run[key] = max(run[key], best.get(key, 0.0))
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vkgan", default=os.path.join(HERE, "..", "target", "release", "vkgan"),
                   help="the vkgan binary (default: target/release/vkgan)")
    p.add_argument("--python", default=sys.executable,
                   help="a python with torch and labml-nn (default: this one)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d-latent", type=int, default=512)
    p.add_argument("--mapping-layers", type=int, default=8)
    p.add_argument("--g-features", type=int, default=32)
    p.add_argument("--g-max-features", type=int, default=512)
    p.add_argument("--d-features", type=int, default=64)
    p.add_argument("--d-max-features", type=int, default=512)
    p.add_argument("--steps", type=int, default=5, help="timed steps of each kind, both sides")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs of each side, alternating; the best images/s of each is kept")
    p.add_argument("--device", type=int, help="vkgan's Vulkan device index")
    p.add_argument("--json", action="store_true", help="print one line of JSON instead")
    args = p.parse_args()

    vk, pt = {}, {}
    for _ in range(max(1, args.rounds)):
        vk = best_of(vk, vkgan_side(args))
        pt = best_of(pt, torch_side(args))
    ratios = {k: vk[k + "_img_per_s"] / pt[k + "_img_per_s"] for k in ("plain", "regularized")}
    if args.json:
        print(json.dumps({"vkgan": vk, "torch": pt, "ratio": ratios}))
        return
    r = args.image_size
    print(f"{r}x{r}, batch {args.batch}, d_latent {args.d_latent}, {args.mapping_layers} mapping "
          f"layers, G features {args.g_features}..{args.g_max_features}, D features "
          f"{args.d_features}..{args.d_max_features}, {args.steps} timed steps")
    print(f"vkgan:   {vk['device']}")
    print(f"PyTorch: {pt['device']}")
    print(f"{'step':<14}{'vkgan img/s':>14}{'PyTorch img/s':>16}{'vkgan/PyTorch':>16}")
    for k in ("plain", "regularized"):
        print(f"{k:<14}{vk[k + '_img_per_s']:>14.2f}{pt[k + '_img_per_s']:>16.2f}"
              f"{ratios[k]:>16.3f}")
    print(f"vkgan peak device memory: {vk['peak_device_bytes'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
