"""The Python package against the command line: same heights, same features, same model bytes,
errors as exceptions. Run by the test command after `maturin develop` (README "From Python");
`ROOFLINE_BIN` names the command-line binary built by the same test run."""
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import roofline

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data"
DELFT = DATA / "cities" / "delft-5910.toml"
DELFT_GPKG = DATA / "cities" / "delft-5910" / "footprints_DERIVED.gpkg"
BIN = Path(os.environ.get("ROOFLINE_BIN", REPO / "target" / "debug" / "roofline"))
DELFT_DICT = {
    "name": "delft-5910",
    "footprints": {"id": "identificatie"},
    "label": {"source": "attribute", "name": "roof-p70", "field": "h_70p"},
}


def cli(*args):
    r = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def same_frames(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame):
    """Equal column for column and value for value (floats bit for bit), geometry WKB for WKB."""
    assert list(a.columns) == list(b.columns)
    assert a.crs == b.crs
    for c in a.columns:
        if c == a.geometry.name:
            assert list(a.geometry.to_wkb()) == list(b.geometry.to_wkb()), c
            continue
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if a[c].dtype.kind == "f":
            assert np.array_equal(x.view(np.int64), y.view(np.int64)) or np.array_equal(
                x, y, equal_nan=True
            ), c
        else:
            assert list(a[c].where(a[c].notna(), None)) == list(b[c].where(b[c].notna(), None)), c


def test_predict_equals_the_command_line_bit_for_bit(tmp_path):
    model = roofline.load_model(REPO / "models" / "roof-top.model")
    ours = model.predict(DELFT)
    out = tmp_path / "cli.parquet"
    cli("predict", "--quiet", "--model", REPO / "models" / "roof-top.model", DELFT, "-o", out)
    theirs = gpd.read_parquet(out)
    assert len(ours) == 429
    assert ours["height_m"].between(1, 80).all()
    same_frames(ours, theirs)


def test_a_geodataframe_in_memory_gives_the_features_of_its_file():
    from_file = roofline.features(DELFT, known_heights=False)
    gdf = gpd.read_file(DELFT_GPKG, layer="footprints")
    in_memory = roofline.features(DELFT_DICT, footprints=gdf, known_heights=False)
    assert from_file.shape == (429, 48)
    same_frames(from_file, in_memory)


def test_predict_on_a_geodataframe_keeps_its_columns_and_anchors_on_its_labels():
    gdf = gpd.read_file(DELFT_GPKG, layer="footprints")
    gdf = gdf[["identificatie", "h_70p", "oorspronkelijkbouwjaar", "geometry"]].copy()
    # A cleaned table a user would hand over: a few heights known, the rest unknown.
    known = gdf["h_70p"].copy()
    known.iloc[20:] = np.nan
    gdf["h_70p"] = known
    gdf["note"] = "kept"
    gdf["fid"] = np.arange(len(gdf)) * 10  # GeoPackage's FID name: kept, as input_fid like any clash
    model = roofline.load_model(REPO / "models" / "roof-p70.model")
    p = model.predict(DELFT_DICT, footprints=gdf)
    assert len(p) == len(gdf)
    assert {"oorspronkelijkbouwjaar", "note", "height_m", "source"} <= set(p.columns)
    assert (p["note"] == "kept").all()
    assert sorted(p["input_fid"]) == list(range(0, 10 * len(gdf), 10))
    counts = p["source"].value_counts()
    assert counts.get("measured", 0) == int(known.notna().sum()) > 0
    assert counts.get("recalibrated", 0) == len(gdf) - counts["measured"]
    assert p.crs == gdf.crs


def test_a_geodataframe_of_geometry_alone_keeps_every_row():
    gdf = gpd.read_file(DELFT_GPKG, layer="footprints")[["geometry"]]
    p = roofline.load_model(REPO / "models" / "roof-top.model").predict({"name": "bare"}, footprints=gdf)
    assert len(p) == len(gdf) == 429
    assert p["height_m"].notna().all() and (p["source"] == "predicted").all()


def test_train_makes_the_command_lines_model(tmp_path):
    ours = roofline.train([DATA / "cities" / "delft-3dfier.toml"], seed=7)
    ours.save(tmp_path / "py.model")
    cli("train", "--quiet", "--seed", 7, DATA / "cities" / "delft-3dfier.toml", "-o", tmp_path / "cli.model")
    assert (tmp_path / "py.model").read_bytes() == (tmp_path / "cli.model").read_bytes()
    assert ours.label == "roof-p70"
    assert ours.training == [("delft-3dfier", 160)]
    again = roofline.load_model(tmp_path / "py.model")
    assert again.feature_names == ours.feature_names


def test_labels_from_a_config():
    labels = roofline.labels(DELFT)
    assert len(labels) == 429
    assert labels.crs.to_epsg() == 28992
    assert (labels["flag"] == "ok").sum() > 400


def test_errors_are_exceptions_with_the_one_line_message(tmp_path):
    with pytest.raises(roofline.ModelFileError, match="README.md: .*not a roofline model"):
        roofline.load_model(REPO / "README.md")
    with pytest.raises(roofline.ConfigError, match="missing.toml"):
        roofline.features(tmp_path / "missing.toml")
    with pytest.raises(roofline.ConfigError, match="no_such_config"):
        roofline.features(str(tmp_path / "no_such_config"))
    gdf = gpd.read_file(DELFT_GPKG, layer="footprints").set_crs(None, allow_override=True)
    with pytest.raises(roofline.ConfigError, match="no CRS"):
        roofline.features(DELFT_DICT, footprints=gdf)
    bad = dict(DELFT_DICT, footprints={"id": "no_such_field"})
    with pytest.raises(roofline.RooflineError, match="no_such_field"):
        roofline.features(bad, footprints=gpd.read_file(DELFT_GPKG, layer="footprints"))
    with pytest.raises(TypeError):
        roofline.features(DELFT_DICT, footprints=pd.DataFrame({"a": [1]}))


ARROW14 = Path(
    os.environ.get(
        "ROOFLINE_ARROW14_PYTHON", Path.home() / ".cache/roofline/arrow14-venv/bin/python"
    )
)
OLD_READERS = """
import sys, json, duckdb, pyarrow as pa
assert pa.__version__ == "14.0.2", pa.__version__
t = pa.ipc.open_stream(open(sys.argv[1], "rb").read()).read_all()
f = t.schema.field("geometry")
assert f.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb", f.metadata
assert "28992" in json.dumps(json.loads(f.metadata[b"ARROW:extension:metadata"]))
assert b"geo" in t.schema.metadata
n = duckdb.sql("SELECT count(*) FROM t").fetchall()[0][0]
print(t.num_rows, n)
"""


def test_the_tables_are_geoarrow_that_old_and_new_readers_open(tmp_path):
    from roofline import _city, _native

    ipc = _native.features(_city(DELFT), False, "quiet")
    t = pa.ipc.open_stream(ipc).read_all()
    field = t.schema.field("geometry")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    assert b"28992" in field.metadata[b"ARROW:extension:metadata"]
    assert b"geo" in t.schema.metadata
    assert not any(pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type) for f in t.schema)
    # pyarrow 14, from before Arrow's view types, and DuckDB (the test command's venv of them).
    (tmp_path / "features.arrows").write_bytes(ipc)
    (tmp_path / "check.py").write_text(OLD_READERS)
    assert ARROW14.exists(), f"{ARROW14}: the pyarrow 14 venv (scripts/test.sh makes it)"
    r = subprocess.run(
        [str(ARROW14), str(tmp_path / "check.py"), str(tmp_path / "features.arrows")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["429", "429"]


def test_the_gil_is_released_while_roofline_works():
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        roofline.features(DELFT, known_heights=False)
    finally:
        stop.set()
        t.join()
    # Features of Delft take well over 50 ms; a held GIL would allow a tick or two.
    assert len(ticks) > 20, len(ticks)


class Watched(io.StringIO):
    """A stderr someone watches (as a notebook's or a terminal's): bars are drawn into it."""

    def isatty(self):
        return True


def test_cv_writes_the_command_lines_report_with_a_bar_in_the_cell(tmp_path, monkeypatch):
    cities = [DATA / "cities" / "delft-3dfier.toml", DELFT]
    cell = Watched()
    monkeypatch.setattr(sys, "stderr", cell)
    metrics, predictions, folder = roofline.cv(
        cities, tmp_path / "py", seed=3, scenarios=["density=0.05", 20]
    )
    monkeypatch.undo()
    # The leave-one-city-out bar, redrawn in place in the "cell".
    assert "cv" in cell.getvalue() and "cities" in cell.getvalue() and "\r" in cell.getvalue()
    cli("cv", "--quiet", "--seed", 3, "--local-labels", 20, "--sparse-lidar", "density=0.05",
        *cities, "-o", tmp_path / "cli")
    theirs = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    ours = metrics.attrs["json"]
    for m in (ours, theirs):
        m.pop("seconds")
    assert ours == theirs
    assert ours["scheme"]["by"] == "city"
    row = metrics.set_index(["scenario", "city"]).loc[("none", "delft-5910")]
    assert row["mae"] == theirs["per_city"][1]["model"]["mae"]
    assert row["baseline_mae"] == theirs["per_city"][1]["baseline"]["mae"]
    assert set(metrics["scenario"]) == {"none", "local-labels 20", "sparse-lidar density=0.05"}
    # The sparse-LiDAR scenario is reported (as skipped: these cities have no LiDAR).
    assert set(predictions["scenario"]) <= {"none", "local-labels 20", "sparse-lidar density=0.05"}
    assert (folder / "report.html").is_file()
    with pytest.raises(roofline.InvalidError, match="by"):
        roofline.cv(cities, tmp_path / "bad", by="street")
    with pytest.raises(roofline.InvalidError, match="unknown field `tres`"):
        roofline.cv(cities, tmp_path / "bad2", tres=3)


def test_train_takes_the_command_lines_parameters_by_name(tmp_path):
    city = DATA / "cities" / "delft-3dfier.toml"
    ours = roofline.train([city], seed=5, trees=40, loss="huber", intervals="pooled", quiet=True)
    ours.save(tmp_path / "py.model")
    cli("train", "--quiet", "--seed", 5, "--trees", 40, "--loss", "huber", "--intervals", "pooled",
        city, "-o", tmp_path / "cli.model")
    assert (tmp_path / "py.model").read_bytes() == (tmp_path / "cli.model").read_bytes()
    with pytest.raises(roofline.InvalidError, match="learning_rate"):
        roofline.train([city], learning_rate=2.0, quiet=True)
    with pytest.raises(roofline.InvalidError, match="huberr"):
        roofline.train([city], loss="huberr", quiet=True)


def test_known_heights_from_python_anchor_as_a_survey_file_does(tmp_path):
    model = roofline.load_model(REPO / "models" / "roof-p70.model")
    fp = gpd.read_file(DELFT_GPKG, layer="footprints")
    sample = fp.iloc[::20]  # 22 buildings spread over the tile
    table = pd.DataFrame({"id": sample["identificatie"], "height_m": sample["h_70p"]})
    ours = model.predict(DELFT, known_heights=table, quiet=True)
    # The command line, reading the same heights from a survey CSV.
    table.to_csv(tmp_path / "survey.csv", index=False)
    config = tmp_path / "delft.toml"
    config.write_text(
        f'''name = "delft-5910"
[footprints]
path = "{DELFT_GPKG}"
layer = "footprints"
id = "identificatie"
[label]
source = "survey"
name = "roof-p70"
path = "survey.csv"
field = "height_m"
id = "id"
'''
    )
    cli("predict", "--quiet", "--model", REPO / "models" / "roof-p70.model", config, "-o", tmp_path / "cli.parquet")
    theirs = gpd.read_parquet(tmp_path / "cli.parquet")
    same_frames(ours, theirs)
    counts = ours["source"].value_counts()
    assert counts["survey"] == len(sample) and counts["recalibrated"] == len(fp) - len(sample)
    # The same heights as a Series by id, and as points joined by where they lie.
    by_series = model.predict(DELFT, known_heights=table.set_index("id")["height_m"], quiet=True)
    same_frames(ours, by_series)
    points = gpd.GeoDataFrame(
        {"height_m": sample["h_70p"].to_numpy()},
        geometry=sample.geometry.representative_point().to_crs(4326).to_numpy(),
        crs=4326,
    )
    by_place = model.predict(DELFT, known_heights=points, quiet=True)
    assert (by_place["source"] == "survey").sum() == len(sample)
    assert np.allclose(by_place["height_m"], ours["height_m"], atol=1e-6)
    # Nothing to join by, or no heights: one line naming the table.
    with pytest.raises(roofline.RooflineError, match="known_heights table.*height_m"):
        model.predict(DELFT, known_heights=table.rename(columns={"height_m": "h"}), quiet=True)
    with pytest.raises(roofline.RooflineError, match="known_heights table.*neither an `id`"):
        model.predict(DELFT, known_heights=table.drop(columns="id"), quiet=True)
