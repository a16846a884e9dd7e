#!/usr/bin/env python3
"""Python reference for `roofline labels` + `roofline features` on a benchmark city
(`roofline bench-city`): what a user would write with laspy (lazrs backend), geopandas/shapely
(STRtree) and numpy.

Labels follow roofline's default definition (3DBAG): roof p70 of class-6 points inside the
footprint minus ground p5 of class-2/9 points within 4 m of it. Features are a SUBSET of
roofline's: area, perimeter, and neighbour count / summed area within 25, 50, 100, 200 m.
Usage: python3 bench/city_reference.py DIR/city.toml OUT.parquet
"""
import glob
import os
import sys
import time
import tomllib

import geopandas as gpd
import laspy
import numpy as np
import shapely

cfg_path, out = sys.argv[1], sys.argv[2]
cfg = tomllib.load(open(cfg_path, "rb"))
base = os.path.dirname(os.path.abspath(cfg_path))
t0 = time.perf_counter()
fp = gpd.read_file(os.path.join(base, cfg["footprints"]["path"]), layer=cfg["footprints"].get("layer"))
geoms = fp.geometry.values
n = len(fp)
ring = 4.0
tree = shapely.STRtree(geoms)
roof = [[] for _ in range(n)]
ground = [[] for _ in range(n)]
files = sorted(glob.glob(os.path.join(base, cfg["lidar"]["paths"][0])))
points = 0
for f in files:
    with laspy.open(f, laz_backend=laspy.LazBackend.Lazrs) as r:
        for chunk in r.chunk_iterator(1 << 20):
            x, y, z = np.asarray(chunk.x), np.asarray(chunk.y), np.asarray(chunk.z)
            c = np.asarray(chunk.classification)
            points += len(x)
            for cls, within, store in (((6,), 0.0, roof), ((2, 9), ring, ground)):
                m = np.isin(c, cls)
                pts = shapely.points(x[m], y[m])
                zz = z[m]
                if within == 0.0:
                    pi, bi = tree.query(pts, predicate="within")
                else:
                    pi, bi = tree.query(pts, predicate="dwithin", distance=within)
                order = np.argsort(bi, kind="stable")
                bi, pi = bi[order], pi[order]
                cuts = np.flatnonzero(np.diff(bi)) + 1
                for b, p in zip(np.split(bi, cuts), np.split(pi, cuts)):
                    if len(b):
                        store[b[0]].append(zz[p])
t_labels = time.perf_counter() - t0


def pct(lists, q):
    return np.array([np.percentile(np.concatenate(v), q) if v else np.nan for v in lists])


fp["roof_m"] = pct(roof, 70)
fp["ground_m"] = pct(ground, 5)
fp["roof_p50_m"] = pct(roof, 50)
fp["roof_p90_m"] = pct(roof, 90)
fp["height_m"] = fp["roof_m"] - fp["ground_m"]
fp["area"] = shapely.area(geoms)
fp["perimeter"] = shapely.length(geoms)
cent = shapely.centroid(geoms)
ctree = shapely.STRtree(cent)
area = fp["area"].to_numpy()
for r in (25, 50, 100, 200):
    qi, ni = ctree.query(cent, predicate="dwithin", distance=r)
    keep = qi != ni
    fp[f"n_within_{r}m"] = np.bincount(qi[keep], minlength=n)
    fp[f"area_sum_{r}m"] = np.bincount(qi[keep], weights=area[ni[keep]], minlength=n)
fp.to_parquet(out)
t_all = time.perf_counter() - t0
print(f"python reference: {n} buildings, {points} points, labels {t_labels:.1f} s, labels+features {t_all:.1f} s")
