//! Local data for a city the model never saw: sparse-LiDAR and local-label scenarios of
//! leave-one-city-out, and `predict` on a region whose config lists a sparse survey.

mod common;

use std::collections::BTreeMap;

use common::*;
use roofline::eval::cv::{cross_validate_with, Scenarios, Scheme, NO_SCENARIO};
use roofline::eval::scenario::Scenario;
use roofline::model::anchor::Draw;
use roofline::model::train::train_model;
use roofline::progress::Progress;
use roofline::render::report::write_report;

/// Two small cities, one with LiDAR labels: the sparse scenario really thins the survey (points
/// counted), measures the buildings it still hits close to their full-survey height, and the
/// local-label scenario scores only the buildings it did not reveal.
#[test]
fn scenarios_thin_the_survey_and_score_the_rest() {
    let names = ["delft-3dfier", "delft-5910"];
    let cities: Vec<_> = names.iter().map(|n| plain_features(n)).collect();
    let configs: Vec<_> = names.iter().map(|n| city_config(n)).collect();
    let list = [
        Scenario::SparseLidar {
            sparsify: "density=0.05".parse().unwrap(),
        },
        Scenario::local_labels("0.1", Draw::Spread).unwrap(),
    ];
    let out = cross_validate_with(
        &cities,
        Scheme::City,
        &quick_options(),
        Scenarios {
            list: &list,
            configs: &configs,
        },
        &Progress::hidden(),
    )
    .unwrap();
    let s = &out.summary;
    assert_eq!(s.scenarios.len(), 2);
    let sparse = &s.scenarios[0];
    assert_eq!(sparse.name, "sparse-lidar density=0.05");

    // Delft's survey holds ~14.6 pts/m² (849 k points over ~0.06 km²); 0.05 pts/m² keeps a
    // few thousand. Delft-5910 has no point cloud to degrade.
    let delft = &sparse.cities[0];
    let full = cities[0].labels.as_ref().unwrap().points_read;
    assert_eq!(delft.points_full, full);
    assert!(full > 800_000, "{full}");
    assert!(
        delft.points_kept > 500 && delft.points_kept * 100 < full,
        "kept {} of {full}",
        delft.points_kept
    );
    assert!(delft.direct > 10 && delft.direct < 160, "{}", delft.direct);
    assert!(sparse.cities[1].skipped.is_some());

    // Every labelled Delft building is scored once under the scenario; directly measured ones
    // are close to the full survey's height.
    let rows_of = |scenario: &str, city: &str| -> Vec<&roofline::eval::cv::CvRow> {
        out.rows
            .iter()
            .filter(|r| r.scenario == scenario && r.city == city)
            .collect()
    };
    let sr = rows_of(&sparse.name, "delft-3dfier");
    assert_eq!(sr.len(), 160);
    let mut by_source: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in &sr {
        by_source
            .entry(r.source.as_str())
            .or_default()
            .push((r.predicted_m - r.truth_m).abs());
    }
    let direct = &by_source["sparse_lidar"];
    assert_eq!(direct.len(), delft.direct);
    let direct_mae = direct.iter().sum::<f64>() / direct.len() as f64;
    assert!(direct_mae < 2.0, "direct-estimate MAE {direct_mae}");
    assert_eq!(
        by_source.keys().copied().collect::<Vec<_>>(),
        ["recalibrated", "sparse_lidar"]
    );

    // Local labels: round(10 %) of each city's labelled buildings are revealed, never scored.
    let local = &s.scenarios[1];
    for (c, n) in [("delft-3dfier", 160usize), ("delft-5910", 429)] {
        let known = (0.1 * n as f64).round() as usize;
        assert_eq!(rows_of(&local.name, c).len(), n - known, "{c}");
        let summary = local.cities.iter().find(|x| x.city == c).unwrap();
        assert_eq!(summary.known, known);
    }
    // The no-local-data rows are unchanged by the scenarios: one per labelled building.
    assert_eq!(rows_of(NO_SCENARIO, "delft-5910").len(), 429);

    let dir = tempfile::tempdir().unwrap();
    write_report(&out, &cities, dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Local-data scenarios"), "{md}");
    assert!(
        md.contains("| sparse-lidar density=0.05 | delft-3dfier |"),
        "{md}"
    );
    let table = roofline::io::output::read_table(&dir.path().join("predictions.csv")).unwrap();
    let sc = table.column("scenario").unwrap().as_strings();
    assert_eq!(sc.iter().filter(|v| v.as_str() == sparse.name).count(), 160);
}

/// `predict` on the sparse-1km region (0.3 pts/m² survey, thinned further to 0.02): buildings the
/// survey still hits are measured directly, the rest predicted with local recalibration, and
/// the output says which; `--no-recalibrate` predicts every building from other cities.
#[test]
fn predict_uses_a_regions_sparse_survey() {
    let cities: Vec<_> = ["delft-3dfier", "delft-5910"]
        .iter()
        .map(|n| plain_features(n))
        .collect();
    let refs: Vec<_> = cities.iter().collect();
    let model = train_model(&refs, &quick_options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.model");
    model.save(&model_path).unwrap();
    let region = data().join("lidar-samples/sparse-1km.toml");
    let out = dir.path().join("sparse.csv");
    let (code, stdout, err) = roofline(&[
        "--quiet",
        "predict",
        "--model",
        model_path.to_str().unwrap(),
        region.to_str().unwrap(),
        "--sparse-lidar",
        "density=0.02",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("measured directly from sparse LiDAR"),
        "{stdout}"
    );
    let t = roofline::io::output::read_table(&out).unwrap();
    assert_eq!(t.n_rows(), 888);
    let source = t.column("source").unwrap().as_strings();
    let height = t.column("height_m").unwrap().as_f64();
    let count = |s: &str| source.iter().filter(|v| v.as_str() == s).count();
    let (direct, recal) = (count("sparse_lidar"), count("recalibrated"));
    assert_eq!(direct + recal, 888, "{source:?}");
    assert!(
        direct > 100 && recal > 50,
        "direct {direct}, recalibrated {recal}"
    );
    let direct_h: Vec<f64> = (0..888)
        .filter(|&i| source[i] == "sparse_lidar")
        .map(|i| height[i])
        .collect();
    let m = median(&direct_h);
    assert!((2.0..20.0).contains(&m), "median direct height {m}");

    let (code, _, err) = roofline(&[
        "--quiet",
        "predict",
        "--model",
        model_path.to_str().unwrap(),
        region.to_str().unwrap(),
        "--no-recalibrate",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let t = roofline::io::output::read_table(&out).unwrap();
    let source = t.column("source").unwrap().as_strings();
    assert!(source.iter().all(|s| s == "predicted"));
}

/// What `cv` measures is what `predict` does: the local-labels scenario's rows equal
/// `predict_region_local` with the same sample of known buildings, value for value — and the
/// anchoring (in ln(height), for a model with a city level) really moved the city.
#[test]
fn the_local_labels_scenario_is_what_predict_does() {
    use roofline::eval::scenario::{run_scenario, HeldOut};
    use roofline::model::anchor::{Known, LocalData, Reveal};
    use roofline::model::local::LocalOptions;
    use roofline::model::predict::{predict_region, predict_region_local};

    let train: Vec<_> = ["delft-3dfier", "delft-5910", "wageningen"]
        .iter()
        .map(|n| plain_features(n))
        .collect();
    let refs: Vec<_> = train.iter().collect();
    let model = train_model(&refs, &quick_options()).unwrap();
    assert!(model.meta.level.is_some(), "three cities: a city level");
    let city = plain_features("amsterdam-centre");
    let p = predict_region(&model, &city).unwrap();
    let test: Vec<usize> = (0..city.len())
        .filter(|&i| city.ok_labels()[i].is_some())
        .collect();
    let known = Known {
        reveal: Reveal::Count(20),
        draw: Draw::Clustered,
        seed: 7,
    };
    let held = HeldOut {
        city: &city,
        config: None,
        predictions: &p,
        test: &test,
        fold: 0,
        baseline_m: 0.0,
        seed: known.seed,
        anchoring: LocalOptions::for_model(&model),
    };
    let scenario = Scenario::LocalLabels {
        known: known.reveal,
        draw: known.draw,
    };
    let (rows, summary) = run_scenario(&scenario, &held, &Progress::hidden()).unwrap();
    let local = LocalData {
        sparse: None,
        recalibrate: true,
        known: Some(known),
    };
    let q = predict_region_local(&model, &city, &local).unwrap();
    assert_eq!(summary.known, 20);
    assert_eq!(rows.len(), test.len() - 20);
    let index: BTreeMap<&str, usize> = city
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut moved = 0;
    for r in &rows {
        let i = index[r.id.as_str()];
        assert_eq!(
            (r.predicted_m, r.lo_m, r.hi_m, r.source.as_str()),
            (q.height_m[i], q.lo_m[i], q.hi_m[i], q.source[i].as_str()),
            "{}",
            r.id
        );
        moved += usize::from((r.predicted_m - p.predicted_m[i]).abs() > 0.5);
    }
    assert!(q.local.as_ref().is_some_and(|l| l.log_scale));
    // Amsterdam's centre is far taller than the Dutch towns: 20 known buildings move most rows.
    assert!(moved * 2 > rows.len(), "{moved} of {} moved", rows.len());
}
