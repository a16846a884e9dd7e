//! Ablation of leave-one-city-out (`cv --ablate`) and the training changes it compares:
//! district-scale context, city percentiles, covariate-shift weights.

mod common;

use common::*;
use roofline::eval::cv::CvSummary;
use roofline::features::relative::{rank_name, with_city_ranks};
use roofline::model::domain::domain_weights;
use roofline::model::train::select_features;

/// `cv --ablate` on two small cities: one row per variant next to the default, every seed run,
/// the default row's point model the same as the main run's (same seed, same folds), and the
/// variants really change training.
#[test]
fn cv_ablation_rows_compare_variants_on_the_same_folds() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cv");
    let cities = ["delft-3dfier", "delft-5910"].map(|c| {
        data()
            .join("cities")
            .join(format!("{c}.toml"))
            .to_string_lossy()
            .into_owned()
    });
    let (code, stdout, stderr) = roofline(&[
        "--quiet",
        "cv",
        &cities[0],
        &cities[1],
        "-o",
        dir.to_str().unwrap(),
        "--trees",
        "120",
        "--learning-rate",
        "0.1",
        "--seed",
        "5",
        "--ablate",
        "wide-context",
        "--ablate",
        "city-ranks",
        "--ablation-seeds",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let s: CvSummary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    let names: Vec<&str> = s.ablation.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(names, ["default", "wide-context", "city-ranks"]);
    for row in &s.ablation {
        assert_eq!(row.seeds, [5, 6]);
        assert_eq!(row.per_city.len(), 2);
        for c in &row.per_city {
            assert!(
                c.mae.min <= c.mae.mean && c.mae.mean <= c.mae.max,
                "{row:?}"
            );
            assert!(
                c.mae.mean > 0.3 && c.mae.mean < 5.0,
                "{} {}: {}",
                row.variant,
                c.city,
                c.mae.mean
            );
        }
    }
    // Seed 5 of the default row is the main run's point model: its MAE is one end of the spread.
    for (c, main) in s.ablation[0].per_city.iter().zip(&s.per_city) {
        assert_eq!(c.city, main.city);
        let m = main.model.mae;
        assert!(
            m == c.mae.min || m == c.mae.max,
            "{}: main {m}, ablation {:?}",
            c.city,
            c.mae
        );
    }
    // Each variant trains on other features, so its errors differ from the default's.
    for row in &s.ablation[1..] {
        let same = row
            .per_city
            .iter()
            .zip(&s.ablation[0].per_city)
            .all(|(a, b)| a.mae == b.mae);
        assert!(!same, "{} changed nothing", row.variant);
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Ablation (leave-one-city-out"));
    assert!(md.contains("| city-ranks |"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<table id=\"ablation\">"));

    // Blocks have no held-out city to compare on.
    let (code, _, stderr) = roofline(&[
        "--quiet",
        "cv",
        &cities[0],
        "-o",
        out.path().join("b").to_str().unwrap(),
        "--by",
        "blocks",
        "--ablate",
        "forest",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("leave-one-city-out"), "{stderr}");
}

/// Percentiles within the city: in [0, 1], ordered as the feature, half for the median building.
#[test]
fn city_ranks_follow_the_feature() {
    let city = plain_features("delft-5910");
    let ranked = with_city_ranks(&city);
    let area = city.column("area_m2").unwrap();
    let pct = ranked.column(&rank_name("area_m2")).unwrap();
    assert_eq!(ranked.names.len(), city.names.len() + 6);
    for i in 0..city.len() {
        assert!((0.0..=1.0).contains(&pct[i]));
        for j in 0..city.len() {
            if area[i] < area[j] {
                assert!(
                    pct[i] < pct[j],
                    "{} < {} but {} >= {}",
                    area[i],
                    area[j],
                    pct[i],
                    pct[j]
                );
            }
        }
    }
    let mean = pct.iter().sum::<f64>() / pct.len() as f64;
    assert!((mean - 0.5).abs() < 1e-9, "mean percentile {mean}");
}

/// Covariate-shift weights favour the training buildings that look like the target: with the
/// large buildings of a city as the target, large training buildings weigh far more.
#[test]
fn domain_weights_favour_buildings_like_the_target() {
    let city = plain_features("delft-5910");
    let names = select_features(&[&city], false);
    let all: Vec<usize> = (0..city.len()).collect();
    let area = city.column("area_m2").unwrap();
    // The largest 30 % of the buildings are the target.
    let mut sorted = area.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = sorted[sorted.len() * 7 / 10];
    let large: Vec<usize> = all.iter().copied().filter(|&i| area[i] > cut).collect();
    assert!(large.len() > 100, "{}", large.len());
    let train = city.matrix(&names, Some(&all)).unwrap();
    let target = city.matrix(&names, Some(&large)).unwrap();
    let w = domain_weights(&train, &target, &quick_options().gbm_params()).unwrap();
    assert_eq!(w.len(), city.len());
    let mean = |rows: &mut dyn Iterator<Item = usize>| {
        let v: Vec<f64> = rows.map(|i| w[i] as f64).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let big = mean(&mut all.iter().copied().filter(|&i| area[i] > cut));
    let small = mean(&mut all.iter().copied().filter(|&i| area[i] <= cut));
    assert!(big > 3.0 * small, "large {big:.2} vs small {small:.2}");
    let total: f64 = w.iter().map(|x| *x as f64).sum::<f64>() / w.len() as f64;
    assert!((total - 1.0).abs() < 1e-3, "weights average {total}");
    // Seeded: the same call gives the same weights.
    let again = domain_weights(&train, &target, &quick_options().gbm_params()).unwrap();
    assert_eq!(w, again);
}

/// `train_model_for` weights the training buildings toward the region: another model than the
/// unweighted one, recorded as adapted to that region.
#[test]
fn a_model_adapted_to_a_region_says_so_and_differs() {
    use roofline::model::boosting::predict_booster;
    use roofline::model::train::{train_model, train_model_for};
    let train = plain_features("delft-3dfier");
    let region = plain_features("delft-5910");
    let opts = quick_options();
    let plain = train_model(&[&train], &opts).unwrap();
    let adapted = train_model_for(&[&train], &region, &opts).unwrap();
    assert_eq!(adapted.meta.hyperparameters["adapted_to"], "delft-5910");
    assert!(plain.meta.hyperparameters.get("adapted_to").is_none());
    let all: Vec<usize> = (0..region.len()).collect();
    let x = region
        .matrix(&adapted.meta.feature_names, Some(&all))
        .unwrap();
    let a = predict_booster(&adapted.point, &x).unwrap();
    let x = region
        .matrix(&plain.meta.feature_names, Some(&all))
        .unwrap();
    let p = predict_booster(&plain.point, &x).unwrap();
    let moved = a
        .iter()
        .zip(p.iter())
        .filter(|(a, p)| (*a - *p).abs() > 0.01)
        .count();
    assert!(
        moved > region.len() / 4,
        "{moved} of {} predictions moved",
        region.len()
    );
    // A forest takes no weights: adapting it is refused.
    let forest = roofline::model::train::TrainOptions {
        kind: roofline::model::ModelKind::Forest,
        ..quick_options()
    };
    assert!(train_model_for(&[&train], &region, &forest).is_err());
}
