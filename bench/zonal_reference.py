#!/usr/bin/env python3
"""Row 3 of bench/run.sh: imagery zonal statistics with exactextract, the Python package
(https://github.com/isciences/exactextract), on the shipped Wageningen Landsat 8 stack, as a
user would write it: mask clouds with the cfmask band, reproject footprints to the raster's CRS,
buffer 10 m and subtract the footprint for the ring, then coverage-weighted mean, stdev, min and
max of the 7 bands over footprint and ring.

roofline computes the same (plus NDVI and brightness, which this reference leaves out, so the
comparison flatters Python).

    python3 bench/zonal_reference.py make DIR N   # writes DIR/footprints.gpkg + DIR/zonal.toml
    python3 bench/zonal_reference.py run DIR      # prints 'zonal: N footprints in S s'

`make` replicates Wageningen's 1408 BAG footprints N/1408 times on a 1.5 km x 1 km grid inside the
Landsat scene (GENERATED for benchmarks, not a real place).
"""
import os
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource

HERE = os.path.dirname(os.path.abspath(__file__))
CITY = os.path.join(HERE, "..", "data", "cities", "wageningen")
STACK = os.path.join(CITY, "imagery/landsat8-2014/LC08_197024_20140419_SR_b1-7_stack_DERIVED.tif")
MASK = os.path.join(CITY, "imagery/landsat8-2014/LC81970242014109LGN00_cfmask.tif")
BANDS = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]


def make(out_dir, n):
    src = gpd.read_file(os.path.join(CITY, "footprints/wageningen_buildings_DERIVED.gpkg"), layer="buildings")
    copies = -(-n // len(src))
    cols = 9
    parts = []
    for k in range(copies):
        dx, dy = 1500.0 * (k % cols - cols // 2), 1000.0 * (k // cols - 4)
        g = src[["identifica", "geometry"]].copy()
        g["geometry"] = shapely.transform(g.geometry.values, lambda c, dx=dx, dy=dy: c + [dx, dy])
        g["identifica"] = g["identifica"].astype(str) + f"~{k}"
        parts.append(g)
    fp = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True).iloc[:n], crs=src.crs)
    os.makedirs(out_dir, exist_ok=True)
    fp.to_file(os.path.join(out_dir, "footprints.gpkg"), layer="buildings", driver="GPKG")
    with open(os.path.join(out_dir, "zonal.toml"), "w") as f:
        f.write(f"""# GENERATED for benchmarks: Wageningen footprints replicated {copies}x (bench/zonal_reference.py)
name = "zonal-bench"
[footprints]
path = "footprints.gpkg"
layer = "buildings"
id = "identifica"
[[imagery]]
name = "l8"
path = "{os.path.abspath(STACK)}"
bands = {BANDS!r}
scale = 0.0001
mask = {{ path = "{os.path.abspath(MASK)}", clear = [0, 1] }}
""".replace("'", '"'))


def run(out_dir):
    # Timed from after the footprints are read, as roofline's `imagery` stage is.
    fp = gpd.read_file(os.path.join(out_dir, "footprints.gpkg"), layer="buildings")
    t0 = time.perf_counter()
    with rasterio.open(STACK) as r, rasterio.open(MASK) as m:
        data = r.read().astype(np.float64)
        nodata = r.nodata
        clear = np.isin(m.read(1), [0, 1])
        b = r.bounds
        wkt = r.crs.to_wkt()
    data[(data == nodata) | ~clear[None, :, :]] = np.nan
    data *= 0.0001
    rasters = [
        NumPyRasterSource(data[i], b.left, b.bottom, b.right, b.top, name=BANDS[i], srs_wkt=wkt)
        for i in range(len(BANDS))
    ]
    fp = fp.to_crs(wkt)
    ring = fp.copy()
    ring["geometry"] = shapely.difference(fp.geometry.buffer(10.0).values, fp.geometry.values)
    t_read = time.perf_counter() - t0
    ops = ["mean", "stdev", "min", "max"]
    inner = exact_extract(rasters, fp, ops, output="pandas")
    outer = exact_extract(rasters, ring, ops, output="pandas")
    t = time.perf_counter() - t0
    assert len(inner) == len(fp) and len(outer) == len(fp)
    print(f"zonal: {len(fp)} footprints in {t:.2f} s (reading, masking, reprojecting, ring {t_read:.2f} s); "
          f"{inner.shape[1] + outer.shape[1]} columns; mean red {np.nanmean(inner['red_mean']):.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[2])
