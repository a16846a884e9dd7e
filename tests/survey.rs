//! Known heights from a survey file of their own (`[label] source = "survey"`), joined to the
//! footprints by id or by location: a list of 20 of Delft's measured heights, made at test time
//! from the shipped 3DBAG tile, anchors `predict` exactly as the same 20 heights do when they
//! are a field of the footprints, and keeps its source.

mod common;

use std::path::{Path, PathBuf};

use common::derive::{delft5910, write_gpkg, Rows};
use common::{roofline, write_config};
use gdal::vector::{FieldValue, OGRFieldType};
use geo::InteriorPoint;

/// Every 20th Delft building with a height: (row, id, h_70p, a point inside it in RD New).
fn chosen(rows: &Rows) -> Vec<(usize, String, f64, (f64, f64))> {
    let (id, h) = (rows.field("identificatie"), rows.field("h_70p"));
    rows.rows
        .iter()
        .enumerate()
        .filter_map(|(i, (v, g))| {
            let Some(FieldValue::RealValue(height)) = v[h] else {
                return None;
            };
            let Some(FieldValue::StringValue(name)) = &v[id] else {
                return None;
            };
            let p = g.as_ref()?.to_geo().ok()?.interior_point()?;
            Some((i, name.clone(), height, (p.x(), p.y())))
        })
        .step_by(20)
        .collect()
}

/// `predict` with the shipped roof-p70 model: (exit code, stderr, the output's columns).
fn predict(cfg: &Path) -> (i32, String, Option<roofline::io::table::Table>) {
    let out = cfg.with_extension("parquet");
    let model = common::data().join("../models/roof-p70.model");
    let (code, _, err) = roofline(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let table = (code == 0).then(|| roofline::io::output::read_table(&out).unwrap());
    (code, err, table)
}

fn region(dir: &Path, name: &str, label: &str) -> PathBuf {
    let footprints = common::data().join("cities/delft-5910/footprints_DERIVED.gpkg");
    write_config(
        dir,
        &format!("{name}.toml"),
        &format!(
            "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"footprints\"\nid = \"identificatie\"\n[label]\n{label}",
            footprints.display()
        ),
    )
}

#[test]
fn a_survey_joined_by_id_or_location_anchors_as_the_same_heights_in_a_field_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rows = delft5910(usize::MAX);
    let known = chosen(&rows);
    assert!(known.len() >= 18, "{} known", known.len());

    // The reference: the same heights as a field that only those footprints carry.
    rows.fields.push(("known".into(), OGRFieldType::OFTReal));
    for (i, (v, _)) in rows.rows.iter_mut().enumerate() {
        let h = known.iter().find(|k| k.0 == i).map(|k| k.2);
        v.push(h.map(FieldValue::RealValue));
    }
    let gpkg = d.join("with-known.gpkg");
    write_gpkg(&gpkg, &rows);
    let attribute = write_config(
        d,
        "attribute.toml",
        &format!(
            "name = \"delft\"\n[footprints]\npath = \"{}\"\nlayer = \"footprints\"\nid = \"identificatie\"\n[label]\nsource = \"attribute\"\nname = \"roof-p70\"\nfield = \"known\"\n",
            gpkg.display()
        ),
    );
    let (code, err, reference) = predict(&attribute);
    assert_eq!(code, 0, "{err}");
    let reference = reference.unwrap();

    // The surveys: by id (a CSV naming the footprints, with one id no footprint has), by
    // location (a CSV of points in RD New, with one point in a canal... far from any
    // building), and points in WGS 84 (a GeoPackage).
    let mut by_id = String::from("bag_id,hoogte\n");
    let mut at = String::from("x,y,hoogte\n");
    for (_, id, h, (x, y)) in &known {
        by_id.push_str(&format!("{id},{h}\n"));
        at.push_str(&format!("{x},{y},{h}\n"));
    }
    by_id.push_str("NL.IMBAG.Pand.0000000000000000,12.5\n");
    at.push_str("80000.0,440000.0,12.5\n");
    // A typo'd coordinate that no transformation places: unmatched, not fatal.
    at.push_str("85000.0,1e300,12.5\n");
    std::fs::write(d.join("by-id.csv"), by_id).unwrap();
    std::fs::write(d.join("at.csv"), at).unwrap();
    let points = {
        use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
        let mut rd = SpatialRef::from_epsg(28992).unwrap();
        let mut wgs = SpatialRef::from_epsg(4326).unwrap();
        rd.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let t = CoordTransform::new(&rd, &wgs).unwrap();
        Rows {
            fields: vec![("hoogte".into(), OGRFieldType::OFTReal)],
            srs: Some(wgs),
            rows: known
                .iter()
                .map(|(_, _, h, (x, y))| {
                    let g = gdal::vector::Geometry::from_wkt(&format!("POINT ({x} {y})"))
                        .unwrap()
                        .transform(&t)
                        .unwrap();
                    (vec![Some(FieldValue::RealValue(*h))], Some(g))
                })
                .collect(),
        }
    };
    write_gpkg(&d.join("points.gpkg"), &points);
    let common = "source = \"survey\"\nname = \"roof-p70\"\nfield = \"hoogte\"\n";
    for (name, keys, unmatched) in [
        ("by-id", "path = \"by-id.csv\"\nid = \"bag_id\"\n", 1),
        (
            "at",
            "path = \"at.csv\"\nx = \"x\"\ny = \"y\"\ncrs = \"EPSG:28992\"\n",
            2,
        ),
        ("points", "path = \"points.gpkg\"\n", 0),
    ] {
        let cfg = region(d, name, &format!("{common}{keys}"));
        let (code, err, table) = predict(&cfg);
        assert_eq!(code, 0, "{name}: {err}");
        let said = format!("{} of {} rows joined", known.len(), known.len() + unmatched);
        assert!(err.contains(&said), "{name}: '{said}' not in {err}");
        let t = table.unwrap();
        let ours = t.column("source").unwrap().as_strings();
        let theirs = reference.column("source").unwrap().as_strings();
        assert_eq!(ours.len(), theirs.len());
        let mut surveyed = 0;
        for (a, b) in ours.iter().zip(&theirs) {
            match b.as_str() {
                "measured" => {
                    assert_eq!(a, "survey", "{name}");
                    surveyed += 1;
                }
                other => assert_eq!(a, other, "{name}"),
            }
        }
        assert_eq!(surveyed, known.len(), "{name}");
        // Value for value the same heights and intervals as with the field.
        for col in ["height_m", "height_lo_m", "height_hi_m"] {
            let (x, y) = (
                t.column(col).unwrap().as_f64(),
                reference.column(col).unwrap().as_f64(),
            );
            for (a, b) in x.iter().zip(&y) {
                assert!(
                    (a - b).abs() < 1e-9 || (a.is_nan() && b.is_nan()),
                    "{name} {col}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn a_survey_that_joins_nothing_or_is_in_centimetres_stops_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = delft5910(usize::MAX);
    let known = chosen(&rows);
    let mut wrong_ids = String::from("bag_id,hoogte\n");
    let mut cm = String::from("bag_id,hoogte\n");
    for (_, id, h, _) in &known {
        wrong_ids.push_str(&format!("{}x,{h}\n", id));
        cm.push_str(&format!("{id},{}\n", h * 100.0));
    }
    std::fs::write(d.join("wrong.csv"), wrong_ids).unwrap();
    std::fs::write(d.join("cm.csv"), cm).unwrap();
    let comma: String = std::iter::once("bag_id,hoogte\n".to_string())
        .chain(
            known
                .iter()
                .map(|(_, id, h, _)| format!("{id},\"{}\"\n", format!("{h:.2}").replace('.', ","))),
        )
        .collect();
    std::fs::write(d.join("comma.csv"), comma).unwrap();
    let out = d.join("never.parquet");
    for (name, keys, file, words) in [
        (
            "wrong",
            "path = \"wrong.csv\"\nid = \"bag_id\"\n",
            "wrong.csv",
            &["none of its", "joins a footprint by id"][..],
        ),
        (
            "cm",
            "path = \"cm.csv\"\nid = \"bag_id\"\n",
            "cm.toml",
            &["centimetres", "unit = \"cm\""][..],
        ),
        (
            "nofield",
            "path = \"cm.csv\"\nid = \"hoogte_m\"\n",
            "cm.csv",
            &["has no field 'hoogte_m'"][..],
        ),
        (
            "comma",
            "path = \"comma.csv\"\nid = \"bag_id\"\n",
            "comma.csv",
            &["no row holds a number in field 'hoogte'"][..],
        ),
    ] {
        let cfg = region(
            d,
            name,
            &format!("source = \"survey\"\nname = \"roof-p70\"\nfield = \"hoogte\"\n{keys}"),
        );
        let args = [
            "labels",
            "--quiet",
            cfg.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        common::refuses(&args, &out, file, words);
    }
}

#[test]
fn a_tiled_run_with_a_survey_equals_the_single_run() {
    // Most tiles hold none of the surveyed buildings: not an error there, and the merge
    // anchors on all of them as the single run does.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = delft5910(usize::MAX);
    let mut csv = String::from("bag_id,hoogte\n");
    for (_, id, h, _) in chosen(&rows).iter().take(6) {
        csv.push_str(&format!("{id},{h}\n"));
    }
    std::fs::write(d.join("few.csv"), csv).unwrap();
    let survey = |family: &str| {
        format!("source = \"survey\"\nname = \"{family}\"\nfield = \"hoogte\"\npath = \"few.csv\"\nid = \"bag_id\"\n")
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let ok = |args: &[&str]| {
        let (code, _, err) = roofline(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        err
    };
    // A model of one other city (no city level), as tests/plan.rs uses, and the shipped
    // roof-p70 and roof-top models, whose city level a tile cannot estimate alone: the merge
    // applies the whole region's. (The roof-top model reads the same heights as its family's.)
    let trained = d.join("delft-3dfier.model");
    ok(&[
        "train",
        "--quiet",
        &s(&common::data().join("cities/delft-3dfier.toml")),
        "--trees",
        "60",
        "-o",
        &s(&trained),
    ]);
    let models = common::data().join("../models");
    let cases = [
        ("one-city model", trained.clone(), "roof-p70"),
        (
            "shipped roof-p70",
            models.join("roof-p70.model"),
            "roof-p70",
        ),
        (
            "shipped roof-top",
            models.join("roof-top.model"),
            "roof-top",
        ),
    ];
    for (what, model, family) in &cases {
        let cfg = region(d, &format!("tiled-{family}"), &survey(family));
        let plan_dir = d.join(format!("plan-{}", what.replace(' ', "-")));
        ok(&[
            "plan",
            &s(&cfg),
            "--grid",
            "--tile-size",
            "250",
            "-o",
            &s(&plan_dir),
        ]);
        let plan = roofline::plan::Plan::load(&plan_dir).unwrap();
        assert!(plan.jobs.len() >= 4, "{} jobs", plan.jobs.len());
        if *family == "roof-top" {
            // Its spread cap binds on this region (footprints more alike than the structure
            // spreads), so the merge must apply it from every tile's rows at once.
            let m = roofline::model::HeightModel::load(model).unwrap();
            let features = roofline::features::city_features(
                &roofline::config::CityConfig::load(&cfg).unwrap(),
                roofline::features::FeatureOptions {
                    known_heights: false,
                    ..Default::default()
                },
                &roofline::progress::Progress::hidden(),
            )
            .unwrap();
            let weight = m.meta.level.as_ref().unwrap().structure_weight;
            let capped = m.region_level(&features).unwrap().unwrap().weight;
            assert!(capped < 0.95 * weight, "cap {capped} of weight {weight}");
        }
        let single_out = d.join("single.parquet");
        ok(&[
            "predict",
            "--quiet",
            "--model",
            &s(model),
            &s(&cfg),
            "-o",
            &s(&single_out),
        ]);
        let single = roofline::io::output::read_table(&single_out).unwrap();
        let mut without = 0;
        for j in &plan.jobs {
            let err = ok(&[
                "predict",
                "--quiet",
                "--model",
                &s(model),
                "--job",
                &s(&plan_dir.join(&j.path)),
            ]);
            without += usize::from(err.contains("0 of 6 rows joined"));
        }
        assert!(without > 0, "every tile held a surveyed building");
        let merged = d.join("merged.parquet");
        ok(&[
            "merge",
            &s(&plan_dir),
            "--stage",
            "predictions",
            "-o",
            &s(&merged),
        ]);
        let merged = roofline::io::output::read_table(&merged).unwrap();
        let surveyed = single
            .column("source")
            .unwrap()
            .as_strings()
            .iter()
            .filter(|s| *s == "survey")
            .count();
        assert_eq!(surveyed, 6, "{what}");
        common::assert_same_output(&single, &merged, what);
    }
}
