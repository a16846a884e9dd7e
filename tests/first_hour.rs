//! Issue 15: what tripped a new GIS user in the first hour — plausibility checks before heavy
//! work, output paths validated first, the user's columns kept, one schema across commands,
//! unusable labels not looking usable, help and names, clear errors for common slips, and what
//! a negative R² means. Inputs are the shipped real files, or configs pointing at them.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{assert_clean_error, data, roofline, write_config};
use gdal::vector::LayerAccess;
use roofline::io::output::read_table;
use roofline::io::table::ColumnData;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn perigueux_shp() -> PathBuf {
    data().join("cities/perigueux/bdnb_perigeux8.shp")
}

/// Périgueux's WGS 84 footprints declared as British National Grid: degrees read as metres.
fn wrong_crs_config(dir: &Path) -> PathBuf {
    write_config(
        dir,
        "perigueux-bng.toml",
        &format!(
            "name = \"perigueux-bng\"\n[footprints]\npath = \"{}\"\nid = \"batiment_c\"\ncrs = \"EPSG:27700\"\n",
            s(&perigueux_shp())
        ),
    )
}

#[test]
fn a_wrong_crs_is_refused_before_any_heavy_work() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wrong_crs_config(dir.path());
    let out = dir.path().join("f.parquet");
    for args in [
        vec!["features", s(&cfg), "-o", s(&out), "--quiet"],
        vec!["inspect", s(&cfg)],
    ] {
        let (code, _, err) = roofline(&args);
        assert_clean_error(code, &err, "bdnb_perigeux8.shp");
        assert!(
            err.contains("median footprint area") && err.contains("after reading in EPSG:27700"),
            "{err}"
        );
        assert!(err.contains("is the CRS right?"), "{err}");
    }
    assert!(!out.exists());
    // The same file in its own CRS passes, and `inspect` says what it saw.
    let ok = write_config(
        dir.path(),
        "perigueux.toml",
        &format!(
            "name = \"perigueux\"\n[footprints]\npath = \"{}\"\nid = \"batiment_c\"\n",
            s(&perigueux_shp())
        ),
    );
    let (code, stdout, err) = roofline(&["inspect", s(&ok)]);
    assert_eq!(code, 0, "{err}");
    let line = stdout
        .lines()
        .find(|l| l.contains("median area"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let area: f64 = line
        .split("median area ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        (20.0..500.0).contains(&area),
        "median area {area} m²: {line}"
    );
    assert!(line.contains("extent "), "{line}");
}

#[test]
fn point_clouds_far_from_the_footprints_are_refused() {
    // Bresse's footprints with Montpellier's LiDAR tiles: both Lambert-93, 500 km apart.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "mixed.toml",
        &format!(
            "name = \"mixed\"\n[footprints]\npath = \"{}\"\n[lidar]\npaths = [\"{}/*.laz\"]\n[label]\nsource = \"lidar\"\n",
            s(&data().join("lidar-samples/bresse/870000_6618000.subset.postIA.shp")),
            s(&data().join("lidar-samples/montpellier"))
        ),
    );
    let out = dir.path().join("l.gpkg");
    let (code, _, err) = roofline(&["labels", s(&cfg), "-o", s(&out), "--quiet"]);
    assert_clean_error(code, &err, "mixed.toml");
    assert!(
        err.contains("does not intersect the footprints") && err.contains("check the CRS"),
        "{err}"
    );
}

#[test]
fn touching_everything_stays_finite() {
    // 400 real footprints shrunk a million times around their common centre: every one
    // touches every other, as with a wrong CRS. The count stays exact; the shared outline is
    // measured against at most MAX_SHARED_OUTLINE_NEIGHBOURS of them.
    use geo::MapCoords;
    let cfg = common::city_config("perigueux");
    let fp = roofline::io::footprints::read_footprints(
        cfg.footprints.as_ref().unwrap(),
        None,
        &Default::default(),
    )
    .unwrap();
    let n = 400;
    let (cx, cy) = (
        fp.summary.extent[0] + fp.summary.width_m() / 2.0,
        fp.summary.extent[1] + fp.summary.height_m() / 2.0,
    );
    let tiny: Vec<_> = fp.geometries[..n]
        .iter()
        .map(|g| {
            g.map_coords(|c| geo::Coord {
                x: cx + (c.x - cx) * 1e-6,
                y: cy + (c.y - cy) * 1e-6,
            })
        })
        .collect();
    let centroids = roofline::features::centroids(&tiny);
    let rows = roofline::features::context::context_features(&tiny, &centroids);
    let names = roofline::features::context::names();
    let col = |name: &str| names.iter().position(|x| x == name).unwrap();
    for r in &rows {
        assert_eq!(r[col("touching_neighbours")], (n - 1) as f64);
        let share = r[col("shared_perimeter_share")];
        assert!((0.0..=1.0).contains(&share), "{share}");
    }
}

#[test]
fn output_paths_are_checked_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    // A city whose label field does not exist fails when its footprints are read; a bad output
    // path must be reported before that.
    let broken = write_config(
        dir.path(),
        "broken.toml",
        &format!(
            "name = \"broken\"\n[footprints]\npath = \"{}\"\nid = \"batiment_c\"\n[label]\nsource = \"attribute\"\nname = \"eave\"\nfield = \"no_such_field\"\n",
            s(&perigueux_shp())
        ),
    );
    let (code, _, err) = roofline(&[
        "features",
        s(&broken),
        "-o",
        s(&dir.path().join("f.parquet")),
        "--quiet",
    ]);
    assert_clean_error(code, &err, "bdnb_perigeux8.shp");

    let missing = dir.path().join("missing_dir/x.model");
    let (code, _, err) = roofline(&["train", s(&broken), "-o", s(&missing), "--quiet"]);
    assert_clean_error(code, &err, "missing_dir/x.model");
    assert!(err.contains("does not exist"), "{err}");

    let file = dir.path().join("existing_file");
    std::fs::write(&file, "keep me").unwrap();
    let (code, _, err) = roofline(&["cv", s(&broken), "-o", s(&file), "--quiet"]);
    assert_clean_error(code, &err, "existing_file");
    assert!(err.contains("is not a folder"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    for out in [dir.path().join("nowhere/p.gpkg"), dir.path().join("p.xlsx")] {
        let (code, _, err) = roofline(&[
            "predict",
            "--model",
            s(&dir.path().join("no.model")),
            s(&broken),
            "-o",
            s(&out),
            "--quiet",
        ]);
        assert_clean_error(code, &err, out.file_name().unwrap().to_str().unwrap());
    }
    // A folder given where a file is expected.
    let (code, _, err) = roofline(&["train", s(&broken), "-o", s(dir.path()), "--quiet"]);
    assert_clean_error(code, &err, s(dir.path()));
    assert!(err.contains("is a folder"), "{err}");
}

/// Trains a small model on Delft (160 buildings) into `dir`.
fn small_model(dir: &Path) -> PathBuf {
    let model = dir.join("delft.model");
    let (code, _, err) = roofline(&[
        "train",
        s(&data().join("cities/delft-3dfier.toml")),
        "-o",
        s(&model),
        "--trees",
        "20",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    model
}

/// `roofline predict` of `region` with `model` into `out`, read back.
fn predict_table(model: &Path, region: &Path, out: &Path) -> roofline::io::table::Table {
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        s(model),
        s(region),
        "-o",
        s(out),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{}: {err}", out.display());
    read_table(out).unwrap()
}

fn strings(c: &ColumnData) -> Vec<Option<String>> {
    match c {
        ColumnData::Str(v) => v.clone(),
        ColumnData::F64(v) => v.iter().map(|x| x.map(|f| f.to_string())).collect(),
        ColumnData::I64(v) => v.iter().map(|x| x.map(|f| f.to_string())).collect(),
        ColumnData::Bool(v) => v.iter().map(|x| x.map(|f| f.to_string())).collect(),
    }
}

/// `train --no-intervals` fits the point model alone: the same point predictions as a model
/// with intervals (same seed), empty interval columns, and a smaller model file.
#[test]
fn a_model_without_intervals_predicts_the_same_heights_with_empty_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let with = small_model(dir.path());
    let without = dir.path().join("point-only.model");
    let city = data().join("cities/delft-3dfier.toml");
    // Périgueux's footprints alone: no labels, so every row is predicted by the model.
    let region = write_config(
        dir.path(),
        "perigueux-unlabelled.toml",
        &format!(
            "name = \"perigueux\"\n[footprints]\npath = \"{}\"\nid = \"batiment_c\"\n",
            s(&perigueux_shp())
        ),
    );
    let (code, out, err) = roofline(&[
        "train",
        s(&city),
        "-o",
        s(&without),
        "--trees",
        "20",
        "--no-intervals",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no intervals"), "{out}");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&without) < size(&with),
        "{} vs {}",
        size(&without),
        size(&with)
    );
    let mut heights = Vec::new();
    for (name, model) in [("with", &with), ("without", &without)] {
        let t = predict_table(model, &region, &dir.path().join(format!("{name}.csv")));
        let lo = t.column("height_lo_m").unwrap().as_f64();
        let finite = lo.iter().filter(|v| v.is_finite()).count();
        let predicted = t.column("height_predicted_m").unwrap().as_f64();
        heights.push(predicted);
        if name == "with" {
            assert!(finite > 0, "a model with intervals gives intervals");
        } else {
            let source = strings(&t.column("source").unwrap().data);
            let predicted_rows: Vec<usize> = (0..t.n_rows())
                .filter(|&i| source[i].as_deref() == Some("predicted"))
                .collect();
            assert_eq!(predicted_rows.len(), t.n_rows());
            assert!(
                predicted_rows.iter().all(|&i| !lo[i].is_finite()),
                "intervals without an interval model"
            );
        }
    }
    assert_eq!(
        heights[0], heights[1],
        "the point model does not depend on the intervals"
    );
}

#[test]
fn predict_keeps_the_users_columns_in_one_schema() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let region = data().join("cities/perigueux.toml");
    // The input's own attributes, by id.
    let ds = gdal::Dataset::open(perigueux_shp()).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let input_fields: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let (id_idx, iris_idx) = (
        layer.defn().field_index("batiment_c").unwrap(),
        layer.defn().field_index("code_iris").unwrap(),
    );
    let mut code_iris: HashMap<String, Option<String>> = HashMap::new();
    for f in layer.features() {
        code_iris.insert(
            f.field_as_string(id_idx).unwrap().unwrap(),
            f.field_as_string(iris_idx).unwrap(),
        );
    }
    let ours = [
        "id",
        "city",
        "height_m",
        "height_lo_m",
        "height_hi_m",
        "source",
        "ood",
        "ood_feature_count",
        "ood_feature_names",
        "height_predicted_m",
        "label",
    ];
    for ext in ["gpkg", "parquet", "csv"] {
        let t = predict_table(&model, &region, &dir.path().join(format!("p.{ext}")));
        assert_eq!(t.n_rows(), 10381, "{ext}");
        for c in ours {
            assert!(t.column(c).is_some(), "{ext}: no column {c}");
        }
        // Every input attribute, under its own name ('fid' is GeoPackage's own: prefixed).
        for f in &input_fields {
            let name = if f == "fid" {
                "input_fid".to_string()
            } else {
                f.clone()
            };
            assert!(t.column(&name).is_some(), "{ext}: no input column {name}");
        }
        // Joined by id, not by row number.
        let ids = strings(&t.column("batiment_c").unwrap().data);
        let iris = strings(&t.column("code_iris").unwrap().data);
        let id = strings(&t.column("id").unwrap().data);
        for i in 0..t.n_rows() {
            assert_eq!(ids[i], id[i], "{ext}: row {i}");
            let want = code_iris[ids[i].as_ref().unwrap()].clone();
            // CSV readers infer the all-digit code as a number.
            assert_eq!(iris[i], want, "{ext}: row {i}");
        }
        // `ood` is a boolean in every format; the count matches the names.
        let ood = match &t.column("ood").unwrap().data {
            ColumnData::Bool(v) => v.clone(),
            other => panic!("{ext}: ood is not boolean: {other:?}"),
        };
        let count = t.column("ood_feature_count").unwrap().as_f64();
        let names = strings(&t.column("ood_feature_names").unwrap().data);
        let mut flagged = 0;
        for i in 0..t.n_rows() {
            let listed = names[i]
                .as_deref()
                .map_or(0, |n| n.split(',').filter(|x| !x.is_empty()).count());
            assert_eq!(listed as f64, count[i], "{ext}: row {i}");
            assert_eq!(ood[i], Some(count[i] > 0.0), "{ext}: row {i}");
            flagged += (count[i] > 0.0) as usize;
        }
        assert!(
            flagged > 0,
            "{ext}: a Delft model finds nothing unusual in Périgueux?"
        );
    }
    // Some columns, or only the id field.
    let out = dir.path().join("some.parquet");
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        s(&model),
        s(&region),
        "-o",
        s(&out),
        "--keep-columns",
        "hauteur,code_iris",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = read_table(&out).unwrap();
    let extra: Vec<&str> = t.columns[ours.len()..]
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(extra, ["batiment_c", "hauteur", "code_iris"]);
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        s(&model),
        s(&region),
        "-o",
        s(&out),
        "--no-keep",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = read_table(&out).unwrap();
    assert_eq!(t.columns.len(), ours.len() + 1);
    assert_eq!(t.columns[ours.len()].name, "batiment_c");
    // A misspelt column is named, with the fields there are.
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        s(&model),
        s(&region),
        "-o",
        s(&out),
        "--keep-columns",
        "hauter",
        "--quiet",
    ]);
    assert_clean_error(code, &err, "bdnb_perigeux8.shp");
    assert!(err.contains("'hauter'") && err.contains("hauteur"), "{err}");

    // Shapefile: every field name cut to 10 characters, unique, with a warning.
    let shp = dir.path().join("p.shp");
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        s(&model),
        s(&region),
        "-o",
        s(&shp),
        "--no-keep",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("height_predicted_m -> height_pre"), "{err}");
    let ds = gdal::Dataset::open(&shp).unwrap();
    let layer = ds.layer(0).unwrap();
    assert_eq!(layer.feature_count(), 10381);
    assert_eq!(layer.spatial_ref().unwrap().auth_code().unwrap(), 4326);
    let fields: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    assert_eq!(fields.len(), ours.len() + 1);
    assert!(fields.iter().all(|f| f.len() <= 10), "{fields:?}");
    let unique: std::collections::HashSet<String> =
        fields.iter().map(|f| f.to_lowercase()).collect();
    assert_eq!(unique.len(), fields.len(), "{fields:?}");
    for f in ["height_m", "height_lo_", "height_hi_", "ood", "batiment_c"] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    // Nothing but the shapefile's own files is left beside it.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("p.s") || n.starts_with(".p.shp"))
        .collect();
    left.sort();
    assert!(left.iter().all(|n| n.starts_with("p.")), "{left:?}");
}

#[test]
fn a_json_file_is_not_a_model_and_a_bad_crs_says_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let json = data().join("cities/delft-5910/3dbag_v210908_fd2cee53_5910.city.json");
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        s(&json),
        s(&data().join("lidar-samples/bresse.toml")),
        "-o",
        s(&dir.path().join("p.gpkg")),
        "--quiet",
    ]);
    assert_clean_error(code, &err, "city.json");
    assert!(
        err.contains("is a JSON file") && err.contains("not a roofline model"),
        "{err}"
    );
    assert!(!err.contains("numeric field"), "{err}");

    let cfg = write_config(
        dir.path(),
        "bad-crs.toml",
        &format!(
            "name = \"x\"\n[footprints]\npath = \"{}\"\ncrs = \"British National Grid\"\n",
            s(&perigueux_shp())
        ),
    );
    let (code, _, err) = roofline(&["inspect", s(&cfg)]);
    assert_clean_error(code, &err, "bdnb_perigeux8.shp");
    assert!(
        err.contains("'British National Grid'") && err.contains("expected an authority code"),
        "{err}"
    );
    assert!(!err.contains("OSRSetFromUserInput"), "{err}");
}

#[test]
fn labels_that_are_not_ok_carry_no_height() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.parquet");
    let (code, _, err) = roofline(&[
        "labels",
        s(&data().join("cities/amsterdam-centre.toml")),
        "-o",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let t = read_table(&out).unwrap();
    let flag = t.column("flag").unwrap().as_strings();
    let h = t.column("height_m").unwrap().as_f64();
    let raw = t.column("height_raw_m").unwrap().as_f64();
    let mut raw_not_ok = HashMap::<&str, usize>::new();
    for i in 0..t.n_rows() {
        if flag[i] == "ok" {
            assert!(h[i].is_finite() && h[i] == raw[i], "row {i}");
        } else {
            assert!(
                h[i].is_nan(),
                "row {i}: flag {} with height_m {}",
                flag[i],
                h[i]
            );
            if raw[i].is_finite() {
                *raw_not_ok.entry(flag[i].as_str()).or_default() += 1;
            }
        }
    }
    // The measured values of sparse and partly covered buildings are kept, apart.
    assert!(
        raw_not_ok.get("sparse").copied().unwrap_or(0) > 0,
        "{raw_not_ok:?}"
    );
    assert!(
        raw_not_ok.get("outside_lidar").copied().unwrap_or(0) > 0,
        "{raw_not_ok:?}"
    );
    // The features table follows the same rule.
    let f = common::plain_features("amsterdam-centre");
    let t = roofline::features::features_table(std::slice::from_ref(&f)).unwrap();
    let flag = t.column("flag").unwrap().as_strings();
    let h = t.column("height_m").unwrap().as_f64();
    let raw = t.column("height_raw_m").unwrap().as_f64();
    assert!((0..t.n_rows()).all(|i| (flag[i] == "ok") == h[i].is_finite()));
    assert!((0..t.n_rows()).any(|i| flag[i] != "ok" && raw[i].is_finite()));
}

#[test]
fn every_option_lists_its_values() {
    for (sub, values) in [
        ("train", vec!["gbm", "forest", "squared", "huber"]),
        ("cv", vec!["gbm", "forest", "city", "blocks"]),
    ] {
        let (code, out, err) = roofline(&[sub, "--help"]);
        assert_eq!(code, 0, "{err}");
        for v in values {
            assert!(out.contains(v), "{sub} --help does not list '{v}': {out}");
        }
    }
}

#[test]
fn coverage_is_documented_as_a_ratio_because_it_exceeds_one() {
    let f = common::plain_features("amsterdam-centre");
    let max = f
        .column("coverage_25m")
        .unwrap()
        .iter()
        .copied()
        .fold(f64::NAN, f64::max);
    assert!(max > 1.0, "max coverage_25m {max}");
    let doc = roofline::features::describe("coverage_25m");
    assert!(
        doc.meaning.contains("ratio, not a share") && doc.meaning.contains("exceeds 1"),
        "{}",
        doc.meaning
    );
}

#[test]
fn cv_predictions_are_mappable_and_a_negative_r2_is_explained() {
    // Leave-one-city-out on the eave cities (Périgueux in WGS 84, Olemps in Lambert-93).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cv-eave");
    let (code, _, err) = roofline(&[
        "cv",
        s(&data().join("cities/perigueux.toml")),
        s(&data().join("cities/olemps.toml")),
        "-o",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let parquet = read_table(&out.join("predictions.parquet")).unwrap();
    let csv = read_table(&out.join("predictions.csv")).unwrap();
    for (t, what) in [(&parquet, "parquet"), (&csv, "csv")] {
        for c in [
            "city",
            "id",
            "fold",
            "height_m",
            "height_predicted_m",
            "height_lo_m",
            "height_hi_m",
            "baseline_m",
            "ood",
            "ood_feature_count",
            "ood_feature_names",
        ] {
            assert!(t.column(c).is_some(), "{what}: no column {c}");
        }
        assert!(
            matches!(t.column("ood").unwrap().data, ColumnData::Bool(_)),
            "{what}: ood is not boolean"
        );
    }
    // GeoParquet with the footprints, in WGS 84 (the two cities' CRSs differ).
    assert_eq!(parquet.crs.as_ref().unwrap().label, "EPSG:4326");
    let geoms = parquet.geometry.as_ref().expect("footprints");
    assert_eq!(geoms.len(), parquet.n_rows());
    // Périgueux's file is in WGS 84 already: each footprint comes back where the file has it.
    let ds = gdal::Dataset::open(perigueux_shp()).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let idx = layer.defn().field_index("batiment_c").unwrap();
    let mut boxes: HashMap<String, geo::Rect<f64>> = HashMap::new();
    for f in layer.features() {
        use geo::BoundingRect;
        let g = f.geometry().unwrap().to_geo().unwrap();
        boxes.insert(
            f.field_as_string(idx).unwrap().unwrap(),
            g.bounding_rect().unwrap(),
        );
    }
    let city = parquet.column("city").unwrap().as_strings();
    let id = parquet.column("id").unwrap().as_strings();
    let mut checked = 0;
    for i in 0..parquet.n_rows() {
        if city[i] != "perigueux" {
            continue;
        }
        use geo::BoundingRect;
        let (a, b) = (geoms[i].bounding_rect().unwrap(), boxes[&id[i]]);
        assert!(
            (a.min().x - b.min().x).abs() < 1e-7 && (a.max().y - b.max().y).abs() < 1e-7,
            "row {i}: {a:?} vs {b:?}"
        );
        checked += 1;
    }
    assert!(checked > 5000, "{checked}");
    // Every negative R² of metrics.json is explained in report.md, next to the baseline.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let negative: Vec<&str> = json["per_city"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["model"]["r2"].as_f64().is_some_and(|r| r < 0.0))
        .map(|c| c["city"].as_str().unwrap())
        .collect();
    assert!(!negative.is_empty(), "no negative R² to explain");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let note = report
        .lines()
        .find(|l| l.starts_with("**Negative R²**"))
        .unwrap_or_else(|| panic!("{report}"));
    for c in &negative {
        assert!(note.contains(c), "{c} not in: {note}");
    }
    assert!(
        note.contains("own* mean") && note.contains("baseline MAE"),
        "{note}"
    );
}
