//! Plausible-but-wrong inputs: valid files whose numbers are not what roofline takes them for
//! (heights in centimetres, millimetres, storeys, roof altitudes above the datum). Each is made
//! at test time from the shipped real data and must end in the right numbers (the config key
//! that says what they are) or one clear error naming the key — never in quietly different
//! numbers. The projection cases (Web Mercator, a far UTM zone, WGS 84) are in `roof_top.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::derive::{read_rows, write_gpkg, Rows};
use common::{roofline, write_config};
use gdal::vector::FieldValue;

/// The first 400 Delft-5910 buildings with `h_70p` replaced by `f(h_70p)`.
fn delft_with(dir: &Path, name: &str, f: impl Fn(f64) -> f64) -> PathBuf {
    let mut rows: Rows = read_rows(
        "delft-5910/footprints_DERIVED.gpkg",
        Some("footprints"),
        400,
    );
    let k = rows.field("h_70p");
    for (values, _) in &mut rows.rows {
        if let Some(FieldValue::RealValue(v)) = values[k] {
            values[k] = Some(FieldValue::RealValue(f(v)));
        }
    }
    let path = dir.join(format!("{name}.gpkg"));
    write_gpkg(&path, &rows);
    path
}

fn config(dir: &Path, name: &str, gpkg: &Path, id: &str, field: &str, extra: &str) -> PathBuf {
    write_config(
        dir,
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\n[footprints]\npath = \"{}\"\nlayer = \"footprints\"\nid = \"{id}\"\n[label]\nsource = \"attribute\"\nname = \"roof-p70\"\nfield = \"{field}\"\n{extra}",
            gpkg.file_name().unwrap().to_str().unwrap()
        ),
    )
}

/// `roofline labels` of a config: (exit code, stderr, the labels' heights when it worked).
fn labels(cfg: &Path) -> (i32, String, Vec<Option<f64>>) {
    let out = cfg.with_extension("labels.parquet");
    let (code, _, err) = roofline(&[
        "labels",
        "--quiet",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let heights = if code == 0 {
        let t = roofline::io::output::read_table(&out).unwrap();
        match &t.column("height_m").unwrap().data {
            roofline::io::table::ColumnData::F64(v) => v.clone(),
            other => panic!("{other:?}"),
        }
    } else {
        Vec::new()
    };
    (code, err, heights)
}

/// Trains on `cfg`, expecting one error line that names the config and `words`, and no model.
fn train_refuses(dir: &Path, cfg: &Path, words: &[&str]) {
    let out = dir.join("never.model");
    let (code, _, err) = roofline(&[
        "train",
        "--quiet",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--trees",
        "10",
    ]);
    common::assert_clean_error(code, &err, cfg.file_name().unwrap().to_str().unwrap());
    for w in words {
        assert!(err.contains(w), "'{w}' not in: {err}");
    }
    assert!(!out.exists(), "a model was written");
}

#[test]
fn heights_in_another_unit_stop_with_the_key_that_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let metres = config(
        d,
        "metres",
        &delft_with(d, "metres", |h| h),
        "identificatie",
        "h_70p",
        "",
    );
    let (code, err, truth) = labels(&metres);
    assert_eq!(code, 0, "{err}");

    // 1–4. Centimetres (the case: Delft-5910's h_70p × 100 trained quietly before)
    // and millimetres are refused, naming the unit; with the unit said, they are the metres'
    // heights again.
    for (unit, word, factor) in [("cm", "centimetres", 100.0), ("mm", "millimetres", 1000.0)] {
        let file = delft_with(d, unit, |h| h * factor);
        let cfg = config(d, unit, &file, "identificatie", "h_70p", "");
        train_refuses(d, &cfg, &[word, &format!("unit = \"{unit}\"")]);
        let said = format!("{unit}-said");
        let extra = format!("unit = \"{unit}\"\n");
        let cfg = config(d, &said, &file, "identificatie", "h_70p", &extra);
        let (code, err, h) = labels(&cfg);
        assert_eq!(code, 0, "{err}");
        assert_eq!(h.len(), truth.len());
        for (a, b) in h.iter().zip(&truth) {
            assert!(
                a.zip(*b).is_none_or(|(a, b)| (a - b).abs() < 1e-9) && a.is_some() == b.is_some(),
                "{unit}: {a:?} vs {b:?}"
            );
        }
    }
    let cm = d.join("cm.gpkg");

    // 5. Storey counts (a height of about 3 m a storey, rounded, at least 1).
    let storeys = delft_with(d, "storeys", |h| (h / 3.0).round().clamp(1.0, 9.0));
    let cfg = config(d, "storeys", &storeys, "identificatie", "h_70p", "");
    train_refuses(d, &cfg, &["storey counts"]);

    // 6. The user says the numbers are right: the check steps aside (documented key).
    let cfg = config(
        d,
        "cm-checked",
        &cm,
        "identificatie",
        "h_70p",
        "heights_checked = true\n",
    );
    let (code, err, _) = labels(&cfg);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn roof_altitudes_without_the_ground_stop_and_with_it_give_heights() {
    // 7. Linz: a roof's altitude above the Adriatic datum (ground ~260 m + height), as a
    // register of absolute heights holds it, taken for a height because no ground was given.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rows = read_rows("linz/linz_lod2_DERIVED.gpkg", Some("buildings"), 600);
    let (h, g) = (rows.field("height_m"), rows.field("ground_elev_m"));
    for (values, _) in &mut rows.rows {
        if let (Some(FieldValue::RealValue(a)), Some(FieldValue::RealValue(b))) =
            (&values[h], &values[g])
        {
            values[h] = Some(FieldValue::RealValue(a + b));
        }
    }
    let gpkg = d.join("linz-altitudes.gpkg");
    write_gpkg(&gpkg, &rows);
    let cfg = config(d, "altitudes", &gpkg, "id", "height_m", "");
    train_refuses(d, &cfg, &["absolute roof altitudes", "ground_field"]);
    // 8. With the ground field: the heights again.
    let cfg = config(
        d,
        "with-ground",
        &gpkg,
        "id",
        "height_m",
        "ground_field = \"ground_elev_m\"\n",
    );
    let (code, err, heights) = labels(&cfg);
    assert_eq!(code, 0, "{err}");
    let given: Vec<f64> = rows
        .rows
        .iter()
        .map(|(v, _)| match (&v[h], &v[g]) {
            (Some(FieldValue::RealValue(a)), Some(FieldValue::RealValue(b))) => a - b,
            _ => f64::NAN,
        })
        .collect();
    let same = heights
        .iter()
        .zip(&given)
        .filter(|(a, b)| a.is_some_and(|a| (a - *b).abs() < 1e-6))
        .count();
    assert!(same > 550, "{same} of {}", given.len());
}
