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
from pathlib import Path
from typing import Any, Iterable, Optional, Union

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


def _footprints_ipc(gdf: gpd.GeoDataFrame) -> tuple[bytes, Optional[str]]:
    """A GeoDataFrame as an Arrow IPC stream of plain columns (text, float64, int64, bool) and
    WKB geometry, and its CRS as `AUTHORITY:CODE` (or WKT)."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"footprints must be a GeoDataFrame, not {type(gdf).__name__}")
    crs = None
    if gdf.crs is not None:
        auth = gdf.crs.to_authority()
        crs = f"{auth[0]}:{auth[1]}" if auth else gdf.crs.to_wkt()
    geometry = gdf.geometry.name
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
    columns["geometry"] = pa.array(
        [None if g is None else bytes(g) for g in gdf.geometry.to_wkb()], pa.binary()
    )
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes(), crs


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
    fp, crs = _footprints_ipc(footprints) if footprints is not None else (None, None)
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
        recalibrate: bool = True,
        quiet: bool = True,
    ) -> gpd.GeoDataFrame:
        """`roofline predict` on one region: a GeoDataFrame with its columns (`height_m`,
        `height_lo_m`, `height_hi_m`, `source`, ...) and the footprints' own. Known heights in
        the config's `[label]` anchor the prediction unless `recalibrate=False`."""
        return _gdf(self._native.predict(_city(city, footprints), recalibrate, quiet))

    def __repr__(self) -> str:
        cities = ", ".join(c for c, _ in self.training)
        return f"<roofline.Model label={self.label!r} trained on {cities}>"


def load_model(path: Union[str, os.PathLike]) -> Model:
    """Reads a model file."""
    return Model(_native.load_model(Path(path)))


def labels(city: City, footprints: Optional[gpd.GeoDataFrame] = None, *, quiet: bool = True) -> gpd.GeoDataFrame:
    """`roofline labels`: each footprint's measured height and flag."""
    return _gdf(_native.labels(_city(city, footprints), quiet))


def features(
    city: City,
    footprints: Optional[gpd.GeoDataFrame] = None,
    *,
    known_heights: bool = True,
    quiet: bool = True,
) -> gpd.GeoDataFrame:
    """`roofline features`: each footprint's features (and label, where the config has one)."""
    return _gdf(_native.features(_city(city, footprints), known_heights, quiet))


def train(cities: Iterable[Any], *, seed: int = 42, quiet: bool = True) -> Model:
    """`roofline train` with its defaults: each city a config path, dict or TOML text, or a
    `(config, footprints GeoDataFrame)` pair."""
    return Model(_native.train(_cities(cities), seed, quiet))


def cv(
    cities: Iterable[Any],
    output: Union[str, os.PathLike],
    *,
    by: Optional[str] = None,
    seed: int = 42,
    block_size: float = 250.0,
    folds: int = 5,
    buffer: Optional[float] = None,
    local_labels: Iterable[Union[str, float, int]] = (),
    quiet: bool = True,
) -> tuple[dict, gpd.GeoDataFrame, Path]:
    """`roofline cv` with its defaults: leave-one-city-out (`by="city"`, the default from two
    cities on) or spatial blocks within each city (`by="blocks"`), with `local_labels` scenarios
    (`20` buildings, a share `0.02`, `"20:clustered"`). Writes the report folder `output`
    (`report.html`, `report.md`, `metrics.json`, `predictions.parquet`) and returns its metrics,
    its held-out predictions and its path."""
    specs = _cities(cities)
    out = Path(output)
    args = [specs, out, by, seed, block_size, folds]
    if buffer is None:
        _native.cv(*args, local_labels=[str(k) for k in local_labels], quiet=quiet)
    else:
        _native.cv(*args, buffer, [str(k) for k in local_labels], quiet)
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics, gpd.read_parquet(out / "predictions.parquet"), out
