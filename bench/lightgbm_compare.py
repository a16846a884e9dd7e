#!/usr/bin/env python3
"""LightGBM on exactly the splits roofline's model benchmark uses.

Run `cargo bench --bench models` first (it writes target/bench-data/), then
`OMP_WAIT_POLICY=passive python3 bench/lightgbm_compare.py`. Prints LightGBM's training time and
test MAE next to roofline's (hessboost) for the same rows, features and comparable trees:
500 trees, learning rate 0.05, 31 leaves grown leaf-wise, at least 5 rows per leaf, no row
sampling, half the features per tree, L2 1, 2 threads (roofline's defaults). LightGBM needs OMP_WAIT_POLICY=passive on 2 cores or its spinning threads starve.
"""
import json
import os
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "bench-data")
if os.environ.get("OMP_WAIT_POLICY", "").lower() != "passive":
    print("warning: set OMP_WAIT_POLICY=passive for LightGBM on 2 cores", file=sys.stderr)
ours = {r["split"]: r for r in json.load(open(os.path.join(root, "roofline.json")))}
params = dict(
    objective="regression", learning_rate=0.05, num_leaves=31, min_data_in_leaf=5,
    min_sum_hessian_in_leaf=5.0, feature_fraction=0.5, lambda_l2=1.0, num_threads=2,
    deterministic=True, force_col_wise=True, seed=42, verbose=-1,
)
print(f"LightGBM {lgb.__version__} vs roofline (hessboost), same split, best of 3 training times\n")
print("| split | LightGBM s (2 threads) | roofline s (2 threads) | ratio | LightGBM s (1 thread) | roofline s (1 thread) | LightGBM MAE | roofline MAE | MAE ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for split, r in ours.items():
    train = pd.read_csv(os.path.join(root, f"{split}-train.csv"))
    test = pd.read_csv(os.path.join(root, f"{split}-test.csv"))
    xs, ys = train.drop(columns="height_m"), train["height_m"]
    xt, yt = test.drop(columns="height_m"), test["height_m"]
    times = {}
    for threads in (2, 1):
        best, model = np.inf, None
        for _ in range(3):
            t = time.perf_counter()
            model = lgb.train(dict(params, num_threads=threads), lgb.Dataset(xs, ys), num_boost_round=500)
            best = min(best, time.perf_counter() - t)
        times[threads] = best
    mae = float(np.mean(np.abs(model.predict(xt) - yt)))
    print(
        f"| {split} | {times[2]:.3f} | {r['seconds']:.3f} | {r['seconds'] / times[2]:.2f} | {times[1]:.3f} "
        f"| {r['seconds_1_thread']:.3f} | {mae:.3f} | {r['mae']:.3f} | {r['mae'] / mae:.3f} |"
    )
