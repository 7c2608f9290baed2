#!/usr/bin/env python3
"""Learning curves of vkgan and the PyTorch reference, measured the same way: MS-SWD (x1e3) of
each run's EMA generator against the training images, by `vkgan metrics`.

usage: compare_learning.py --vkgan-run RUN [--vkgan-run RUN2 ...] --torch-run RUN [...]
                           [--vkgan target/release/vkgan] [--num N] [--swd-seed S]
                           [--plot assets/readme/swd-vs-pytorch.png] [--no-remeasure]

For every run, each checkpoint in RUN/checkpoints is measured with
`vkgan metrics --checkpoint FILE --num N --seed S --json`, where N and S default to what vkgan's
in-training measurement uses (the vkgan run's `swd_num`, 256 in `--preset quick`, and seed 0,
`SWD_SEED` in src/train/snapshots.rs); the real images are the same evenly spaced subset of the
training set in both, and the generated images come from seeds 0..N (the in-training
measurement draws seeds 2^32.., so it is the same measurement of different latents). A
checkpoint at step k holds the weights after k updates. For vkgan runs the in-training values
of metrics.jsonl are listed too (its record for step idx is measured after idx+1 updates).
Results are cached in RUN/swd-cache.json. Prints a Markdown table and the wall time of each run
(first to last metrics.jsonl record, plus one step's average; vkgan's includes its in-training
SWD and sample writing), one row per run, and draws the curves (needs matplotlib). With several runs of a kind
(seeds), their mean is added to the table and drawn bold.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

SWD_SEED = 0


def read_jsonl(path):
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def checkpoints(run):
    found = []
    for p in sorted((Path(run) / "checkpoints").glob("checkpoint-*.safetensors")):
        digits = p.name[len("checkpoint-"):-len(".safetensors")]
        if digits.isdigit():
            found.append((int(digits), p))
    return found


def measure(vkgan, run, num, seed):
    """{step: swd_mean} for every checkpoint of `run`, cached in RUN/swd-cache.json."""
    cache_path = Path(run) / "swd-cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    result = {}
    for step, path in checkpoints(run):
        st = path.stat()
        key = f"{path.name}|{st.st_size}|{int(st.st_mtime)}|num={num}|seed={seed}"
        if key not in cache:
            cmd = [vkgan, "metrics", "--checkpoint", str(path), "--num", str(num),
                   "--seed", str(seed), "--json"]
            print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            cache[key] = json.loads(line.strip().splitlines()[-1])["swd_mean"]
            cache_path.write_text(json.dumps(cache, indent=1) + "\n")
        result[step] = cache[key]
    return result


def in_training(run):
    """{updates: swd} from a vkgan run's metrics.jsonl."""
    return {r["step"] + 1: r["swd"] for r in read_jsonl(Path(run) / "metrics.jsonl")
            if isinstance(r.get("swd"), (int, float))}


def wall_time(run):
    recs = read_jsonl(Path(run) / "metrics.jsonl")
    if len(recs) < 2:
        return None
    span = recs[-1]["time"] - recs[0]["time"]
    return span + span / (len(recs) - 1), len(recs)


def label(run, kind, many):
    name = "vkgan" if kind == "vkgan" else "PyTorch reference"
    if not many:
        return name
    cfg = json.loads((Path(run) / "config.json").read_text())
    return f"{name}, seed {cfg.get('seed')}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vkgan-run", action="append", required=True)
    ap.add_argument("--torch-run", action="append", required=True)
    ap.add_argument("--vkgan", default="target/release/vkgan")
    ap.add_argument("--num", type=int, help="default: the first vkgan run's swd_num")
    ap.add_argument("--swd-seed", type=int, default=SWD_SEED)
    ap.add_argument("--plot", default="assets/readme/swd-vs-pytorch.png")
    ap.add_argument("--no-remeasure", action="store_true",
                    help="for vkgan runs, only the in-training values")
    ap.add_argument("--log-y", action="store_true")
    a = ap.parse_args()
    num = a.num or json.loads((Path(a.vkgan_run[0]) / "config.json").read_text())["swd_num"]

    series = []  # (label, kind, {step: swd}); kind "vkgan", "vkgan-train" or "torch"
    many_v, many_t = len(a.vkgan_run) > 1, len(a.torch_run) > 1
    for run in a.vkgan_run:
        name = label(run, "vkgan", many_v)
        if not a.no_remeasure:
            series.append((name, "vkgan", measure(a.vkgan, run, num, a.swd_seed)))
        series.append((name + " (in training)", "vkgan-train", in_training(run)))
    for run in a.torch_run:
        series.append((label(run, "torch", many_t), "torch",
                       measure(a.vkgan, run, num, a.swd_seed)))
    # With several seeds, the mean over them at the steps every run of the kind measured.
    means = []
    for kind, name in (("vkgan", "vkgan mean"), ("torch", "PyTorch mean")):
        runs = [pts for _, k, pts in series if k == kind]
        if len(runs) > 1:
            common = set.intersection(*(set(p) for p in runs))
            means.append((name, kind, {s: sum(p[s] for p in runs) / len(runs)
                                       for s in common}))
    table = series + means

    steps = sorted({s for _, _, pts in table for s in pts})
    print(f"MS-SWD x1e3 of the EMA generator, {num} generated against {num} real images, "
          f"`vkgan metrics --num {num} --seed {a.swd_seed}` (in training: seeds 2^32..)\n")
    # One row per run (there are more runs than measured steps).
    print("| step | " + " | ".join(f"{s:,}" for s in steps) + " |")
    print("|---|" + "---:|" * len(steps))
    for name, _, pts in table:
        cells = [f"{pts[s]:.1f}" if s in pts else "" for s in steps]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for run in a.vkgan_run + a.torch_run:
        wt = wall_time(run)
        if wt:
            print(f"{run}: {wt[0] / 60:.1f} min for {wt[1]} steps (metrics.jsonl timestamps)")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return
    colours = {"vkgan": "tab:blue", "torch": "tab:orange"}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    labelled = set()
    for name, kind, pts in series:
        # The in-training values are in the table; on the plot they would hide under the
        # remeasured curve.
        if kind == "vkgan-train" and not a.no_remeasure:
            continue
        colour = colours[kind.split("-")[0]]
        xs = sorted(pts)
        if means:
            # One legend entry for all the seeds of a kind.
            runs = sum(1 for _, k, _ in series if k == kind)
            who = "vkgan" if kind == "vkgan" else "PyTorch reference"
            entry = None if kind in labelled else f"{who}, one line per seed ({runs})"
            labelled.add(kind)
            ax.plot(xs, [pts[x] for x in xs], "-", marker=".", color=colour, alpha=0.35,
                    lw=1, ms=4, label=entry)
        else:
            ax.plot(xs, [pts[x] for x in xs], "-o", color=colour, lw=1.8, ms=4, label=name)
    for name, kind, pts in means:
        xs = sorted(pts)
        ax.plot(xs, [pts[x] for x in xs], "-o", color=colours[kind], lw=2.2, ms=5, label=name)
    ax.set_xlabel("training step (updates)")
    ax.set_ylabel("MS-SWD x1e3 (lower is better)")
    if a.log_y:
        ax.set_yscale("log")
    ax.set_title(f"vkgan vs the PyTorch reference, quick preset: MS-SWD of the EMA generator "
                 f"({num} images)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.plot)
    print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
