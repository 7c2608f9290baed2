#!/usr/bin/env python3
"""Learning curves of vkgan and the PyTorch reference, measured the same way: MS-SWD (x1e3) of
each run's EMA generator against the training images, by `vkgan metrics`.

usage: compare_learning.py --vkgan-run RUN [--vkgan-run RUN2 ...] --torch-run RUN [...]
                           [--group "LABEL=RUN" ...] [--raw]
                           [--vkgan target/release/vkgan] [--num N] [--swd-seed S]
                           [--plot assets/readme/swd-vs-pytorch.png] [--no-remeasure]
                           [--record FILE] [--recorded FILE]

`--record FILE` adds every measured curve to FILE (JSON: label, run, seed, generator, SWD per
step), replacing an entry of the same label, run and generator; `--recorded FILE` reads the
curves in FILE back as if measured, for runs whose directories are gone (a machine that went
away), so that seeds run on different machines add up to one table and plot. Give both to
accumulate.

`--group LABEL=RUN` adds runs under a label of their own (e.g. "vkgan --augment ada=runs/a0");
runs of one label are seeds of one configuration. `--raw` measures every checkpoint's raw
(non-averaged) generator too (`vkgan metrics --raw`), drawn dashed.

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


def measure(vkgan, run, num, seed, raw=False):
    """{step: swd_mean} for every checkpoint of `run` (its raw generator with `raw`), cached in
    RUN/swd-cache.json."""
    cache_path = Path(run) / "swd-cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    result = {}
    for step, path in checkpoints(run):
        st = path.stat()
        key = f"{path.name}|{st.st_size}|{int(st.st_mtime)}|num={num}|seed={seed}"
        if raw:
            key += "|raw"
        if key not in cache:
            cmd = [vkgan, "metrics", "--checkpoint", str(path), "--num", str(num),
                   "--seed", str(seed), "--json"] + (["--raw"] if raw else [])
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


def label_of(run, kind, many):
    name = "vkgan" if kind == "vkgan" else "PyTorch reference"
    if not many:
        return name
    cfg = json.loads((Path(run) / "config.json").read_text())
    return f"{name}, seed {cfg.get('seed')}"


def with_seed(label, kind, seed):
    """A --group row's label with its run's seed (its seeds share the label); --vkgan-run and
    --torch-run rows already name theirs."""
    return label if kind in ("vkgan", "torch") or seed is None else f"{label}, seed {seed}"


def curve_key(curve):
    """What makes a recorded curve the same curve: one run's generator under one label."""
    return curve["label"], curve["run"], curve["generator"]


def record_entry(label, kind, which, run, num, swd_seed, pts):
    """One measured curve as --record stores it."""
    cfg_path = Path(run) / "config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    return {"label": label, "kind": kind, "run": Path(run).name, "seed": cfg.get("seed"),
            "generator": which, "num": num, "swd_seed": swd_seed,
            "swd": {str(k): v for k, v in sorted(pts.items())}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vkgan-run", action="append", default=[])
    ap.add_argument("--torch-run", action="append", default=[])
    ap.add_argument("--group", action="append", default=[], metavar="LABEL=RUN")
    ap.add_argument("--raw", action="store_true", help="also measure the raw generators")
    ap.add_argument("--title", default="vkgan vs the PyTorch reference, quick preset")
    ap.add_argument("--vkgan", default="target/release/vkgan")
    ap.add_argument("--num", type=int, help="default: the first vkgan run's swd_num")
    ap.add_argument("--swd-seed", type=int, default=SWD_SEED)
    ap.add_argument("--plot", default="assets/readme/swd-vs-pytorch.png")
    ap.add_argument("--no-remeasure", action="store_true",
                    help="for vkgan runs, only the in-training values")
    ap.add_argument("--log-y", action="store_true")
    ap.add_argument("--record", help="add the measured curves to this JSON file")
    ap.add_argument("--recorded", help="read curves measured before from this JSON file")
    a = ap.parse_args()
    groups = [(label_of(r, "vkgan", len(a.vkgan_run) > 1), "vkgan", r) for r in a.vkgan_run]
    groups += [(label_of(r, "torch", len(a.torch_run) > 1), "torch", r) for r in a.torch_run]
    for g in a.group:
        name, _, run = g.partition("=")
        if not run:
            sys.exit(f"--group {g}: expected LABEL=RUN")
        groups.append((name, name, run))
    recorded = json.loads(Path(a.recorded).read_text())["curves"] if a.recorded else []
    if not groups and not recorded:
        sys.exit("no runs: give --vkgan-run, --torch-run, --group or --recorded")
    if groups:
        first_vkgan = next((r for _, k, r in groups if k != "torch"), groups[0][2])
        cfg = json.loads((Path(first_vkgan) / "config.json").read_text())
        num = a.num or cfg.get("swd_num", 256)
    else:
        num = a.num or recorded[0]["num"]

    # (row label, kind, generator "ema" or "raw", {step: swd}); kind groups seeds.
    series = []
    weights = ["ema", "raw"] if a.raw else ["ema"]
    fresh = []  # what --record stores
    for name, kind, run in groups:
        for which in weights:
            suffix = "" if which == "ema" else " (raw)"
            if kind != "torch" and a.no_remeasure:
                continue
            pts = measure(a.vkgan, run, num, a.swd_seed, which == "raw")
            entry = record_entry(name, kind, which, run, num, a.swd_seed, pts)
            fresh.append(entry)
            series.append((with_seed(name, kind, entry["seed"]) + suffix, kind, which, pts))
        if kind == "vkgan":
            series.append((name + " (in training)", "vkgan-train", "ema", in_training(run)))
    fresh_keys = {curve_key(c) for c in fresh}
    for c in recorded:
        if curve_key(c) in fresh_keys:
            continue
        if c["num"] != num or c["swd_seed"] != a.swd_seed:
            sys.exit(f"{a.recorded}: {c['run']} was measured with --num {c['num']} --swd-seed "
                     f"{c['swd_seed']}, not {num} and {a.swd_seed}")
        suffix = "" if c["generator"] == "ema" else " (raw)"
        series.append((with_seed(c["label"], c["kind"], c["seed"]) + suffix, c["kind"],
                       c["generator"],
                       {int(k): v for k, v in c["swd"].items()}))
    if a.record:
        path = Path(a.record)
        old = json.loads(path.read_text())["curves"] if path.exists() else []
        kept = [c for c in old if curve_key(c) not in fresh_keys]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"curves": kept + fresh}, indent=1) + "\n")
        print(f"recorded {len(fresh)} curves in {path}", file=sys.stderr)
    # With several seeds of a kind, the mean over them at the steps every run measured.
    means = []
    kinds = list(dict.fromkeys(k for _, k, _, _ in series if k != "vkgan-train"))
    for kind in kinds:
        for which in weights:
            runs = [pts for _, k, w, pts in series if k == kind and w == which]
            if len(runs) > 1:
                common = set.intersection(*(set(p) for p in runs))
                who = {"vkgan": "vkgan", "torch": "PyTorch"}.get(kind, kind)
                suffix = "" if which == "ema" else " (raw)"
                means.append((f"{who} mean of {len(runs)}{suffix}", kind, which,
                              {s: sum(p[s] for p in runs) / len(runs) for s in common}))
    table = series + means

    steps = sorted({s for _, _, _, pts in table for s in pts})
    print(f"MS-SWD x1e3 of the EMA generator (and with --raw the raw one), {num} generated "
          f"against {num} real images, "
          f"`vkgan metrics --num {num} --seed {a.swd_seed}` (in training: seeds 2^32..)\n")
    # One row per run (there are more runs than measured steps).
    print("| step | " + " | ".join(f"{s:,}" for s in steps) + " |")
    print("|---|" + "---:|" * len(steps))
    for name, _, _, pts in table:
        cells = [f"{pts[s]:.1f}" if s in pts else "" for s in steps]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for _, _, run in groups:
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
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    colours = {k: palette[i % len(palette)] for i, k in enumerate(kinds)}
    styles = {"ema": "-", "raw": "--"}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    labelled = set()
    for name, kind, which, pts in series:
        # The in-training values are in the table; on the plot they would hide under the
        # remeasured curve.
        if kind == "vkgan-train":
            if not a.no_remeasure:
                continue
            kind = "vkgan"
        colour = colours.get(kind, "tab:gray")
        xs = sorted(pts)
        seeds = sum(1 for _, k, w, _ in series if k == kind and w == which)
        if seeds > 1:
            # One legend entry for all the seeds of a kind; the mean is drawn bold below.
            raw_tag = " (raw)" if which == "raw" else ""
            entry = (None if (kind, which) in labelled
                     else f"{name.split(',')[0]}: seeds{raw_tag}")
            labelled.add((kind, which))
            ax.plot(xs, [pts[x] for x in xs], styles[which], marker=".", color=colour,
                    alpha=0.3, lw=1, ms=4, label=entry)
        else:
            ax.plot(xs, [pts[x] for x in xs], styles[which], marker="o", color=colour, lw=1.8,
                    ms=4, label=name)
    for name, kind, which, pts in means:
        xs = sorted(pts)
        ax.plot(xs, [pts[x] for x in xs], styles[which], marker="o", color=colours[kind],
                lw=2.2, ms=5, label=name)
    ax.set_xlabel("training step (updates)")
    ax.set_ylabel("MS-SWD x1e3 (lower is better)")
    if a.log_y:
        ax.set_yscale("log")
    what = "EMA (solid) and raw (dashed) generators" if a.raw else "the EMA generator"
    ax.set_title(f"{a.title}\nMS-SWD of {what} ({num} images)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.plot)
    print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
