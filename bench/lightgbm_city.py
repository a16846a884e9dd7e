#!/usr/bin/env python3
"""LightGBM on a `roofline features` table (a benchmark city's): the same rows (ok labels), the
same features and roofline's default point-model settings (500 trees, learning rate 0.05, 31
leaves leaf-wise, >= 5 rows per leaf, half the features per tree (roofline: at most 20), 64
histogram bins, L2 1, 2 threads).
Prints the training time and the in-sample MAE. Run it without OMP_WAIT_POLICY=passive: at
100 000 rows passive waiting made LightGBM 3.7x slower on 2 cores (11 s against 3 s), unlike
the small cities of bench/lightgbm_compare.py.
Usage: python3 bench/lightgbm_city.py features.parquet
"""
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

df = pd.read_parquet(sys.argv[1])
df = df[df["flag"] == "ok"]
not_features = {
    "id", "city", "height_m", "height_raw_m", "flag", "label", "label_detail", "geometry",
    "roof_m", "ground_m", "roof_p50_m", "roof_p90_m", "roof_max_m", "roof_points",
    "roof_density", "coverage", "ground_points", "lidar_share",
}
# roofline trains without the known-neighbour heights unless asked (--known-heights).
cols = [c for c in df.columns if c not in not_features and not c.startswith("known_")
        and pd.api.types.is_numeric_dtype(df[c])]
x, y = df[cols].astype(float), df["height_m"].astype(float)
params = dict(
    objective="regression", learning_rate=0.05, num_leaves=31, min_data_in_leaf=5,
    min_sum_hessian_in_leaf=5.0, feature_fraction=min(0.5, 20 / len(cols)), max_bin=64, lambda_l2=1.0, num_threads=2,
    deterministic=True, force_col_wise=True, seed=42, verbose=-1,
)
t = time.perf_counter()
model = lgb.train(params, lgb.Dataset(x, y), num_boost_round=500)
s = time.perf_counter() - t
mae = float(np.mean(np.abs(model.predict(x) - y)))
print(f"lightgbm: {len(x)} rows, {len(cols)} features, training {s:.2f} s, in-sample MAE {mae:.3f} m")
