//! Plausible-but-wrong inputs: valid files whose numbers are not what roofline takes them for
//! (heights in centimetres, millimetres, feet or storeys, roof altitudes above the datum,
//! swapped coordinates, LiDAR z in feet). Each is made at test time from the shipped real data
//! and must end in the right numbers (the config key that says what they are) or one clear
//! error naming the key — never in quietly different numbers. The projection cases (Web
//! Mercator, a far UTM zone, WGS 84) are in `roof_top.rs`.

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
    let args = [
        "train",
        "--quiet",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--trees",
        "10",
    ];
    common::refuses(
        &args,
        &out,
        cfg.file_name().unwrap().to_str().unwrap(),
        words,
    );
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

/// `roofline labels` on `cfg`, expecting one error line that names `file` and `words`.
fn labels_refuse(cfg: &Path, file: &str, words: &[&str]) {
    let out = cfg.with_extension("never.parquet");
    let args = [
        "labels",
        "--quiet",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    common::refuses(&args, &out, file, words);
}

#[test]
fn heights_in_feet_are_asked_for_where_feet_are_likely() {
    // 9. Los Angeles' HEIGHT is in feet, and 16 "m" is as plausible a median as 16 ft: with
    // no unit said, roofline asks, because the buildings lie in the United States.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = read_rows(
        "la-venice/la_venice_lariac2008_DERIVED.gpkg",
        Some("buildings"),
        400,
    );
    let gpkg = d.join("la.gpkg");
    write_gpkg(&gpkg, &rows);
    let k = rows.field("HEIGHT");
    let feet: Vec<Option<f64>> = rows
        .rows
        .iter()
        .map(|(v, _)| match &v[k] {
            Some(FieldValue::RealValue(h)) => Some(*h),
            _ => None,
        })
        .collect();
    let cfg = config(d, "la-unsaid", &gpkg, "BLD_ID", "HEIGHT", "");
    train_refuses(d, &cfg, &["feet", "United States", "unit = \"ft\""]);
    // Said either way, the unit is taken: feet become metres, metres stay.
    for (unit, factor) in [("ft", 0.3048), ("m", 1.0)] {
        let extra = format!("unit = \"{unit}\"\n");
        let cfg = config(d, &format!("la-{unit}"), &gpkg, "BLD_ID", "HEIGHT", &extra);
        let (code, err, h) = labels(&cfg);
        assert_eq!(code, 0, "{err}");
        let same = h
            .iter()
            .zip(&feet)
            .filter(|(a, b)| {
                a.zip(**b)
                    .is_some_and(|(a, b)| (a - b * factor).abs() < 1e-9)
            })
            .count();
        assert!(same >= 390, "{unit}: {same} of {}", feet.len());
    }
}

/// Rows with every geometry reprojected to `to` (x = longitude or easting) and, with `swap`,
/// x and y exchanged as a file written latitude-first would hold them.
fn reprojected(rows: &Rows, to: u32, swap: bool) -> Rows {
    use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
    let mut target = SpatialRef::from_epsg(to).unwrap();
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut source = rows.srs.clone().unwrap();
    source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t = gdal::spatial_ref::CoordTransform::new(&source, &target).unwrap();
    let out = rows
        .rows
        .iter()
        .map(|(v, g)| {
            let g = g.as_ref().map(|g| {
                let g = g.transform(&t).unwrap();
                if !swap {
                    return g;
                }
                // Exchange each "x y" pair of the WKT.
                let wkt = g.wkt().unwrap();
                let mut out = String::new();
                let mut number = String::new();
                let mut pair: Vec<String> = Vec::new();
                for c in wkt.chars() {
                    if c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' {
                        number.push(c);
                        continue;
                    }
                    if !number.is_empty() {
                        pair.push(std::mem::take(&mut number));
                        if pair.len() == 2 {
                            out.push_str(&format!("{} {}", pair[1], pair[0]));
                            pair.clear();
                        }
                    }
                    if c == ' ' && pair.len() == 1 {
                        continue;
                    }
                    out.push(c);
                }
                gdal::vector::Geometry::from_wkt(&out).unwrap()
            });
            (v.clone(), g)
        })
        .collect();
    Rows {
        fields: rows.fields.clone(),
        srs: Some(target),
        rows: out,
    }
}

#[test]
fn swapped_coordinates_stop_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let delft = common::derive::delft5910(400);
    let run = |name: &str, rows: &Rows| {
        let gpkg = d.join(format!("{name}.gpkg"));
        write_gpkg(&gpkg, rows);
        let cfg = config(d, name, &gpkg, "identificatie", "h_70p", "");
        (cfg, format!("{name}.gpkg"))
    };
    // 10. Longitude and latitude written the right way round read fine…
    let (cfg, _) = run("lonlat", &reprojected(&delft, 4326, false));
    let (code, err, _) = labels(&cfg);
    assert_eq!(code, 0, "{err}");
    // …and exchanged (Delft put at latitude 4°, every outline stretched 1.6× east-west) stop.
    let (cfg, file) = run("latlon", &reprojected(&delft, 4326, true));
    labels_refuse(&cfg, &file, &["x and y look swapped", "square"]);
    // 11. The Dutch grid with easting and northing exchanged: shapes are mirrored, not
    // stretched, but the town leaves the area the CRS is made for.
    let (cfg, file) = run("rd-swapped", &reprojected(&delft, 28992, true));
    labels_refuse(&cfg, &file, &["x and y look swapped", "EPSG:28992"]);
}

/// The shipped Delft LAZ tiles with z in international feet (x, y stay metres), into `dir`;
/// with `wkt`, each file's header says so (a compound CRS: RD New + a height in feet).
fn delft_lidar_in_feet(dir: &Path, wkt: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 1..=2 {
        let src = common::data().join(format!("cities/delft-3dfier/lidar/ahn3_cropped_{i}.laz"));
        let mut reader = las::Reader::from_path(&src).unwrap();
        let mut builder = las::Builder::from(reader.header().clone());
        builder.version = las::Version::new(1, 4);
        let mut header = builder.into_header().unwrap();
        if let Some(w) = wkt {
            header.set_wkt_crs(w.as_bytes().to_vec()).unwrap();
        }
        let mut writer = las::Writer::from_path(dir.join(format!("feet_{i}.laz")), header).unwrap();
        for p in reader.read_all().unwrap().points() {
            let mut p = p.unwrap();
            p.z /= 0.3048;
            writer.write_point(p).unwrap();
        }
        writer.close().unwrap();
    }
}

#[test]
fn lidar_z_in_feet_gives_metres_when_the_file_or_the_config_says_so() {
    // 12. A LiDAR survey with z in feet over a metre grid: heights would come out 3.28× too
    // tall, a plausible 25 m for a 7.5 m house. The unit comes from the file's CRS record or
    // from `lidar.z_unit_m`; both give the metre survey's heights.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rd = gdal::spatial_ref::SpatialRef::from_epsg(28992)
        .unwrap()
        .to_wkt()
        .unwrap();
    let compound = format!(
        "COMPD_CS[\"Amersfoort / RD New + NAP height (ft)\",{rd},VERT_CS[\"NAP height (ft)\",VERT_DATUM[\"Normaal Amsterdams Peil\",2005],UNIT[\"foot\",0.3048],AXIS[\"Gravity-related height\",UP]]]"
    );
    delft_lidar_in_feet(&d.join("said"), Some(&compound));
    delft_lidar_in_feet(&d.join("unsaid"), None);
    let footprints = common::data().join("cities/delft-3dfier/footprints/bgt_pand.sqlite");
    let cfg = |name: &str, lidar: &str| {
        write_config(
            d,
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\n[footprints]\npath = \"{}\"\nlayer = \"buildingpart\"\nid = \"identificatiebagpnd\"\n[lidar]\n{lidar}\n[label]\nsource = \"lidar\"\n",
                footprints.display()
            ),
        )
    };
    let shipped = common::data().join("cities/delft-3dfier/lidar/*.laz");
    let (code, err, metres) = labels(&cfg(
        "metres",
        &format!("paths = [\"{}\"]\ncrs = \"EPSG:28992\"", shipped.display()),
    ));
    assert_eq!(code, 0, "{err}");
    let ok = metres.iter().filter(|h| h.is_some()).count();
    assert!(ok > 100, "{ok} labels");
    for (name, lidar) in [
        ("file-says", "paths = [\"said/*.laz\"]"),
        (
            "config-says",
            "paths = [\"unsaid/*.laz\"]\ncrs = \"EPSG:28992\"\nz_unit_m = 0.3048",
        ),
    ] {
        let (code, err, h) = labels(&cfg(name, lidar));
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(h.len(), metres.len());
        for (a, b) in h.iter().zip(&metres) {
            assert_eq!(a.is_some(), b.is_some(), "{name}: {a:?} vs {b:?}");
            if let (Some(a), Some(b)) = (a, b) {
                // The feet are stored to the file's scale (1 mm of a foot).
                assert!((a - b).abs() < 0.01, "{name}: {a} vs {b}");
            }
        }
    }
    // Said nowhere, the heights come out in feet: what the two cases above prevent, and what
    // roofline cannot see from the points alone (README, "Errors").
    let (code, err, h) = labels(&cfg(
        "unsaid",
        "paths = [\"unsaid/*.laz\"]\ncrs = \"EPSG:28992\"",
    ));
    assert_eq!(code, 0, "{err}");
    let ratios: Vec<f64> = h
        .iter()
        .zip(&metres)
        .filter_map(|(a, b)| Some(a.as_ref()? / b.as_ref()?))
        .collect();
    let r = common::median(&ratios);
    assert!((r - 1.0 / 0.3048).abs() < 0.01, "median ratio {r}");
}

#[test]
fn inspect_reads_the_label_as_train_does() {
    // `inspect` used to call a label field that does not exist fine, and heights in
    // centimetres too; `labels` and `train` then failed on them.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpkg = delft_with(d, "metres", |h| h);
    let inspect = |cfg: &Path| {
        let (code, out, err) = roofline(&["inspect", cfg.to_str().unwrap()]);
        (code, out, err)
    };
    let ok = config(d, "ok", &gpkg, "identificatie", "h_70p", "");
    let (code, out, err) = inspect(&ok);
    assert_eq!(code, 0, "{err}");
    let (_, _, truth) = labels(&ok);
    let carried = truth.iter().filter(|h| h.is_some()).count();
    assert!(
        out.contains(&format!("{carried} of 400 footprints carry a height")),
        "{out}"
    );
    let missing = config(d, "missing", &gpkg, "identificatie", "h_71p", "");
    let (code, _, err) = inspect(&missing);
    common::assert_clean_error(code, &err, "metres.gpkg");
    assert!(err.contains("no field 'h_71p'"), "{err}");
    let cm = delft_with(d, "cm", |h| h * 100.0);
    let cm = config(d, "cm", &cm, "identificatie", "h_70p", "");
    let (code, _, err) = inspect(&cm);
    common::assert_clean_error(code, &err, "cm.toml");
    assert!(err.contains("centimetres"), "{err}");
}

#[test]
fn labels_of_another_family_do_not_feed_known_neighbour_features() {
    // 13. A region whose labels are another family's heights (here Delft's roof heights
    // called eaves) must be predicted as if it had none by a model that uses known-neighbour
    // heights: neither kept, nor anchoring, nor feeding the neighbour features.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let model = d.join("known.model");
    let (code, _, err) = roofline(&[
        "train",
        "--quiet",
        &s(&common::data().join("cities/delft-3dfier.toml")),
        "--known-heights",
        "--trees",
        "40",
        "-o",
        &s(&model),
    ]);
    assert_eq!(code, 0, "{err}");
    let footprints = common::data().join("cities/delft-5910/footprints_DERIVED.gpkg");
    let region = |name: &str, label: &str| {
        write_config(
            d,
            &format!("{name}.toml"),
            &format!(
                "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"footprints\"\nid = \"identificatie\"\n{label}",
                footprints.display()
            ),
        )
    };
    let plain = region("plain", "");
    let eave = region(
        "eave",
        "[label]\nsource = \"attribute\"\nname = \"eave\"\nfield = \"h_70p\"\n",
    );
    let heights = |cfg: &Path| {
        let out = cfg.with_extension("parquet");
        let (code, _, err) = roofline(&[
            "predict",
            "--quiet",
            "--model",
            &s(&model),
            &s(cfg),
            "-o",
            &s(&out),
        ]);
        assert_eq!(code, 0, "{err}");
        let t = roofline::io::output::read_table(&out).unwrap();
        t.column("height_m").unwrap().as_f64()
    };
    let (a, b) = (heights(&plain), heights(&eave));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{x} vs {y}"
        );
    }
}
