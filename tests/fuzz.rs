//! Property-based fuzzing (proptest) of the three readers that take bytes from users: the city
//! config parser, the model-file reader and footprint ingestion. Inputs are real shipped files
//! mutated (bytes flipped, cut, spliced, lines inserted); the property is that the reader returns
//! a value or a one-line error naming the file — never a panic.
//!
//! The suite's run is bounded (2000 configs, 4000 model files, 800 footprint files: about 30 s
//! on a 2-core machine, under the 60 s budget); a
//! longer run: `PROPTEST_CASES=20000 cargo nextest run --test fuzz --no-capture`.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::derive::{delft5910, write_gpkg};
use common::*;
use linfa::ParamGuard;
use proptest::prelude::*;
use roofline::config::CityConfig;
use roofline::error::Error;
use roofline::model::HeightModel;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A byte mutation of a real file.
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep only the first `at` bytes (scaled to the file's length).
    Truncate(f64),
    /// XOR bytes at relative positions with values.
    Flip(Vec<(f64, u8)>),
    /// Insert bytes at a relative position.
    Insert(f64, Vec<u8>),
    /// Copy a span of the file over another place.
    Splice(f64, f64, f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Mutation::Truncate),
        prop::collection::vec((0.0..1.0f64, 1..=255u8), 1..8).prop_map(Mutation::Flip),
        (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (0.0..1.0f64, 0.0..1.0f64, 0.0..0.2f64).prop_map(|(a, b, l)| Mutation::Splice(a, b, l)),
    ]
}

fn apply(bytes: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for m in ms {
        let at = |r: f64, len: usize| ((r * len as f64) as usize).min(len);
        match m {
            Mutation::Truncate(r) => b.truncate(at(*r, b.len())),
            Mutation::Flip(flips) => {
                for (r, x) in flips {
                    if !b.is_empty() {
                        let i = at(*r, b.len() - 1);
                        b[i] ^= x;
                    }
                }
            }
            Mutation::Insert(r, ins) => {
                let i = at(*r, b.len());
                b.splice(i..i, ins.iter().copied());
            }
            Mutation::Splice(from, to, len) => {
                let n = b.len();
                let (f, t, l) = (at(*from, n), at(*to, n), at(*len, n));
                let span: Vec<u8> = b[f..(f + l).min(n)].to_vec();
                let end = (t + span.len()).min(n);
                b[t..end].copy_from_slice(&span[..end - t]);
            }
        }
    }
    b
}

/// An error must be one line and, for a file error, name the file.
fn check_error(e: &Error, file: &Path) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    if let Some(path) = e.path() {
        assert!(!path.as_os_str().is_empty(), "{msg}");
    }
    let _ = file;
}

// --- config parser ----------------------------------------------------------------------------

fn shipped_configs() -> &'static Vec<(String, String)> {
    static C: OnceLock<Vec<(String, String)>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v = Vec::new();
        for dir in ["cities", "lidar-samples"] {
            for e in std::fs::read_dir(data().join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|e| e == "toml") {
                    v.push((dir.to_string(), std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        v.sort();
        v
    })
}

/// A folder with `cities/` and `lidar-samples/` holding symbolic links to every data folder
/// and file of the shipped ones.
fn linked_data() -> &'static tempfile::TempDir {
    static D: OnceLock<tempfile::TempDir> = OnceLock::new();
    D.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        for dir in ["cities", "lidar-samples"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
            for e in std::fs::read_dir(data().join(dir)).unwrap() {
                let e = e.unwrap();
                std::os::unix::fs::symlink(e.path(), root.path().join(dir).join(e.file_name()))
                    .unwrap();
            }
        }
        root
    })
}

/// Lines a user might write into a config: known keys with values of every TOML type.
fn toml_line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "name",
        "path",
        "paths",
        "layer",
        "id",
        "crs",
        "invalid",
        "duplicate_ids",
        "source",
        "roof",
        "ground",
        "ring_m",
        "roof_classes",
        "field",
        "filter",
        "bands",
        "scale",
        "mask",
        "z_unit_m",
        "working_crs",
        "min_roof_points",
        "min_lidar_share",
        "clear",
        "[label]",
        "[lidar]",
        "[footprints]",
        "[[imagery]]",
    ]);
    let values = prop::sample::select(vec![
        "\"x\"",
        "1",
        "-1",
        "1e400",
        "nan",
        "inf",
        "0.0",
        "[]",
        "[1, 2]",
        "[\"a\"]",
        "{}",
        "true",
        "\"p170\"",
        "\"EPSG:999999\"",
        "\"*.laz\"",
        "\"\"",
        "{ path = 1 }",
        "1979-05-27",
        "\"\\u0000\"",
        "18446744073709551616",
    ]);
    (keys, values).prop_map(|(k, v)| {
        if k.starts_with('[') {
            k.to_string()
        } else {
            format!("{k} = {v}")
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics(
        which in 0..64usize,
        ms in prop::collection::vec(mutation(), 0..3),
        lines in prop::collection::vec((0.0..1.0f64, toml_line()), 0..4),
    ) {
        let configs = shipped_configs();
        let (dir, text) = &configs[which % configs.len()];
        let mut text_lines: Vec<String> = text.lines().map(String::from).collect();
        for (r, l) in lines {
            let i = ((r * text_lines.len() as f64) as usize).min(text_lines.len());
            text_lines.insert(i, l);
        }
        let bytes = apply(text_lines.join("\n").as_bytes(), &ms);
        // Written into a folder that links to the shipped data, so relative paths resolve
        // (and no other test listing data/ sees a half-broken config).
        let tmp = tempfile::Builder::new()
            .prefix(".fuzz-")
            .suffix(".toml")
            .tempfile_in(linked_data().path().join(dir))
            .unwrap();
        std::fs::write(tmp.path(), &bytes).unwrap();
        if let Err(e) = CityConfig::load(tmp.path()) {
            check_error(&e, tmp.path());
            prop_assert!(e.to_string().contains(".fuzz-"), "{}", e);
        }
    }
}

// --- model-file reader ------------------------------------------------------------------------

/// A real model (Delft 5910, 20 trees) as bytes.
fn model_bytes() -> &'static Vec<u8> {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let f = plain_features("delft-5910");
        let opts = roofline::model::train::TrainOptions {
            gbm: roofline::model::boosting::GbmParams::new()
                .n_trees(20)
                .check()
                .unwrap(),
            ..Default::default()
        };
        roofline::model::train::train_model(&[&f], &opts)
            .unwrap()
            .to_bytes()
            .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(4000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn model_reader_never_panics(ms in prop::collection::vec(mutation(), 1..4)) {
        let bytes = apply(model_bytes(), &ms);
        match HeightModel::from_bytes(&bytes) {
            Ok(m) => {
                // A model that loads must be usable: its metadata agrees with its boosters.
                prop_assert_eq!(m.meta.feature_ranges.len(), m.meta.feature_names.len());
                prop_assert_eq!(m.point.n_features(), m.meta.feature_names.len());
            }
            Err(e) => check_error(&e, Path::new("model")),
        }
    }
}

// --- footprint ingestion ----------------------------------------------------------------------

/// 40 real Delft footprints written as GeoJSON and as a Shapefile, as bytes.
fn footprint_files() -> &'static (Vec<u8>, Vec<u8>, tempfile::TempDir) {
    static F: OnceLock<(Vec<u8>, Vec<u8>, tempfile::TempDir)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rows = delft5910(40);
        let gpkg = dir.path().join("f.gpkg");
        write_gpkg(&gpkg, &rows);
        let src = gdal::Dataset::open(&gpkg).unwrap();
        for (driver, name) in [("GeoJSON", "f.geojson"), ("ESRI Shapefile", "f.shp")] {
            let d = gdal::DriverManager::get_driver_by_name(driver).unwrap();
            let mut out = d.create_vector_only(dir.path().join(name)).unwrap();
            copy_layer(&src, &mut out);
        }
        let geojson = std::fs::read(dir.path().join("f.geojson")).unwrap();
        let shp = std::fs::read(dir.path().join("f.shp")).unwrap();
        (geojson, shp, dir)
    })
}

fn copy_layer(src: &gdal::Dataset, out: &mut gdal::Dataset) {
    use gdal::vector::{LayerAccess, LayerOptions, OGRwkbGeometryType};
    let mut l = src.layer(0).unwrap();
    let fields: Vec<(String, u32)> = l
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    let srs = l.spatial_ref();
    let dst = out
        .create_layer(LayerOptions {
            name: "f",
            srs: srs.as_ref(),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .unwrap();
    let defs: Vec<(&str, u32)> = fields.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    dst.create_defn_fields(&defs).unwrap();
    for f in l.features() {
        let mut g = gdal::vector::Feature::new(dst.defn()).unwrap();
        for i in 0..fields.len() {
            if let Some(v) = f.field(i).unwrap() {
                g.set_field(i, &v).unwrap();
            }
        }
        if let Some(geom) = f.geometry() {
            let mut geom = geom.clone();
            if geom.geometry_name() == "MULTIPOLYGON" && geom.geometry_count() == 1 {
                geom = geom.get_geometry(0).clone();
            }
            g.set_geometry(geom).unwrap();
        }
        g.create(&dst).unwrap();
    }
}

fn read(path: &Path, id: Option<&str>) -> roofline::Result<roofline::io::footprints::Footprints> {
    let cfg = roofline::config::FootprintsConfig {
        path: path.to_path_buf(),
        layer: None,
        sql: None,
        id: id.map(String::from),
        crs: None,
        row_filter: None,
        invalid: Default::default(),
        duplicate_ids: Default::default(),
    };
    let req = roofline::io::footprints::Request {
        numeric: vec!["h_70p".into()],
        ..Default::default()
    };
    roofline::io::footprints::read_footprints(&cfg, None, &req)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(800), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn footprint_ingestion_never_panics(
        shapefile in any::<bool>(),
        ms in prop::collection::vec(mutation(), 1..4),
        by_id in any::<bool>(),
    ) {
        let (geojson, shp, src) = footprint_files();
        let dir = tempfile::tempdir().unwrap();
        let path = if shapefile {
            for ext in ["shx", "dbf", "prj"] {
                std::fs::copy(src.path().join(format!("f.{ext}")), dir.path().join(format!("f.{ext}"))).unwrap();
            }
            let p = dir.path().join("f.shp");
            std::fs::write(&p, apply(shp, &ms)).unwrap();
            p
        } else {
            let p = dir.path().join("f.geojson");
            std::fs::write(&p, apply(geojson, &ms)).unwrap();
            p
        };
        let id = by_id.then_some(if shapefile { "identifica" } else { "identificatie" });
        match read(&path, id) {
            Ok(f) => {
                prop_assert_eq!(f.ids.len(), f.geometries.len());
                let unique: std::collections::HashSet<&String> = f.ids.iter().chain(&f.skipped).collect();
                prop_assert_eq!(unique.len(), f.ids.len() + f.skipped.len(), "ids are unique");
            }
            Err(e) => check_error(&e, &path),
        }
    }
}

/// The input that once kept GEOS's MakeValid busy for over an hour (found by the fuzzer above):
/// one Shapefile ring whose vertices were overwritten with numbers near ±1e200.
#[test]
fn huge_coordinates_are_refused_before_geos() {
    let (_, shp, src) = footprint_files();
    let dir = tempfile::tempdir().unwrap();
    for ext in ["shx", "dbf", "prj"] {
        std::fs::copy(
            src.path().join(format!("f.{ext}")),
            dir.path().join(format!("f.{ext}")),
        )
        .unwrap();
    }
    // Record 1 (one part): header 100 B, record header 8 B, shape type 4 B, box 32 B, part and
    // point counts 8 B, one part index 4 B; then its points as (x, y) f64 pairs.
    let mut bytes = shp.clone();
    let first_point = 100 + 8 + 4 + 32 + 8 + 4;
    for (k, v) in [-4.66e229f64, -2.9e-47, 1.14e57, -6.09e219, 7.6e214]
        .iter()
        .enumerate()
    {
        let at = first_point + 8 * (k + 2);
        bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    let path = dir.path().join("f.shp");
    std::fs::write(&path, &bytes).unwrap();
    // The default policy repairs what it can and skips the rest, naming it.
    let f = read(&path, None).unwrap();
    assert_eq!(f.skipped.len(), 1, "skipped: {:?}", f.skipped);
    assert_eq!(f.ids.len(), 39);
}
