//! Typed errors: a library caller can tell which kind of input failed by matching the variant,
//! and the one-line message a CLI user sees still names the file.

mod common;

use common::*;
use roofline::config::CityConfig;
use roofline::crs::Crs;
use roofline::error::Error;
use roofline::io::table::{Column, Table};
use roofline::model::HeightModel;
use roofline::progress::Progress;

fn delft_5910_config(extra: &str, label_extra: &str) -> String {
    format!(
        "name = \"delft-5910\"\n{extra}[footprints]\npath = \"{}\"\nlayer = \"footprints\"\nid = \"identificatie\"\n[label]\nsource = \"attribute\"\nname = \"roof-p70\"\nfield = \"h_70p\"\n{label_extra}",
        data().join("cities/delft-5910/footprints_DERIVED.gpkg").display()
    )
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "a.toml",
        &delft_5910_config("colour = \"red\"\n", ""),
    );
    match CityConfig::load(&cfg).unwrap_err() {
        Error::Config { path, key, msg } => {
            assert_eq!(path, cfg);
            assert_eq!(key.as_deref(), Some("colour"), "{msg}");
        }
        other => panic!("not a config error: {other:?}"),
    }
    let cfg = write_config(
        dir.path(),
        "b.toml",
        &delft_5910_config("working_crs = \"EPSG:0\"\n", ""),
    );
    let e = CityConfig::load(&cfg).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&cfg.display().to_string()), "{e}");
}

#[test]
fn crs_strings_fail_as_crs_errors() {
    for bad in ["EPSG:999999", "not a crs"] {
        let e = Crs::from_user(bad).unwrap_err();
        assert!(matches!(e, Error::Crs { .. }), "{bad}: {e:?}");
        assert!(e.to_string().contains(bad), "{e}");
    }
}

#[test]
fn a_corrupt_laz_is_a_point_cloud_error_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = data().join("cities/delft-3dfier/lidar/ahn3_cropped_2.laz");
    let bytes = std::fs::read(src).unwrap();
    std::fs::write(dir.path().join("half.laz"), &bytes[..bytes.len() / 2]).unwrap();
    let cfg = write_config(
        dir.path(),
        "city.toml",
        &format!(
            "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"buildingpart\"\nid = \"identificatiebagpnd\"\n[lidar]\npaths = [\"half.laz\"]\ncrs = \"EPSG:28992\"\n[label]\nsource = \"lidar\"\n",
            data().join("cities/delft-3dfier/footprints/bgt_pand.sqlite").display()
        ),
    );
    let cfg = CityConfig::load(&cfg).unwrap();
    let e = roofline::label::label_city(&cfg, &Progress::hidden()).unwrap_err();
    match &e {
        Error::PointCloud { path, .. } => assert!(path.ends_with("half.laz"), "{e}"),
        other => panic!("not a point-cloud error: {other:?}"),
    }
}

#[test]
fn a_missing_footprint_layer_is_a_footprints_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = delft_5910_config("", "").replace("layer = \"footprints\"", "layer = \"nope\"");
    let cfg = CityConfig::load(write_config(dir.path(), "c.toml", &text)).unwrap();
    let e = roofline::label::label_city(&cfg, &Progress::hidden()).unwrap_err();
    assert!(matches!(e, Error::Footprints { .. }), "{e:?}");
    assert!(e.to_string().contains("footprints_DERIVED.gpkg"), "{e}");
}

#[test]
fn model_files_of_another_version_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.model");
    let mut tar = tar::Builder::new(Vec::new());
    let meta = br#"{"format_version": 999}"#;
    let mut header = tar::Header::new_gnu();
    header.set_size(meta.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "roofline.json", &meta[..])
        .unwrap();
    std::fs::write(&path, tar.into_inner().unwrap()).unwrap();
    match HeightModel::load(&path).unwrap_err() {
        Error::ModelVersion {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(p.as_deref(), Some(path.as_path()));
            assert_eq!(found, 999);
            assert!(supported < 999);
        }
        other => panic!("not a version error: {other:?}"),
    }
    std::fs::write(&path, b"{\"not\": \"a model\"}").unwrap();
    let e = HeightModel::load(&path).unwrap_err();
    assert!(matches!(e, Error::ModelFile { .. }), "{e:?}");
}

#[test]
fn an_unwritable_output_is_an_output_error() {
    let mut t = Table::default();
    t.push(Column::f64("height_m", [1.0, 2.0]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/folder/out.csv");
    let e = roofline::io::output::write_table(&t, &path).unwrap_err();
    assert!(matches!(e, Error::Output { .. }), "{e:?}");
    assert_eq!(e.path(), Some(path.as_path()));
}
