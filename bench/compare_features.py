#!/usr/bin/env python3
"""Checks that the Python reference computed the same features as roofline (bench/run.sh, row 2):
per column shared by both tables, the share of buildings equal within 1e-3 and the correlation.
Usage: python3 bench/compare_features.py roofline-features.parquet python-reference.parquet
"""
import sys

import numpy as np
import pandas as pd

ours = pd.read_parquet(sys.argv[1])
theirs = pd.read_parquet(sys.argv[2])
ours.index = ours["id"].astype(str)
theirs.index = theirs["id"].astype(str)
rows = ours.index.intersection(theirs.index)
skip = {"id", "geometry", "height_m", "city", "label", "flag"}
cols = [c for c in theirs.columns if c in ours.columns and c not in skip]
print(f"{len(rows)} buildings, {len(cols)} feature columns in both")
for c in cols:
    a = ours.loc[rows, c].astype(float).to_numpy()
    b = theirs.loc[rows, c].astype(float).to_numpy()
    m = np.isfinite(a) & np.isfinite(b)
    equal = np.mean(np.isclose(a[m], b[m], rtol=1e-3, atol=1e-3))
    if equal < 0.99:
        r = np.corrcoef(a[m], b[m])[0, 1]
        print(f"  {c}: {100 * equal:.1f} % equal within 1e-3, r = {r:.4f}")
print("every other column: >= 99 % of buildings equal within 1e-3")
