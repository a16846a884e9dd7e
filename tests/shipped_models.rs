//! The trained models in `models/` are what `roofline train` makes of the shipped cities with
//! the default options: retrained here and compared byte for byte, so the files never drift
//! from the code or the data (a change that moves them must ship new files).

mod common;

use common::{data, roofline};
use roofline::model::HeightModel;

/// Each shipped model and the cities it is trained on, as `models/README.md` says.
const SHIPPED: [(&str, &[&str]); 3] = [
    (
        "roof-top",
        &[
            "linz",
            "tokyo-chiyoda",
            "tokyo-setagaya",
            "la-venice",
            "rotterdam-delfshaven",
            "lorup",
        ],
    ),
    (
        "roof-p70",
        &[
            "amsterdam-centre",
            "delft-3dfier",
            "wageningen",
            "delft-5910",
        ],
    ),
    ("eave", &["perigueux", "olemps"]),
];

fn shipped(family: &str) -> std::path::PathBuf {
    data()
        .parent()
        .unwrap()
        .join("models")
        .join(format!("{family}.model"))
}

#[test]
fn shipped_models_are_what_train_makes_of_the_shipped_cities() {
    let dir = tempfile::tempdir().unwrap();
    for (family, cities) in SHIPPED {
        let out = dir.path().join(format!("{family}.model"));
        let mut args: Vec<String> = vec!["--quiet".into(), "train".into()];
        args.extend(cities.iter().map(|c| {
            data()
                .join(format!("cities/{c}.toml"))
                .display()
                .to_string()
        }));
        args.extend(["-o".into(), out.display().to_string()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = roofline(&refs);
        assert_eq!(code, 0, "{family}: {err}");
        let file = shipped(family);
        let ours = std::fs::read(&out).unwrap();
        let theirs = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            ours == theirs,
            "{} differs from a model retrained now: retrain it (models/README.md says how)",
            file.display()
        );
        let m = HeightModel::load(&file).unwrap();
        assert_eq!(m.meta.label.name, family);
        let trained: Vec<&str> = m.meta.training.iter().map(|t| t.city.as_str()).collect();
        assert_eq!(trained, cities.to_vec());
        // Three or more cities: a city level; the two eave cities: absolute heights.
        assert_eq!(m.meta.level.is_some(), cities.len() >= 3, "{family}");
        assert!(m.interval.is_some(), "{family}");
    }
}

#[test]
fn the_shipped_roof_top_model_predicts_a_region_from_a_fresh_clone() {
    // No training step: the shipped file, a region it never saw (Bresse's footprints).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bresse.gpkg");
    let (code, _, err) = roofline(&[
        "predict",
        "--quiet",
        "--model",
        shipped("roof-top").to_str().unwrap(),
        data().join("lidar-samples/bresse.toml").to_str().unwrap(),
        "--no-recalibrate",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(&out).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let mut n = 0;
    for f in layer.features() {
        let get = |name: &str| f.field_as_double(f.field_index(name).unwrap()).unwrap();
        let label = f.field_as_string(f.field_index("label").unwrap()).unwrap();
        assert_eq!(label.as_deref(), Some("roof-top"));
        let (Some(h), Some(lo), Some(hi)) =
            (get("height_m"), get("height_lo_m"), get("height_hi_m"))
        else {
            continue;
        };
        assert!(lo <= h && h <= hi && h > 1.0 && h < 40.0, "{lo} {h} {hi}");
        n += 1;
    }
    assert!(n >= 30, "{n} buildings predicted");
}
