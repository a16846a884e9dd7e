#!/usr/bin/env python3
"""Leave-one-city-out ablation over seeds: what helps a city the model never saw.

Runs `roofline cv` on the two label families (roof-p70: Amsterdam, Delft x2, Wageningen; eave:
Perigueux, Olemps) for each variant and seed, then prints one Markdown table per measure with
the mean over seeds and the spread (min-max). The `gbm` variant also runs the local-data
scenarios (sparse LiDAR, local labels). Not part of the test suite: ~15 min on 2 cores.

    cargo build --release && python3 bench/ablation.py --bin target/release/roofline --out /tmp/ablation
    python3 bench/ablation.py --out /tmp/ablation --no-run     # tables from an earlier run
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOF = ["amsterdam-centre", "delft-3dfier", "wageningen", "delft-5910"]
EAVE = ["perigueux", "olemps"]
SCENARIOS = ["--sparse-lidar", "density=0.05", "--sparse-lidar", "strips=0.2",
             "--sparse-lidar", "tracks=70", "--local-labels", "0.05"]
VARIANTS = {
    "gbm": [],
    "forest": ["--model", "forest"],
    "huber": ["--loss", "huber"],
    "pooled": ["--intervals", "pooled"],
    "worst": ["--intervals", "worst-city"],
}


def run(binary, out, seeds):
    for name, extra in VARIANTS.items():
        for seed in seeds:
            for fam, cities in (("roof", ROOF), ("eave", EAVE)):
                d = os.path.join(out, f"{name}-{fam}-s{seed}")
                if os.path.exists(os.path.join(d, "metrics.json")):
                    continue
                sc = []
                if name == "gbm":
                    sc = SCENARIOS if fam == "roof" else ["--local-labels", "0.05"]
                cmd = [binary, "--quiet", "cv", *[f"data/cities/{c}.toml" for c in cities],
                       "-o", d, "--seed", str(seed), *extra, *sc]
                print(" ".join(cmd), file=sys.stderr)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def load(out, name, seed):
    rows = {}
    for fam in ("roof", "eave"):
        p = os.path.join(out, f"{name}-{fam}-s{seed}", "metrics.json")
        if not os.path.exists(p):
            return None
        m = json.load(open(p))
        for c in m["per_city"]:
            rows[("none", c["city"])] = c["model"]
        for sc in m.get("scenarios", []):
            for c in sc["per_city"]:
                rows[(sc["name"], c["city"])] = c["model"]
    return rows


def cell(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean = statistics.mean(values)
    return f"{fmt(mean)} ({fmt(min(values))}–{fmt(max(values))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/roofline")
    ap.add_argument("--out", default="/tmp/roofline-ablation")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--no-run", action="store_true")
    a = ap.parse_args()
    if not a.no_run:
        run(a.bin, a.out, a.seeds)
    cities = ROOF + EAVE
    data = {}
    for name in VARIANTS:
        runs = [load(a.out, name, s) for s in a.seeds]
        if all(r is not None for r in runs):
            data[name] = runs
    m2 = lambda v: f"{v:.2f}"
    pc = lambda v: f"{100 * v:.0f} %"
    print(f"Leave-one-city-out MAE (m): mean over seeds {a.seeds} (min–max)\n")
    print("| variant | " + " | ".join(cities) + " | mean of six |")
    print("|---|" + "---:|" * (len(cities) + 1))
    for name, runs in data.items():
        cols = [cell([r[("none", c)]["mae"] for r in runs], m2) for c in cities]
        six = cell([statistics.mean(r[("none", c)]["mae"] for c in cities) for r in runs], m2)
        print(f"| {name} | " + " | ".join(cols) + f" | {six} |")
    print(f"\nLeave-one-city-out 90 % coverage and median width (m), mean over seeds\n")
    print("| variant | " + " | ".join(cities) + " |")
    print("|---|" + "---:|" * len(cities))
    for name, runs in data.items():
        cols = []
        for c in cities:
            cov = statistics.mean(r[("none", c)]["coverage"] for r in runs)
            w = statistics.mean(r[("none", c)]["median_interval_width"] for r in runs)
            cols.append(f"{pc(cov)}, {w:.1f}")
        print(f"| {name} | " + " | ".join(cols) + " |")
    if "gbm" in data:
        runs = data["gbm"]
        names = sorted({k[0] for r in runs for k in r if k[0] != "none"})
        print("\nLocal-data scenarios (gbm): MAE (m), mean over seeds (min–max); 90 % coverage\n")
        print("| scenario | " + " | ".join(cities) + " |")
        print("|---|" + "---:|" * len(cities))
        for sc in ["none"] + names:
            cols = []
            for c in cities:
                vals = [r.get((sc, c)) for r in runs]
                if any(v is None for v in vals):
                    cols.append("–")
                    continue
                cov = statistics.mean(v["coverage"] for v in vals)
                cols.append(f"{cell([v['mae'] for v in vals], m2)}; {pc(cov)}")
            print(f"| {sc} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
