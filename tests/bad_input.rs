//! Bad input: one clear error line naming the file, exit code 1, no panic, no output left.

mod common;

use std::path::Path;

use common::*;

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
