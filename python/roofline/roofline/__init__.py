"""roofline from Python: the library's stages on GeoDataFrames, with no logic of their own.

A *city* is a config file's path, or a config given as a dict or TOML text together with its
footprints as a GeoDataFrame in memory (then no file is needed: `[footprints]` may be left
out, or name only its `id` field)::

    import roofline
    m = roofline.load_model("models/roof-top.model")
    heights = m.predict("data/cities/delft-5910.toml")            # GeoDataFrame
    heights = m.predict({"name": "delft", "footprints": {"id": "identificatie"}}, footprints=gdf)

Tables come back as GeoDataFrames with the command line's columns and the input's own ones,
in the input's CRS; they cross from Rust as Arrow (WKB geometry with its CRS), not files.
Errors are `RooflineError` subclasses carrying roofline's one-line message.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Optional, Union

import geopandas as gpd
import pandas as pd
import pyarrow as pa

from . import _native
from ._native import (  # noqa: F401  (re-exported)
    ConfigError,
    CrsError,
    FileError,
    FootprintsError,
    InvalidError,
    ModelError,
    ModelFileError,
    OutputError,
    PointCloudError,
    RasterError,
    RooflineError,
)

__all__ = [
    "Model",
    "load_model",
    "labels",
    "features",
    "train",
    "cv",
    "CvResult",
    "RooflineError",
    "ConfigError",
    "CrsError",
    "FootprintsError",
    "PointCloudError",
    "RasterError",
    "ModelFileError",
    "OutputError",
    "FileError",
    "ModelError",
    "InvalidError",
]

City = Union[str, os.PathLike, dict]
KnownHeights = Union[pd.DataFrame, pd.Series, str, os.PathLike]


def _progress(quiet: bool) -> str:
    """Where the library's progress goes: nowhere with `quiet`; bars in `sys.stderr` where
    someone watches it (a notebook cell, a terminal); else the command line's rule (bars
    only on a terminal, summaries on stderr)."""
    if quiet:
        return "quiet"
    watched = "ipykernel" in sys.modules
    try:
        watched = watched or sys.stderr.isatty()
    except (AttributeError, ValueError):
        pass
    return "python" if watched else "stderr"


def _table_ipc(gdf: gpd.GeoDataFrame, geometry: bool = True) -> tuple[bytes, Optional[str]]:
    """A GeoDataFrame as an Arrow IPC stream of plain columns (text, float64, int64, bool) and
    WKB geometry (unless `geometry` is false), and its CRS as `AUTHORITY:CODE` (or WKT)."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"footprints must be a GeoDataFrame, not {type(gdf).__name__}")
    crs = None
    if geometry and gdf.crs is not None:
        auth = gdf.crs.to_authority()
        crs = f"{auth[0]}:{auth[1]}" if auth else gdf.crs.to_wkt()
    has_geometry = geometry
    geometry = gdf.geometry.name if has_geometry else None
    columns = {}
    for name in gdf.columns:
        if name == geometry:
            continue
        s = gdf[name]
        if pd.api.types.is_bool_dtype(s):
            columns[str(name)] = pa.array(s, pa.bool_(), from_pandas=True)
        elif pd.api.types.is_integer_dtype(s):
            columns[str(name)] = pa.array(s, pa.int64(), from_pandas=True)
        elif pd.api.types.is_float_dtype(s):
            columns[str(name)] = pa.array(s, pa.float64(), from_pandas=True)
        else:
            text = [None if pd.isna(v) else str(v) for v in s.astype(object)]
            columns[str(name)] = pa.array(text, pa.string())
    if has_geometry:
        columns["geometry"] = pa.array(
            [None if g is None else bytes(g) for g in gdf.geometry.to_wkb()], pa.binary()
        )
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes(), crs


def _known_ipc(known: KnownHeights) -> tuple[bytes, Optional[str]]:
    """Known heights as `_native` takes them: a table with `height_m` and the footprints' `id`
    (or a geometry to join by location), from a (Geo)DataFrame, a Series of heights indexed
    by id, or a file GeoPandas reads (CSV, GeoPackage, ...)."""
    if isinstance(known, (str, os.PathLike)):
        known = gpd.read_file(known)
    if isinstance(known, pd.Series):
        known = pd.DataFrame({"id": known.index.astype(str), "height_m": known.to_numpy()})
    if not isinstance(known, pd.DataFrame):
        raise TypeError(
            "known_heights is a DataFrame (id, height_m), a Series of heights by id, a "
            f"GeoDataFrame or a file, not {type(known).__name__}"
        )
    if isinstance(known, gpd.GeoDataFrame) and known._geometry_column_name in known.columns:
        return _table_ipc(known)
    return _table_ipc(gpd.GeoDataFrame(pd.DataFrame(known)), geometry=False)


def _city(city: City, footprints: Optional[gpd.GeoDataFrame] = None) -> tuple:
    """What `_native` takes for a city: (text, is_json, path, folder, footprints, crs)."""
    if isinstance(city, dict):
        text, is_json, path, folder = json.dumps(city), True, "<config dict>", os.getcwd()
    elif isinstance(city, os.PathLike) or (
        # TOML text has a key = value line; anything else is a path (a missing one then says so).
        isinstance(city, str) and "\n" not in city and "=" not in city
    ):
        p = Path(city).resolve()
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"{p}: {e.strerror or e}") from None
        is_json, path, folder = False, str(p), str(p.parent)
    elif isinstance(city, str):
        text, is_json, path, folder = city, False, "<config text>", os.getcwd()
    else:
        raise TypeError(f"a city is a config path, a dict or TOML text, not {type(city).__name__}")
    fp, crs = _table_ipc(footprints) if footprints is not None else (None, None)
    return (text, is_json, Path(path), Path(folder), fp, crs)


def _cities(cities: Iterable[Any]) -> list:
    """`_city` of each: a config, or a `(config, footprints)` pair."""
    return [_city(*c) if isinstance(c, tuple) else _city(c) for c in cities]


def _gdf(ipc: bytes) -> gpd.GeoDataFrame:
    """roofline's Arrow IPC table (geoarrow.wkb geometry with its CRS) as a GeoDataFrame."""
    return gpd.GeoDataFrame.from_arrow(pa.ipc.open_stream(ipc).read_all())


class Model:
    """A trained height model: the `.model` files of `roofline train`, `models/` included."""

    def __init__(self, native: "_native.Model"):
        self._native = native

    @property
    def label(self) -> str:
        """The label family it predicts (`roof-top`, `roof-p70`, `eave`, ...)."""
        return self._native.label

    @property
    def feature_names(self) -> list[str]:
        """The features it reads, in order."""
        return self._native.feature_names

    @property
    def training(self) -> list[tuple[str, int]]:
        """Its training cities and their labelled buildings."""
        return self._native.training

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the model file (the bytes `roofline train -o` writes)."""
        self._native.save(Path(path))

    def predict(
        self,
        city: City,
        footprints: Optional[gpd.GeoDataFrame] = None,
        *,
        known_heights: Optional[KnownHeights] = None,
        recalibrate: bool = True,
        quiet: bool = False,
    ) -> gpd.GeoDataFrame:
        """`roofline predict` on one region: a GeoDataFrame with its columns (`height_m`,
        `height_lo_m`, `height_hi_m`, `source`, ...) and the footprints' own.

        Known heights anchor the prediction unless `recalibrate=False`: the config's `[label]`,
        or `known_heights` instead — a DataFrame with `height_m` (metres, of this model's
        label family) and the footprints' `id` (as the config's `[footprints] id` reads
        them), a Series of heights indexed by id, a GeoDataFrame of points or polygons
        joined by where they lie, or a file of one of these. Their rows come back with
        `source` `survey`."""
        known = None if known_heights is None else _known_ipc(known_heights)
        return _gdf(
            self._native.predict(_city(city, footprints), known, recalibrate, _progress(quiet))
        )

    def __repr__(self) -> str:
        cities = ", ".join(c for c, _ in self.training)
        return f"<roofline.Model label={self.label!r} trained on {cities}>"


def load_model(path: Union[str, os.PathLike]) -> Model:
    """Reads a model file."""
    return Model(_native.load_model(Path(path)))


def labels(city: City, footprints: Optional[gpd.GeoDataFrame] = None, *, quiet: bool = False) -> gpd.GeoDataFrame:
    """`roofline labels`: each footprint's measured height and flag."""
    return _gdf(_native.labels(_city(city, footprints), _progress(quiet)))


def features(
    city: City,
    footprints: Optional[gpd.GeoDataFrame] = None,
    *,
    known_heights: bool = True,
    quiet: bool = False,
) -> gpd.GeoDataFrame:
    """`roofline features`: each footprint's features (and label, where the config has one)."""
    return _gdf(_native.features(_city(city, footprints), known_heights, _progress(quiet)))


def train(cities: Iterable[Any], *, quiet: bool = False, **params: Any) -> Model:
    """`roofline train`: each city a config path, dict or TOML text, or a `(config, footprints
    GeoDataFrame)` pair. `params` are `roofline train`'s model options by name (`seed=7`,
    `trees=300`, `learning_rate=0.05`, `model="forest"`, `loss="huber"`,
    `intervals="pooled"`, `no_intervals=True`, ...); a misspelt one is an error."""
    return Model(_native.train(_cities(cities), json.dumps(params), _progress(quiet)))


class CvResult(NamedTuple):
    """What `cv` returns: the metrics (one row per scenario and held-out city, `pooled` over
    cities; the whole `metrics.json` in `metrics.attrs["json"]`), the held-out predictions and
    the report folder."""

    metrics: pd.DataFrame
    predictions: gpd.GeoDataFrame
    report: Path


_METRICS = ["n", "mae", "rmse", "r2", "median_ae", "bias", "within_2_5m", "coverage",
            "median_interval_width", "out_of_range_share"]


def _metrics_frame(m: dict) -> pd.DataFrame:
    """metrics.json as rows of (scenario, city): the model's metrics and the baseline's MAE."""
    rows = []

    def add(scenario: str, c: dict) -> None:
        row = {"scenario": scenario, "city": c["city"]}
        row.update({k: c["model"].get(k) for k in _METRICS})
        row["baseline_mae"] = (c.get("baseline") or {}).get("mae")
        rows.append(row)

    for c in m["per_city"]:
        add("none", c)
    add("none", dict(m["pooled"], city="pooled"))
    for s in m.get("scenarios", []):
        for c in s["per_city"]:
            add(s["name"], c)
    df = pd.DataFrame(rows)
    df.attrs["json"] = m
    return df


def cv(
    cities: Iterable[Any],
    output: Union[str, os.PathLike],
    *,
    by: Optional[str] = None,
    scenarios: Iterable[Union[str, float, int]] = (),
    block_size: float = 250.0,
    folds: int = 5,
    buffer: Optional[float] = None,
    quiet: bool = False,
    **params: Any,
) -> CvResult:
    """`roofline cv`: leave-one-city-out (`by="city"`, the default from two cities on) or
    spatial blocks within each city (`by="blocks"`). `scenarios` give the held-out city local
    data: known buildings (`20`, a share `0.02`, `"20:clustered"`) or sparse LiDAR
    (`"density=0.05"`, `"strips=0.3"`, `"tracks=500"`). `params` are the model options of
    `train`. Writes the report folder `output` (`report.html`, `report.md`, `metrics.json`,
    `predictions.parquet`) and returns its metrics, held-out predictions and path."""
    out = Path(output)
    kwargs = dict(
        by=by,
        block_size=block_size,
        folds=folds,
        scenarios=[str(s) for s in scenarios],
        params=json.dumps(params),
        progress=_progress(quiet),
    )
    if buffer is not None:
        kwargs["buffer"] = buffer
    _native.cv(_cities(cities), out, **kwargs)
    metrics = json.loads((out / "metrics.json").read_text())
    return CvResult(_metrics_frame(metrics), gpd.read_parquet(out / "predictions.parquet"), out)
