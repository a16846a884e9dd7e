//! Bad input: one clear error line naming the file, exit code 1, no panic, no output left.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::derive::*;
use common::*;
use gdal::vector::{FieldValue, Geometry};

fn no_output_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".toml") && !n.ends_with(".laz") && !n.ends_with(".gpkg"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn delft(file: &str) -> String {
    data()
        .join("cities/delft-3dfier")
        .join(file)
        .display()
        .to_string()
}

fn run_labels(dir: &Path, config: &Path) -> (i32, String, String) {
    let out = dir.join("labels.gpkg");
    let r = roofline(&[
        "labels",
        config.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!out.exists(), "no output on failure");
    no_output_left(dir);
    r
}

#[test]
fn missing_config_and_missing_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_labels(dir.path(), &dir.path().join("nope.toml"));
    assert_clean_error(code, &err, "nope.toml");

    let cfg = write_config(
        dir.path(),
        "city.toml",
        "name = \"x\"\n[footprints]\npath = \"missing.gpkg\"\nid = \"id\"\n[label]\nsource = \"attribute\"\nname = \"h\"\nfield = \"h\"\n",
    );
    let (code, _, err) = run_labels(dir.path(), &cfg);
    assert_clean_error(code, &err, "missing.gpkg");
}

#[test]
fn laz_without_crs_and_no_override() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "city.toml",
        &format!(
            "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"buildingpart\"\nid = \"identificatiebagpnd\"\n[lidar]\npaths = [\"{}\"]\n[label]\nsource = \"lidar\"\n",
            delft("footprints/bgt_pand.sqlite"),
            delft("lidar/ahn3_cropped_2.laz")
        ),
    );
    let (code, _, err) = run_labels(dir.path(), &cfg);
    assert_clean_error(code, &err, "ahn3_cropped_2.laz");
    assert!(err.contains("no CRS"), "{err}");
}

#[test]
fn truncated_laz() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(delft("lidar/ahn3_cropped_2.laz")).unwrap();
    for (name, keep) in [
        ("half.laz", bytes.len() / 2),
        ("header-only.laz", 300),
        ("tiny.laz", 50),
    ] {
        std::fs::write(dir.path().join(name), &bytes[..keep]).unwrap();
        let cfg = write_config(
            dir.path(),
            "city.toml",
            &format!(
                "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"buildingpart\"\nid = \"identificatiebagpnd\"\n[lidar]\npaths = [\"{name}\"]\ncrs = \"EPSG:28992\"\n[label]\nsource = \"lidar\"\n",
                delft("footprints/bgt_pand.sqlite"),
            ),
        );
        let (code, _, err) = run_labels(dir.path(), &cfg);
        assert_clean_error(code, &err, name);
    }
}

#[test]
fn footprint_layer_without_features() {
    use gdal::vector::{LayerAccess, LayerOptions, OGRwkbGeometryType};
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.gpkg");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GPKG").unwrap();
        let mut ds = driver.create_vector_only(&empty).unwrap();
        let srs = gdal::spatial_ref::SpatialRef::from_epsg(28992).unwrap();
        let layer = ds
            .create_layer(LayerOptions {
                name: "buildings",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPolygon,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[("id", gdal::vector::OGRFieldType::OFTString)])
            .unwrap();
        let _ = layer.feature_count();
    }
    let cfg = write_config(
        dir.path(),
        "city.toml",
        "name = \"x\"\n[footprints]\npath = \"empty.gpkg\"\nid = \"id\"\n[label]\nsource = \"attribute\"\nname = \"h\"\nfield = \"h\"\n",
    );
    let (code, _, err) = run_labels(dir.path(), &cfg);
    assert_clean_error(code, &err, "empty.gpkg");
    assert!(err.contains("no features"), "{err}");
}

#[test]
fn unknown_id_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "city.toml",
        &format!(
            "name = \"x\"\n[footprints]\npath = \"{}\"\nid = \"no_such_field\"\n[label]\nsource = \"attribute\"\nname = \"h\"\nfield = \"h_70p\"\n",
            data().join("cities/delft-5910/footprints_DERIVED.gpkg").display()
        ),
    );
    let (code, _, err) = run_labels(dir.path(), &cfg);
    assert_clean_error(code, &err, "footprints_DERIVED.gpkg");
    assert!(err.contains("no_such_field"), "{err}");
}

#[test]
fn invalid_polygon_with_error_policy() {
    use gdal::vector::{Geometry, LayerAccess, LayerOptions, OGRwkbGeometryType};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bowtie.gpkg");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GPKG").unwrap();
        let mut ds = driver.create_vector_only(&path).unwrap();
        let srs = gdal::spatial_ref::SpatialRef::from_epsg(28992).unwrap();
        let layer = ds
            .create_layer(LayerOptions {
                name: "b",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPolygon,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[
                ("id", gdal::vector::OGRFieldType::OFTString),
                ("h", gdal::vector::OGRFieldType::OFTReal),
            ])
            .unwrap();
        for (id, wkt) in [
            ("square", "POLYGON((0 0,10 0,10 10,0 10,0 0))"),
            ("bowtie", "POLYGON((20 0,30 10,30 0,20 10,20 0))"),
        ] {
            let mut f = gdal::vector::Feature::new(layer.defn()).unwrap();
            f.set_field_string(0, id).unwrap();
            f.set_field_double(1, 5.0).unwrap();
            f.set_geometry(Geometry::from_wkt(wkt).unwrap()).unwrap();
            f.create(&layer).unwrap();
        }
    }
    let cfg_text = |policy: &str| {
        format!("name = \"x\"\n[footprints]\npath = \"bowtie.gpkg\"\nid = \"id\"\ninvalid = \"{policy}\"\n[label]\nsource = \"attribute\"\nname = \"h\"\nfield = \"h\"\n")
    };
    let cfg = write_config(dir.path(), "city.toml", &cfg_text("error"));
    let (code, _, err) = run_labels(dir.path(), &cfg);
    assert_clean_error(code, &err, "bowtie.gpkg");
    assert!(
        err.contains("'bowtie'") && err.contains("not a valid polygon"),
        "{err}"
    );
    // Repaired by default: both buildings labelled.
    let cfg = write_config(dir.path(), "city.toml", &cfg_text("repair"));
    let out = dir.path().join("out.csv");
    let (code, stdout, err) = roofline(&[
        "labels",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("ok 2"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// The corpus: every case is made from a shipped real file, run through the binary, and checked
// for exit code 1, one error line naming the file (and key, field or feature), and a folder
// left exactly as it was.

/// Runs roofline, asserts a clean failure naming `file` and containing every word, and that
/// `dir` holds the same files as before (no output, no temporary file).
fn fails(dir: &Path, args: &[&str], file: &str, words: &[&str]) -> String {
    let before = listing(dir);
    let (code, _, err) = roofline(args);
    assert_clean_error(code, &err, file);
    for w in words {
        assert!(err.contains(w), "expected '{w}' in: {err}");
    }
    assert_eq!(listing(dir), before, "a failed run changed the folder");
    err
}

fn labels_args(dir: &Path, cfg: &Path) -> Vec<String> {
    vec![
        "labels".into(),
        cfg.display().to_string(),
        "-o".into(),
        dir.join("labels.csv").display().to_string(),
        "--quiet".into(),
    ]
}

fn labels_fail(dir: &Path, cfg: &Path, file: &str, words: &[&str]) -> String {
    let args = labels_args(dir, cfg);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    fails(dir, &args, file, words)
}

/// A successful `labels` run: (stdout, stderr, rows of the CSV it wrote as (id, flag)).
fn labels_ok(dir: &Path, cfg: &Path) -> (String, String, Vec<(String, String)>) {
    let args = labels_args(dir, cfg);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (code, out, err) = roofline(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    let t = roofline::io::output::read_table(&dir.join("labels.csv")).unwrap();
    let ids = t.column("id").unwrap().as_strings();
    let flags = t.column("flag").unwrap().as_strings();
    (out, err, ids.into_iter().zip(flags).collect())
}

/// Delft 5910's first `n` buildings with `edit` applied, written to `dir/name` with a config.
fn derived_city(
    dir: &Path,
    name: &str,
    n: usize,
    extra: &str,
    edit: impl FnOnce(&mut Rows),
) -> PathBuf {
    let mut rows = delft5910(n);
    edit(&mut rows);
    write_gpkg(&dir.join(name), &rows);
    write_config(
        dir,
        "city.toml",
        &attribute_config(name, "identificatie", "h_70p", extra),
    )
}

// --- config -----------------------------------------------------------------------------------

fn shipped_config_with(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = format!(
        "name = \"delft-5910\"\n[footprints]\npath = \"{}\"\nlayer = \"footprints\"\nid = \"identificatie\"\n[label]\nsource = \"attribute\"\nname = \"roof-p70\"\nfield = \"h_70p\"\n",
        data().join("cities/delft-5910/footprints_DERIVED.gpkg").display()
    );
    write_config(dir, "city.toml", &edit(&text))
}

#[test]
fn config_unknown_keys_and_wrong_types_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (edit of the shipped-style config, the key the message must name, its line)
    type Edit = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|t| {
                t.replacen(
                    "name = \"delft-5910\"\n",
                    "name = \"delft-5910\"\ncolour = \"red\"\n",
                    1,
                )
            }),
            "colour",
            "line 2",
        ),
        (
            Box::new(|t| t.replacen("layer = ", "idd = \"x\"\nlayer = ", 1)),
            "footprints.idd",
            "line 4",
        ),
        (
            Box::new(|t| format!("{t}rign_m = 3.0\n")),
            "label.rign_m",
            "line 10",
        ),
        (
            Box::new(|t| format!("{t}ring_m = \"four\"\n").replace("\"attribute\"", "\"lidar\"")),
            "label.ring_m",
            "line 10",
        ),
        (
            Box::new(|t| t.replacen("layer = \"footprints\"", "layer = 3", 1)),
            "footprints.layer",
            "line 4",
        ),
        (
            Box::new(|t| {
                t.replacen(
                    "id = \"identificatie\"\n",
                    "id = \"identificatie\"\nduplicate_ids = \"merge\"\n",
                    1,
                )
            }),
            "footprints.duplicate_ids",
            "line 6",
        ),
        (
            Box::new(|t| t.replacen("name = \"delft-5910\"", "name = [\"delft\"]", 1)),
            "name",
            "line 1",
        ),
    ];
    for (edit, key, line) in cases {
        let cfg = shipped_config_with(d, edit);
        let err = labels_fail(d, &cfg, "city.toml", &[key, line]);
        assert!(err.contains(&format!("'{key}'")), "{err}");
    }
}

#[test]
fn config_broken_toml_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Truncated in the middle of a string: a TOML syntax error with its line.
    let shipped = std::fs::read_to_string(data().join("cities/delft-5910.toml")).unwrap();
    let cut = shipped.find("h_70p").unwrap() + 2;
    let cfg = write_config(d, "city.toml", &shipped[..cut]);
    labels_fail(d, &cfg, "city.toml", &["line "]);
    // A statistic that does not exist.
    let cfg = shipped_config_with(d, |t| {
        format!("{t}roof = \"p170\"\n").replace("\"attribute\"", "\"lidar\"")
    });
    labels_fail(d, &cfg, "city.toml", &["label.roof", "p170"]);
    // An unknown label source.
    let cfg = shipped_config_with(d, |t| t.replace("\"attribute\"", "\"photo\""));
    labels_fail(d, &cfg, "city.toml", &["label.source", "photo"]);
    // A key of the other label source.
    let cfg = shipped_config_with(d, |t| format!("{t}ring_m = 3.0\n"));
    labels_fail(d, &cfg, "city.toml", &["label.ring_m", "attribute"]);
}

// --- LiDAR ------------------------------------------------------------------------------------

fn delft_lidar_config(dir: &Path, laz: &str, crs: &str) -> PathBuf {
    write_config(
        dir,
        "city.toml",
        &format!(
            "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"buildingpart\"\nid = \"identificatiebagpnd\"\n[lidar]\npaths = [\"{laz}\"]\ncrs = \"{crs}\"\n[label]\nsource = \"lidar\"\n",
            delft("footprints/bgt_pand.sqlite"),
        ),
    )
}

#[test]
fn laz_whose_header_promises_more_points_than_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(delft("lidar/ahn3_cropped_2.laz"), d.join("count.laz")).unwrap();
    inflate_point_count(&d.join("count.laz"), 5000);
    let cfg = delft_lidar_config(d, "count.laz", "EPSG:28992");
    labels_fail(d, &cfg, "count.laz", &[]);
}

#[test]
fn las_whose_header_point_count_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    laz_to_las(
        &PathBuf::from(delft("lidar/ahn3_cropped_2.laz")),
        &d.join("count.las"),
        200_000,
    );
    // The LAS as written is read without complaint…
    let cfg = delft_lidar_config(d, "count.las", "EPSG:28992");
    let (code, _, err) = roofline(&["inspect", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // …and refused once its header promises 1000 points more than the file holds.
    inflate_point_count(&d.join("count.las"), 1000);
    labels_fail(d, &cfg, "count.las", &["truncated"]);
}

#[test]
fn lidar_and_footprints_that_do_not_meet() {
    // Dutch RD coordinates declared as Lambert-93: the tile lands far from Delft.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = delft_lidar_config(d, &delft("lidar/ahn3_cropped_2.laz"), "EPSG:2154");
    labels_fail(
        d,
        &cfg,
        "city.toml",
        &["LiDAR extent does not intersect the footprints — check the CRS"],
    );
}

// --- footprints -------------------------------------------------------------------------------

/// The first ring of a footprint as (x, y) vertices.
fn ring(g: &Geometry) -> Vec<(f64, f64)> {
    let mut g = g.clone();
    g.flatten_to_2d();
    let poly = if g.geometry_count() > 0 && g.geometry_name() == "MULTIPOLYGON" {
        g.get_geometry(0).clone()
    } else {
        g
    };
    let r = poly.get_geometry(0);
    (0..r.point_count())
        .map(|i| {
            let (x, y, _) = r.get_point(i as i32);
            (x, y)
        })
        .collect()
}

fn wkt_ring(pts: &[(f64, f64)], z: Option<f64>) -> String {
    pts.iter()
        .map(|(x, y)| match z {
            Some(z) => format!("{x} {y} {z}"),
            None => format!("{x} {y}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn id_of(rows: &Rows, i: usize) -> String {
    let k = rows.field("identificatie");
    match &rows.rows[i].0[k] {
        Some(FieldValue::StringValue(s)) => s.clone(),
        other => panic!("id {other:?}"),
    }
}

#[test]
fn self_intersecting_real_footprint_is_repaired_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut id = String::new();
    // Swap two vertices of a real footprint (the first where that makes a bow tie).
    let cfg = derived_city(d, "bowtie.gpkg", 50, "invalid = \"error\"", |rows| {
        let (i, bowtie) = (0..rows.rows.len())
            .find_map(|i| {
                let mut pts = ring(rows.rows[i].1.as_ref().unwrap());
                if pts.len() < 5 {
                    return None;
                }
                pts.swap(1, 2);
                let g =
                    Geometry::from_wkt(&format!("POLYGON(({}))", wkt_ring(&pts, None))).unwrap();
                (!g.is_valid()).then_some((i, g))
            })
            .expect("a footprint among the first 50 that the swap makes invalid");
        id = id_of(rows, i);
        rows.rows[i].1 = Some(bowtie);
    });
    labels_fail(
        d,
        &cfg,
        "bowtie.gpkg",
        &[&format!("'{id}'"), "not a valid polygon"],
    );
    // Default policy: repaired, every building in the output.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("invalid = \"error\"", "");
    std::fs::write(&cfg, text).unwrap();
    let (_, _, rows) = labels_ok(d, &cfg);
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().any(|(i, _)| *i == id));
}

#[test]
fn zero_area_footprint_stays_in_the_output_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut id = String::new();
    // Collapse a real footprint onto a line (every vertex at the first vertex's y).
    let cfg = derived_city(d, "flat.gpkg", 50, "", |rows| {
        id = id_of(rows, 7);
        let pts: Vec<(f64, f64)> = ring(rows.rows[7].1.as_ref().unwrap());
        let y = pts[0].1;
        let flat: Vec<(f64, f64)> = pts.iter().map(|(x, _)| (*x, y)).collect();
        rows.rows[7].1 =
            Some(Geometry::from_wkt(&format!("POLYGON(({}))", wkt_ring(&flat, None))).unwrap());
    });
    let (out, _, rows) = labels_ok(d, &cfg);
    assert_eq!(rows.len(), 50, "every input building is in the output");
    let flagged: Vec<&(String, String)> = rows.iter().filter(|(_, f)| f == "no_geometry").collect();
    assert_eq!(flagged.len(), 1, "{rows:?}");
    assert_eq!(flagged[0].0, id);
    assert!(out.contains("no_geometry 1"), "{out}");
    // With invalid = "error", the run stops and names the footprint.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "layer = \"footprints\"",
        "layer = \"footprints\"\ninvalid = \"error\"",
    );
    std::fs::write(&cfg, text).unwrap();
    std::fs::remove_file(d.join("labels.csv")).unwrap();
    labels_fail(d, &cfg, "flat.gpkg", &[&format!("'{id}'")]);
}

#[test]
fn null_geometry_stays_in_the_output_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut id = String::new();
    let cfg = derived_city(d, "nogeom.gpkg", 40, "", |rows| {
        id = id_of(rows, 0);
        rows.rows[0].1 = None;
    });
    let (_, _, rows) = labels_ok(d, &cfg);
    assert_eq!(rows.len(), 40);
    assert!(
        rows.contains(&(id.clone(), "no_geometry".to_string())),
        "{rows:?}"
    );
    std::fs::remove_file(d.join("labels.csv")).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "layer = \"footprints\"",
        "layer = \"footprints\"\ninvalid = \"error\"",
    );
    std::fs::write(&cfg, text).unwrap();
    labels_fail(
        d,
        &cfg,
        "nogeom.gpkg",
        &[&format!("'{id}'"), "has no geometry"],
    );
}

#[test]
fn three_d_and_curved_footprints_are_read_like_flat_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, _, plain) = {
        let cfg = derived_city(d, "plain.gpkg", 30, "", |_| {});
        labels_ok(d, &cfg)
    };
    // The same footprints as PolygonZ (roof at 12.5 m) and as curve polygons.
    for (name, z, curve) in [("z.gpkg", Some(12.5), false), ("curve.gpkg", None, true)] {
        let cfg = derived_city(d, name, 30, "invalid = \"error\"", |rows| {
            for (_, g) in rows.rows.iter_mut() {
                let pts = ring(g.as_ref().unwrap());
                let wkt = if curve {
                    format!("CURVEPOLYGON(COMPOUNDCURVE(({})))", wkt_ring(&pts, None))
                } else {
                    format!("POLYGON Z(({}))", wkt_ring(&pts, z))
                };
                *g = Some(Geometry::from_wkt(&wkt).unwrap());
            }
        });
        let (_, _, rows) = labels_ok(d, &cfg);
        assert_eq!(rows, plain, "{name}");
    }
}

/// A point among polygons (an OpenStreetMap export's tagged node) is not a footprint: skipped
/// with a warning that counts it, no row; every polygon kept. A layer of points only is refused.
#[test]
fn point_footprints_are_skipped_and_a_layer_of_points_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut id = String::new();
    let cfg = derived_city(d, "point.gpkg", 20, "", |rows| {
        id = id_of(rows, 5);
        let (x, y) = ring(rows.rows[5].1.as_ref().unwrap())[0];
        rows.rows[5].1 = Some(Geometry::from_wkt(&format!("POINT({x} {y})")).unwrap());
    });
    let (_, err, rows) = labels_ok(d, &cfg);
    assert!(
        err.contains("point.gpkg")
            && err.contains("skipped 1 features that are not polygons (1 Point)"),
        "{err}"
    );
    assert_eq!(rows.len(), 19);
    assert!(rows.iter().all(|(i, _)| *i != id));
    let cfg = derived_city(d, "points.gpkg", 20, "", |rows| {
        for r in &mut rows.rows {
            let (x, y) = ring(r.1.as_ref().unwrap())[0];
            r.1 = Some(Geometry::from_wkt(&format!("POINT({x} {y})")).unwrap());
        }
    });
    labels_fail(d, &cfg, "points.gpkg", &["holds no polygon, only 20 Point"]);
}

#[test]
fn footprints_without_crs_or_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = derived_city(d, "nocrs.gpkg", 20, "", |rows| rows.srs = None);
    labels_fail(d, &cfg, "nocrs.gpkg", &["no CRS", "footprints.crs"]);
    let cfg = derived_city(d, "nullid.gpkg", 20, "", |rows| {
        let k = rows.field("identificatie");
        rows.rows[4].0[k] = None;
    });
    labels_fail(d, &cfg, "nullid.gpkg", &["null id", "identificatie"]);
}

#[test]
fn truncated_footprint_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // GeoJSON cut in half (Amsterdam's BAG export) and a GeoPackage cut in half.
    let geojson =
        std::fs::read(data().join("cities/amsterdam-centre/footprints/bag_pand.geojson")).unwrap();
    std::fs::write(d.join("half.geojson"), &geojson[..geojson.len() / 2]).unwrap();
    let cfg = write_config(
        d,
        "city.toml",
        "name = \"x\"\n[footprints]\npath = \"half.geojson\"\nid = \"identification\"\n[label]\nsource = \"attribute\"\nname = \"h\"\nfield = \"h\"\n",
    );
    labels_fail(d, &cfg, "half.geojson", &[]);
    let gpkg = std::fs::read(data().join("cities/delft-5910/footprints_DERIVED.gpkg")).unwrap();
    std::fs::write(d.join("half.gpkg"), &gpkg[..gpkg.len() / 2]).unwrap();
    let cfg = write_config(
        d,
        "city.toml",
        &attribute_config("half.gpkg", "identificatie", "h_70p", ""),
    );
    labels_fail(d, &cfg, "half.gpkg", &[]);
}

#[test]
fn duplicate_ids_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = id_of(&delft5910(1), 0);
    // Three buildings take the id of the first one, as in provider files with repeated ids.
    let edit = |rows: &mut Rows| {
        let k = rows.field("identificatie");
        for i in [3, 8, 9] {
            rows.rows[i].0[k] = rows.rows[0].0[k].clone();
        }
    };
    let cfg = derived_city(d, "dup.gpkg", 30, "duplicate_ids = \"error\"", edit);
    labels_fail(
        d,
        &cfg,
        "dup.gpkg",
        &[&format!("'{first}'"), "3 features repeat"],
    );

    // Default: suffixes, a warning with the count, and every building kept.
    let cfg = derived_city(d, "dup.gpkg", 30, "", edit);
    let (_, err, rows) = labels_ok(d, &cfg);
    assert_eq!(rows.len(), 30);
    assert!(
        err.contains("3 features repeat an id") && err.contains("dup.gpkg"),
        "{err}"
    );
    let ids: std::collections::HashSet<&String> = rows.iter().map(|(i, _)| i).collect();
    assert_eq!(ids.len(), 30, "ids are unique");
    for s in ["", "~2", "~3", "~4"] {
        assert!(
            ids.contains(&format!("{first}{s}")),
            "{first}{s} in {ids:?}"
        );
    }
    // fid: every footprint is named by its feature id.
    std::fs::remove_file(d.join("labels.csv")).unwrap();
    let cfg = derived_city(d, "dup.gpkg", 30, "duplicate_ids = \"fid\"", edit);
    let (_, _, rows) = labels_ok(d, &cfg);
    let got: Vec<&str> = rows.iter().map(|(i, _)| i.as_str()).collect();
    let want: Vec<String> = (1..=30).map(|i| i.to_string()).collect();
    assert_eq!(got, want.iter().map(|s| s.as_str()).collect::<Vec<_>>());
}

// --- labels -----------------------------------------------------------------------------------

#[test]
fn label_attribute_missing_or_not_numeric() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    derived_city(d, "f.gpkg", 20, "", |_| {});
    let cfg = write_config(
        d,
        "city.toml",
        &attribute_config("f.gpkg", "identificatie", "hoogte", ""),
    );
    labels_fail(d, &cfg, "f.gpkg", &["'hoogte'"]);
    // The id field holds text, not heights.
    let cfg = write_config(
        d,
        "city.toml",
        &attribute_config("f.gpkg", "identificatie", "identificatie", ""),
    );
    labels_fail(d, &cfg, "f.gpkg", &["'identificatie'", "not numeric"]);
}

#[test]
fn negative_and_absurd_heights_are_flagged_not_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = derived_city(d, "h.gpkg", 30, "", |rows| {
        let k = rows.field("h_70p");
        rows.rows[2].0[k] = Some(FieldValue::RealValue(-4.5));
        for i in [5, 6] {
            // A height in millimetres.
            let Some(FieldValue::RealValue(h)) = rows.rows[i].0[k] else {
                panic!()
            };
            rows.rows[i].0[k] = Some(FieldValue::RealValue(h * 1000.0));
        }
    });
    let (_, err, rows) = labels_ok(d, &cfg);
    assert_eq!(rows.len(), 30);
    assert_eq!(rows[2].1, "not_positive");
    assert_eq!(
        (rows[5].1.as_str(), rows[6].1.as_str()),
        ("implausible", "implausible")
    );
    assert!(err.contains("2 labels are not plausible"), "{err}");
}

// --- rasters ----------------------------------------------------------------------------------

const L8: &str =
    "cities/wageningen/imagery/landsat8-2014/LC08_197024_20140419_SR_b1-7_stack_DERIVED.tif";

/// Wageningen's first `n` buildings and its Landsat stack; `imagery` replaces the imagery
/// table's keys after `name`.
fn wageningen_subset(dir: &Path, n: usize, imagery: &str) -> PathBuf {
    let rows = read_rows(
        "wageningen/footprints/wageningen_buildings_DERIVED.gpkg",
        Some("buildings"),
        n,
    );
    write_gpkg(&dir.join("w.gpkg"), &rows);
    write_config(
        dir,
        "city.toml",
        &format!(
            "name = \"w\"\n[footprints]\npath = \"w.gpkg\"\nlayer = \"footprints\"\nid = \"identifica\"\n[[imagery]]\nname = \"l8\"\n{imagery}\n[label]\nsource = \"attribute\"\nname = \"roof-p70\"\nfield = \"h70_areaw\"\n"
        ),
    )
}

fn l8_keys(path: &Path, bands: usize) -> String {
    let names = [
        "coastal", "blue", "green", "red", "nir", "swir1", "swir2", "tirs",
    ];
    format!(
        "path = \"{}\"\nbands = {:?}\nscale = 0.0001\n",
        path.display(),
        &names[..bands]
    )
}

fn features_fail(dir: &Path, cfg: &Path, file: &str, words: &[&str]) -> String {
    let out = dir.join("features.parquet");
    fails(
        dir,
        &[
            "features",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ],
        file,
        words,
    )
}

#[test]
fn raster_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let l8 = data().join(L8);
    // A band named in the config that the file lacks.
    let cfg = wageningen_subset(d, 100, &l8_keys(&l8, 8));
    features_fail(d, &cfg, "stack_DERIVED.tif", &["7 bands", "names 8"]);
    // Every pixel nodata.
    let blank = all_nodata_copy(&l8, &d.join("blank.tif"));
    let cfg = wageningen_subset(d, 100, &l8_keys(&blank, 7));
    features_fail(d, &cfg, "blank.tif", &["only nodata"]);
    // A wrong CRS override: the raster lands away from the footprints.
    let cfg = wageningen_subset(
        d,
        100,
        &format!("{}crs = \"EPSG:32610\"\n", l8_keys(&l8, 7)),
    );
    features_fail(
        d,
        &cfg,
        "stack_DERIVED.tif",
        &["does not overlap the footprints", "is its CRS right?"],
    );
    // A truncated GeoTIFF.
    let bytes = std::fs::read(&l8).unwrap();
    std::fs::write(d.join("cut.tif"), &bytes[..bytes.len() / 3]).unwrap();
    let cfg = wageningen_subset(d, 100, &l8_keys(&d.join("cut.tif"), 7));
    features_fail(d, &cfg, "cut.tif", &[]);
}

/// Footprints in WGS 84, a working CRS of RD New and a raster in UTM 31N: three CRSs, the
/// same imagery features (within 0.01 %: the footprints went through WGS 84 and back) as with
/// footprints in RD New.
#[test]
fn raster_in_a_third_crs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let l8 = data().join(L8);
    let run = |gpkg_edit: &dyn Fn(&mut Rows), extra: &str| -> roofline::io::table::Table {
        let mut rows = read_rows(
            "wageningen/footprints/wageningen_buildings_DERIVED.gpkg",
            Some("buildings"),
            60,
        );
        gpkg_edit(&mut rows);
        write_gpkg(&d.join("w.gpkg"), &rows);
        let cfg = write_config(
            d,
            "city.toml",
            &format!(
                "name = \"w\"\n{extra}[footprints]\npath = \"w.gpkg\"\nlayer = \"footprints\"\nid = \"identifica\"\n[[imagery]]\nname = \"l8\"\n{}",
                l8_keys(&l8, 7)
            ),
        );
        let out = d.join("f.parquet");
        let (code, _, err) = roofline(&[
            "features",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        roofline::io::output::read_table(&out).unwrap()
    };
    let plain = run(&|_| {}, "");
    let mut wgs84 = gdal::spatial_ref::SpatialRef::from_epsg(4326).unwrap();
    wgs84.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let moved = run(
        &|rows| {
            for (_, g) in rows.rows.iter_mut() {
                let g = g.as_mut().unwrap();
                g.transform_to_inplace(&wgs84).unwrap();
            }
            rows.srs = Some(wgs84.clone());
        },
        "working_crs = \"EPSG:28992\"\n",
    );
    let a = plain.column("l8_red_mean").unwrap().as_f64();
    let b = moved.column("l8_red_mean").unwrap().as_f64();
    assert_eq!(a.len(), 60);
    let valid = a.iter().filter(|v| v.is_finite()).count();
    assert!(valid >= 50, "{valid} buildings with a red mean");
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 * x.abs().max(1e-3),
            "{x} vs {y}"
        );
    }
}

// --- models -----------------------------------------------------------------------------------

/// A model trained once per test run on 300 real Delft buildings (10 trees), and its folder.
fn small_model() -> &'static (tempfile::TempDir, PathBuf, Vec<u8>) {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf, Vec<u8>)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = derived_city(dir.path(), "train.gpkg", 300, "", |_| {});
        let model = dir.path().join("m.model");
        let (code, _, err) = roofline(&[
            "train",
            cfg.to_str().unwrap(),
            "-o",
            model.to_str().unwrap(),
            "--trees",
            "10",
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        let bytes = std::fs::read(&model).unwrap();
        (dir, cfg, bytes)
    })
}

/// The model's files with `roofline.json` edited.
fn with_meta(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    use std::io::Read;
    let mut archive = tar::Archive::new(bytes);
    let mut b = tar::Builder::new(Vec::new());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if name == "roofline.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&data).unwrap();
            edit(&mut v);
            data = serde_json::to_vec(&v).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, &name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn predict_fail(dir: &Path, model: &Path, region: &Path, file: &str, words: &[&str]) {
    let out = dir.join("p.gpkg");
    fails(
        dir,
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            region.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ],
        file,
        words,
    );
}

#[test]
fn bad_model_files() {
    let (_keep, region, bytes) = small_model();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "newer.model",
            with_meta(bytes, |v| v["format_version"] = 3.into()),
            &["format version 3", "newer"],
        ),
        (
            "older.model",
            with_meta(bytes, |v| v["format_version"] = 0.into()),
            &["format version 0", "older"],
        ),
        (
            "truncated.model",
            bytes[..bytes.len() * 2 / 3].to_vec(),
            &[],
        ),
        ("header.model", bytes[..700].to_vec(), &[]),
        (
            "short-ranges.model",
            with_meta(bytes, |v| {
                v["feature_ranges"].as_array_mut().unwrap().truncate(3);
            }),
            &["feature_ranges has 3 entries"],
        ),
        (
            "laz.model",
            std::fs::read(delft("lidar/ahn3_cropped_2.laz")).unwrap()[..4096].to_vec(),
            &["not a roofline model"],
        ),
    ];
    for (name, b, words) in cases {
        std::fs::write(d.join(name), b).unwrap();
        predict_fail(d, &d.join(name), region, name, words);
        std::fs::remove_file(d.join(name)).unwrap();
    }
    // A version 1 file (before city levels) is still read, and predicts the same heights.
    let (v1, v2) = (d.join("v1.model"), d.join("v2.model"));
    std::fs::write(&v1, with_meta(bytes, |v| v["format_version"] = 1.into())).unwrap();
    std::fs::write(&v2, bytes).unwrap();
    let predicted = |model: &Path, out: &str| {
        let out = d.join(out);
        let (code, _, err) = roofline(&[
            "predict",
            "--quiet",
            "--model",
            model.to_str().unwrap(),
            region.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(out).unwrap()
    };
    assert_eq!(predicted(&v1, "v1.csv"), predicted(&v2, "v2.csv"));
}

#[test]
fn model_whose_features_the_region_lacks() {
    // Trained with Landsat features; the Delft region has no imagery.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = wageningen_subset(d, 300, &l8_keys(&data().join(L8), 7));
    let model = d.join("l8.model");
    let (code, _, err) = roofline(&[
        "train",
        cfg.to_str().unwrap(),
        "-o",
        model.to_str().unwrap(),
        "--trees",
        "10",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_keep, region, _) = small_model();
    predict_fail(d, &model, region, "city.toml", &["lacks", "l8_"]);
}

// --- outputs ----------------------------------------------------------------------------------

#[test]
fn output_folder_missing_or_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = shipped_config_with(d, |t| t.to_string());
    let out = d.join("no-such-folder/labels.csv");
    fails(
        d,
        &["labels", cfg.to_str().unwrap(), "-o", out.to_str().unwrap()],
        "no-such-folder",
        &["does not exist"],
    );
    let out = d.join("labels.xlsx");
    fails(
        d,
        &["labels", cfg.to_str().unwrap(), "-o", out.to_str().unwrap()],
        "labels.xlsx",
        &["unknown output format"],
    );
    // The output name is taken by a folder.
    std::fs::create_dir(d.join("taken.csv")).unwrap();
    let out = d.join("taken.csv");
    fails(
        d,
        &[
            "labels",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ],
        "taken.csv",
        &["is a folder"],
    );
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn read_only_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = shipped_config_with(d, |t| t.to_string());
    // Root may write anywhere it has permission bits for; /proc refuses new files to everyone.
    let ro = if is_root() {
        PathBuf::from("/proc")
    } else {
        let ro = d.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        ro
    };
    let out = ro.join("labels.csv");
    fails(
        d,
        &[
            "labels",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ],
        "labels.csv",
        &[],
    );
    let left: Vec<String> = listing(&ro)
        .into_iter()
        .filter(|n| n.contains("labels"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A full disk, made with a file-size limit (ulimit -f 16: 8 or 16 KiB, by the shell's unit; the
/// labels of Delft 5910 are larger in every format): the write fails, the run says so on one
/// line, and neither output nor temporary file is left. GDAL's GeoJSON writer does not report
/// the failed write itself; the read-back check catches the cut-off file.
#[test]
fn disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = shipped_config_with(d, |t| t.to_string());
    for ext in ["gpkg", "geojson", "csv", "parquet"] {
        let name = format!("labels.{ext}");
        let out = d.join(&name);
        let before = listing(d);
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -f 16 && exec \"$0\" labels \"$1\" -o \"$2\" --quiet")
            .arg(env!("CARGO_BIN_EXE_roofline"))
            .arg(&cfg)
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_clean_error(o.status.code().unwrap_or(-1), &err, &name);
        assert!(
            err.contains("cannot write") || err.contains("cannot create"),
            "{err}"
        );
        assert_eq!(listing(d), before, "{ext}: {err}");
    }
}

/// A messy real file (a footprint without geometry, one collapsed to a line, three repeated
/// ids): every input building is a row of the labels, features and predictions, under the same
/// unique ids, the unusable ones flagged `no_geometry`.
#[test]
fn every_building_of_a_messy_file_is_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut lost = Vec::new();
    let cfg = derived_city(d, "messy.gpkg", 40, "", |rows| {
        let k = rows.field("identificatie");
        lost.push(id_of(rows, 0));
        rows.rows[0].1 = None;
        lost.push(id_of(rows, 7));
        let pts = ring(rows.rows[7].1.as_ref().unwrap());
        let flat: Vec<(f64, f64)> = pts.iter().map(|(x, _)| (*x, pts[0].1)).collect();
        rows.rows[7].1 =
            Some(Geometry::from_wkt(&format!("POLYGON(({}))", wkt_ring(&flat, None))).unwrap());
        for i in [3, 8, 9] {
            rows.rows[i].0[k] = rows.rows[1].0[k].clone();
        }
    });
    let (_, _, labels) = labels_ok(d, &cfg);
    let ids = |t: &roofline::io::table::Table| {
        let mut v = t.column("id").unwrap().as_strings();
        v.sort();
        v
    };
    let mut want: Vec<String> = labels.iter().map(|(i, _)| i.clone()).collect();
    want.sort();
    want.dedup();
    assert_eq!(want.len(), 40, "40 unique ids");

    let features = d.join("features.gpkg");
    let (code, _, err) = roofline(&[
        "features",
        cfg.to_str().unwrap(),
        "-o",
        features.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let model = small_model().0.path().join("m.model");
    let predictions = d.join("predictions.parquet");
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        cfg.to_str().unwrap(),
        "-o",
        predictions.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let f = roofline::io::output::read_table(&features).unwrap();
    let p = roofline::io::output::read_table(&predictions).unwrap();
    assert_eq!(ids(&f), want);
    assert_eq!(ids(&p), want);
    for (table, flag_col) in [(&f, "flag"), (&p, "source")] {
        let id = table.column("id").unwrap().as_strings();
        let flag = table.column(flag_col).unwrap().as_strings();
        let mut flagged: Vec<&String> = id
            .iter()
            .zip(&flag)
            .filter(|(_, f)| *f == "no_geometry")
            .map(|(i, _)| i)
            .collect();
        flagged.sort();
        let mut l: Vec<&String> = lost.iter().collect();
        l.sort();
        assert_eq!(flagged, l, "{flag_col}");
    }
    let h = p.column("height_m").unwrap().as_f64();
    let pid = p.column("id").unwrap().as_strings();
    for (i, v) in pid.iter().zip(&h) {
        assert_eq!(lost.contains(i), v.is_nan(), "{i}: height {v}");
    }
}
