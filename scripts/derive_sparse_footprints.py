#!/usr/bin/env python3
"""Derive building footprints for data/lidar-samples/sparse-1km from the tiles' own points.

One-time data preparation (not run by tests or CI). No footprint data for these two IGN LiDAR HD
tiles is available offline, so the footprints are traced from the class-6 (building) points:

1. rasterise class-6 points on a CELL-metre grid aligned to the tile's lower-left corner
   (a cell is "building" when it holds at least one class-6 point);
2. building area = binary closing (3x3) of that raster, to bridge the gaps left by the
   ~0.3 pts/m² decimation, then fill holes (courtyards fully enclosed by roof cells are filled);
3. split the building area into buildings: the closing alone merges whole old-town centres into
   one ~10 ha blob, so seeds are the 8-connected components of the *raw* raster (before closing)
   with at least MIN_SEED cells, and every building-area cell goes to its nearest seed within the
   same closed component (a closed component without a seed is one building); parts smaller than
   MIN_AREA m² are dropped;
4. each part -> union of its cell squares (shapely), simplified by SIMPLIFY m, made valid,
   largest polygon kept, clipped to the tile's extent;
5. written to footprints_DERIVED.gpkg, layer "footprints", EPSG:2154, fields
   id ("sparse-<tile>-<n>", n numbered in raster order), tile (source LAZ name),
   area_m2 (polygon area) and n_bldg_pts (class-6 points of that tile inside the polygon).

Touching or very close buildings (terraced houses, closed blocks) come out as one footprint.

Requirements: pip install 'laspy[lazrs]' numpy scipy shapely pyogrio
Usage: python3 scripts/derive_sparse_footprints.py   (from the repository root)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import laspy
import numpy as np
import pyogrio.raw
import shapely
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "data" / "lidar-samples" / "sparse-1km"
OUT = FOLDER / "footprints_DERIVED.gpkg"
LAYER = "footprints"
CELL = 2.5  # m; ~1.9 points per fully-roofed cell at 0.3 pts/m²
MIN_AREA = 40.0  # m², smallest building kept (in cells × cell area)
MIN_SEED = 7  # raw-raster cells (~44 m²) for a component to seed a building of its own
SIMPLIFY = 1.0  # m, Douglas-Peucker tolerance
BUILDING = 6


def tile_name(path: Path) -> str:
    """'test_semis_2021_0382_6565_LA93_IGN69_cropped.laz' -> '0382_6565' (km easting_northing)."""
    parts = path.stem.split("_")
    return f"{parts[3]}_{parts[4]}"


def largest_polygon(g: shapely.Geometry) -> shapely.Geometry | None:
    polys = [p for p in shapely.get_parts(g) if isinstance(p, shapely.Polygon) and not p.is_empty]
    if not polys:
        return None
    return max(polys, key=lambda p: p.area)


def split_buildings(occ: np.ndarray) -> np.ndarray:
    """Label raster: 0 outside buildings, else a building number (see steps 2-3 above)."""
    eight = np.ones((3, 3), dtype=bool)
    area = ndimage.binary_fill_holes(ndimage.binary_closing(occ, structure=eight))
    area_lab, n_area = ndimage.label(area)  # 4-connectivity
    seeds, n_seeds = ndimage.label(occ, structure=eight)
    seed_cells = np.bincount(seeds.ravel())
    too_small = seed_cells < MIN_SEED
    too_small[0] = True
    seeds[too_small[seeds]] = 0
    # Closed components holding no seed become one building each.
    seeded = np.zeros(n_area + 1, dtype=bool)
    seeded[area_lab[seeds > 0]] = True
    orphan = area & ~seeded[area_lab]
    seeds[orphan] = n_seeds + area_lab[orphan]
    # Nearest seed cell of every cell (ties broken by scipy's deterministic scan order).
    _, (ri, ci) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    same_area = area_lab[ri, ci] == area_lab
    out = np.where(area & same_area, seeds[ri, ci], 0)
    # Renumber 1..n in raster order of first appearance.
    uniq, first = np.unique(out.ravel(), return_index=True)
    order = uniq[np.argsort(first)]
    order = order[order != 0]
    lut = np.zeros(out.max() + 1, dtype=np.int64)
    lut[order] = np.arange(1, len(order) + 1)
    return lut[out]


def footprints_of(path: Path):
    las = laspy.read(path)
    x0, y0 = las.header.mins[0], las.header.mins[1]
    x0, y0 = np.floor(x0 / CELL) * CELL, np.floor(y0 / CELL) * CELL
    keep = np.asarray(las.classification) == BUILDING
    x, y = np.asarray(las.x)[keep], np.asarray(las.y)[keep]
    col = np.floor((x - x0) / CELL).astype(np.int64)
    row = np.floor((y - y0) / CELL).astype(np.int64)
    # One cell of margin so closing does not stick to the raster edge.
    ncol, nrow = col.max() + 3, row.max() + 3
    occ = np.zeros((nrow, ncol), dtype=bool)
    occ[row + 1, col + 1] = True

    labels = split_buildings(occ)
    n = int(labels.max())
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    tile_box = shapely.box(las.header.mins[0], las.header.mins[1], las.header.maxs[0], las.header.maxs[1])
    min_cells = int(np.ceil(MIN_AREA / CELL**2))

    tile = tile_name(path)
    geoms, ids, areas, npts = [], [], [], []
    slices = ndimage.find_objects(labels)
    k = 0
    for lab in range(1, n + 1):
        if counts[lab] < min_cells:
            continue
        sl = slices[lab - 1]
        rr, cc = np.nonzero(labels[sl] == lab)
        rr = rr + sl[0].start - 1  # back to unpadded grid
        cc = cc + sl[1].start - 1
        xmin = x0 + cc * CELL
        ymin = y0 + rr * CELL
        boxes = shapely.box(xmin, ymin, xmin + CELL, ymin + CELL)
        poly = shapely.coverage_union_all(boxes)
        poly = shapely.simplify(poly, SIMPLIFY, preserve_topology=True)
        poly = largest_polygon(shapely.intersection(shapely.make_valid(poly), tile_box))
        if poly is None or poly.area < MIN_AREA:
            continue
        poly = shapely.orient_polygons(poly) if hasattr(shapely, "orient_polygons") else poly
        k += 1
        bx0, by0, bx1, by1 = poly.bounds
        near = (x >= bx0) & (x <= bx1) & (y >= by0) & (y <= by1)
        inside = int(shapely.contains_xy(poly, x[near], y[near]).sum())
        geoms.append(poly)
        ids.append(f"sparse-{tile}-{k}")
        areas.append(round(poly.area, 1))
        npts.append(inside)
    return path.name, len(x), geoms, ids, areas, npts


def main() -> int:
    files = sorted(FOLDER.glob("*.laz"))
    if not files:
        print(f"{FOLDER}: no .laz files", file=sys.stderr)
        return 1
    all_geoms, all_ids, all_tiles, all_areas, all_npts = [], [], [], [], []
    for f in files:
        name, n6, geoms, ids, areas, npts = footprints_of(f)
        inside = sum(npts)
        print(
            f"{name}: {len(geoms)} footprints, median area {np.median(areas):.0f} m², "
            f"{inside}/{n6} class-6 points inside ({100 * inside / n6:.1f} %)"
        )
        all_geoms += geoms
        all_ids += ids
        all_tiles += [name] * len(geoms)
        all_areas += areas
        all_npts += npts

    tmp = OUT.with_name(OUT.stem + ".tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    pyogrio.raw.write(
        str(tmp),
        geometry=shapely.to_wkb(np.array(all_geoms, dtype=object)),
        field_data=[
            np.array(all_ids, dtype=object),
            np.array(all_tiles, dtype=object),
            np.array(all_areas, dtype=np.float64),
            np.array(all_npts, dtype=np.int32),
        ],
        fields=["id", "tile", "area_m2", "n_bldg_pts"],
        layer=LAYER,
        driver="GPKG",
        geometry_type="Polygon",
        crs="EPSG:2154",
        layer_options={"SPATIAL_INDEX": "YES"},
        # GPKG 1.2 so that Debian's GDAL 3.6 (roofline's) opens it without a version warning.
        dataset_options={"VERSION": "1.2"},
    )
    os.replace(tmp, OUT)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB, {len(all_ids)} features)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
