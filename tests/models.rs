//! Models, training and prediction on the shipped cities.

mod common;

use common::*;
use linfa::prelude::*;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use roofline::features::CityFeatures;
use roofline::model::boosting::GbmParams;
use roofline::model::ensemble::TreeEnsemble;
use roofline::model::intervals::IntervalModel;
use roofline::model::predict::{predict_region, Source};
use roofline::model::train::{select_features, train_model, TrainOptions};
use roofline::model::HeightModel;

fn features(name: &str) -> CityFeatures {
    plain_features(name)
}

/// A piecewise function of two features plus Gaussian-like noise (sd 1): the booster's test
/// RMSE is within 10 % of the noise; a feature missing for 20 % of rows (where the target
/// takes its own value) is routed and learned.
#[test]
fn boosting_recovers_a_known_function() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let n = 20_000;
    let sigma = 1.0;
    let mut x = Array2::<f64>::zeros((n, 3));
    let mut y = Array1::<f64>::zeros(n);
    let mut missing = vec![false; n];
    for i in 0..n {
        let (a, b, c) = (
            rng.gen_range(0.0..10.0),
            rng.gen_range(0.0..10.0),
            rng.gen_range(0.0..1.0),
        );
        let step = if a < 3.0 {
            2.0
        } else if a < 7.0 {
            8.0
        } else {
            15.0
        };
        let f_a = if rng.gen_bool(0.2) {
            missing[i] = true;
            x[[i, 0]] = f64::NAN;
            25.0
        } else {
            x[[i, 0]] = a;
            step
        };
        x[[i, 1]] = b;
        x[[i, 2]] = c;
        // Sum of 12 uniforms minus 6: approximately normal, sd 1.
        let noise: f64 = (0..12).map(|_| rng.gen_range(0.0..1.0)).sum::<f64>() - 6.0;
        y[i] = f_a + if b < 5.0 { 0.0 } else { 4.0 } + sigma * noise;
    }
    let split = 15_000;
    let train = Dataset::new(
        x.slice(ndarray::s![..split, ..]).to_owned(),
        y.slice(ndarray::s![..split]).to_owned(),
    );
    // 256 bins: the steps sit at exact values of a uniform feature, which the default 64
    // quantile bins (one per ~0.16 of `a`) can only place to within a bin.
    let model = GbmParams::new()
        .n_trees(300)
        .learning_rate(0.1)
        .max_bin(256)
        .check()
        .unwrap()
        .fit(&train)
        .unwrap();
    let xt = x.slice(ndarray::s![split.., ..]).to_owned();
    let yt = y.slice(ndarray::s![split..]).to_owned();
    let pred = model.predict(&xt);
    let rmse = pred.mean_squared_error(&yt).unwrap().sqrt();
    eprintln!("test RMSE {rmse:.4} (noise {sigma})");
    assert!(rmse <= 1.1 * sigma, "rmse {rmse}");
    let miss: Vec<usize> = (split..n).filter(|&i| missing[i]).collect();
    let mr = (miss
        .iter()
        .map(|&i| (pred[i - split] - y[i]).powi(2))
        .sum::<f64>()
        / miss.len() as f64)
        .sqrt();
    assert!(
        mr <= 1.1 * sigma,
        "rmse on rows with the feature missing: {mr}"
    );
}

/// Linear leaves extrapolate a trend past the training range, constant leaves hold it flat:
/// y = 2x on x in [0, 10] (plus a noise feature), predicted at x = 15. Inside the range both fit.
#[test]
fn linear_leaves_extrapolate_and_constant_leaves_do_not() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let n = 2000;
    let mut x = Array2::<f64>::zeros((n, 2));
    let mut y = Array1::<f64>::zeros(n);
    for i in 0..n {
        x[[i, 0]] = rng.gen_range(0.0..10.0);
        x[[i, 1]] = rng.gen_range(0.0..1.0);
        y[i] = 2.0 * x[[i, 0]];
    }
    let train = Dataset::new(x, y);
    let fit = |linear: Option<f64>| {
        GbmParams::new()
            .n_trees(100)
            .learning_rate(0.1)
            .linear_leaves(linear)
            .check()
            .unwrap()
            .fit(&train)
            .unwrap()
    };
    let probe = ndarray::array![[5.0, 0.5], [15.0, 0.5]];
    let constant = fit(None).predict(&probe);
    let linear = fit(Some(0.0)).predict(&probe);
    eprintln!(
        "at x = 5: {:.2} / {:.2}; at x = 15: {:.2} / {:.2} (constant / linear)",
        constant[0], linear[0], constant[1], linear[1]
    );
    assert!((constant[0] - 10.0).abs() < 0.5 && (linear[0] - 10.0).abs() < 0.5);
    assert!(
        constant[1] < 20.5,
        "constant leaves at x = 15: {}",
        constant[1]
    );
    assert!(linear[1] > 26.0, "linear leaves at x = 15: {}", linear[1]);
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(GbmParams::new().linear_leaves(Some(bad)).check().is_err());
    }
}

/// `max_features` bounds the features each tree draws: with 60 columns that all carry signal,
/// one 31-leaf tree splits on at most 5 of them under a bound of 5, and on more without it
/// (half of 60 drawn). Models over fewer columns than the bound sample exactly as before.
#[test]
fn trees_draw_at_most_max_features() {
    let (n, k) = (2_000, 60);
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let x = Array2::from_shape_fn((n, k), |_| rng.gen_range(0.0..1.0));
    let y: Array1<f64> = x.rows().into_iter().map(|r| r.sum()).collect();
    let data = Dataset::new(x, y);
    let used = |max: Option<usize>| {
        let m = GbmParams::new()
            .n_trees(1)
            .max_features(max)
            .check()
            .unwrap()
            .fit(&data)
            .unwrap();
        m.importance().iter().filter(|g| **g > 0.0).count()
    };
    let (bounded, free) = (used(Some(5)), used(None));
    assert!(
        (1..=5).contains(&bounded),
        "{bounded} features with a bound of 5"
    );
    assert!(free > 5, "{free} features without a bound");
    // Below the bound the share is colsample's own: 41 columns draw 20 either way.
    let p = GbmParams::new().check().unwrap();
    assert_eq!(p.tree_share(41), p.colsample);
    assert_eq!((p.tree_share(113) as f32 * 113.0) as usize, 20);
}

#[test]
fn same_seed_same_model_on_one_and_two_threads() {
    let (w, d) = (features("wageningen"), features("delft-5910"));
    let run = |threads: usize| {
        on_threads(threads, || {
            let m = train_model(&[&w, &d], &quick_options()).unwrap();
            let p = predict_region(&m, &features("delft-3dfier")).unwrap();
            (m.to_bytes().unwrap(), p.predicted_m, p.lo_m, p.hi_m)
        })
    };
    let (a, b) = (run(1), run(2));
    assert!(a.0 == b.0, "model files differ between 1 and 2 threads");
    assert_eq!(
        a.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(
        a.2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // Another seed gives another model.
    let other = train_model(&[&w, &d], &quick_options().with_seed(7)).unwrap();
    assert!(other.to_bytes().unwrap() != a.0);
}

/// Trained on Wageningen and Delft, predicting Amsterdam (a denser, taller city) beats the
/// training median; the interval's coverage there is reported.
#[test]
fn predicts_an_unseen_city_better_than_the_median() {
    let (w, d, a) = (
        features("wageningen"),
        features("delft-5910"),
        features("amsterdam-centre"),
    );
    let model = train_model(&[&w, &d], &TrainOptions::default()).unwrap();
    let p = predict_region(&model, &a).unwrap();
    let labels = a.labels.as_ref().unwrap();
    let mut train_y: Vec<f64> = w
        .ok_labels()
        .into_iter()
        .chain(d.ok_labels())
        .flatten()
        .collect();
    train_y.sort_by(f64::total_cmp);
    let med = median(&train_y);
    let (mut e_model, mut e_median, mut covered, mut n) = (0.0, 0.0, 0, 0);
    for (i, r) in labels.rows.iter().enumerate() {
        if r.flag != roofline::label::Flag::Ok {
            continue;
        }
        let truth = r.height_m.unwrap();
        assert_eq!(
            p.source[i],
            Source::Measured,
            "Amsterdam's own LiDAR is kept"
        );
        assert_eq!(p.height_m[i], truth);
        e_model += (p.predicted_m[i] - truth).abs();
        e_median += (med - truth).abs();
        n += 1;
        // Coverage of the interval the model would give without the measurement.
        let (lo, hi) = model
            .interval
            .as_ref()
            .unwrap()
            .predict(
                &roofline::model::predict::model_matrix(&model, &a)
                    .unwrap()
                    .slice(ndarray::s![i..i + 1, ..]),
            )
            .unwrap();
        if truth >= lo[0].min(p.predicted_m[i]) && truth <= hi[0].max(p.predicted_m[i]) {
            covered += 1;
        }
    }
    let (mae, base) = (e_model / n as f64, e_median / n as f64);
    eprintln!("amsterdam: MAE {mae:.2} m vs median baseline {base:.2} m; 90% interval coverage {:.1}% over {n}", 100.0 * covered as f64 / n as f64);
    assert!(mae < base, "MAE {mae} vs baseline {base}");
}

/// Périgueux split by 250 m blocks into train / calibration / test thirds: the calibrated 90 %
/// interval covers 86–94 % of the test buildings.
#[test]
fn intervals_are_calibrated_on_held_out_blocks() {
    let p = features("perigueux");
    let names = select_features(&[&p], false);
    let blocks = roofline::spatial::blocks::block_folds(&p.centroids, 250.0, 3, 11);
    let labels = p.ok_labels();
    let part = |k: usize| -> (Array2<f64>, Array1<f64>) {
        let rows: Vec<usize> = (0..p.len())
            .filter(|&i| blocks[i] == k && labels[i].is_some())
            .collect();
        (
            p.matrix(&names, Some(&rows)).unwrap(),
            rows.iter().map(|&i| labels[i].unwrap()).collect(),
        )
    };
    let (train, cal, test) = (part(0), part(1), part(2));
    let params = TrainOptions::default().gbm;
    let im =
        IntervalModel::fit_holdout(&params, 0.1, (&train.0, &train.1), (&cal.0, &cal.1)).unwrap();
    let (lo, hi) = im.predict(&test.0).unwrap();
    let covered = (0..test.1.len())
        .filter(|&i| test.1[i] >= lo[i] && test.1[i] <= hi[i])
        .count();
    let cov = covered as f64 / test.1.len() as f64;
    eprintln!(
        "perigueux: coverage {:.1}% on {} test buildings (correction {:+.2} m)",
        100.0 * cov,
        test.1.len(),
        im.calibration.correction
    );
    assert!((0.86..=0.94).contains(&cov), "coverage {cov}");
    // Our conformal quantile equals hessboost's own CQR correction on the same data.
    let d = roofline::model::matrix::to_dmatrix(&cal.0, Some(cal.1.view())).unwrap();
    let theirs = hessboost::conformal::ConformalizedQuantile::calibrate_outputs(
        &im.quantiles,
        0,
        1,
        &d,
        0.1,
    )
    .unwrap();
    assert!(
        (theirs.correction() - im.calibration.correction).abs() < 1e-5,
        "{} vs {}",
        theirs.correction(),
        im.calibration.correction
    );
}

/// A city with enough training buildings is calibrated split-conformally: one 250 m block fold
/// calibrates a quantile model fitted on the others (one quantile model instead of one per fold
/// plus a final one), and its 90 % interval still covers 85–95 % of a third of Périgueux that
/// neither fitted nor calibrated it. Below the threshold, every fold calibrates in turn.
#[test]
fn a_large_city_calibrates_on_one_held_out_block_fold() {
    let p = features("perigueux");
    let blocks = roofline::spatial::blocks::block_folds(&p.centroids, 250.0, 3, 11);
    let truth = p.ok_labels();
    let mut train = p.clone();
    for (i, r) in train.labels.as_mut().unwrap().rows.iter_mut().enumerate() {
        if blocks[i] == 2 {
            r.flag = roofline::label::Flag::Missing;
        }
    }
    let n_train = train.ok_labels().iter().flatten().count();
    let opts = |min_rows| TrainOptions {
        split_calibration_min_rows: min_rows,
        ..quick_options()
    };
    let split = train_model(&[&train], &opts(1000)).unwrap();
    let cal = split.meta.calibration.clone().unwrap();
    assert_eq!(
        cal.method,
        roofline::model::intervals::CalibrationMethod::Holdout
    );
    assert_eq!(cal.groups, ["250 m block fold 1"]);
    assert!(
        cal.n * 10 > n_train && cal.n * 10 < n_train * 4,
        "{} of {n_train} calibrate",
        cal.n
    );
    let cross = train_model(&[&train], &opts(usize::MAX)).unwrap();
    let cross_cal = cross.meta.calibration.clone().unwrap();
    assert_eq!(
        cross_cal.method,
        roofline::model::intervals::CalibrationMethod::Grouped
    );
    assert_eq!(cross_cal.n, n_train);
    let pred = predict_region(&split, &p).unwrap();
    let test: Vec<usize> = (0..p.len())
        .filter(|&i| blocks[i] == 2 && truth[i].is_some())
        .collect();
    let covered = test
        .iter()
        .filter(|&&i| {
            (pred.predicted_lo_m[i]..=pred.predicted_hi_m[i]).contains(&truth[i].unwrap())
        })
        .count();
    let cov = covered as f64 / test.len() as f64;
    eprintln!(
        "perigueux, split conformal: coverage {:.1} % over {}",
        100.0 * cov,
        test.len()
    );
    assert!(test.len() > 1000, "{}", test.len());
    assert!((0.85..=0.95).contains(&cov), "coverage {cov}");
}

#[test]
fn model_file_round_trip_and_missing_features() {
    let (w, d) = (features("wageningen"), features("delft-5910"));
    let model = train_model(&[&w, &d], &quick_options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.model");
    model.save(&path).unwrap();
    let back = HeightModel::load(&path).unwrap();
    assert_eq!(back.meta, model.meta);
    let region = features("delft-3dfier");
    let (a, b) = (
        predict_region(&model, &region).unwrap(),
        predict_region(&back, &region).unwrap(),
    );
    assert_eq!(a.predicted_m, b.predicted_m);
    assert_eq!(a.lo_m, b.lo_m);
    assert_eq!(a.hi_m, b.hi_m);
    // Trained on Wageningen alone, the model uses Landsat features Delft does not have.
    let with_imagery = train_model(&[&w], &quick_options()).unwrap();
    assert!(with_imagery
        .meta
        .feature_names
        .iter()
        .any(|n| n.starts_with("l8_")));
    let err = predict_region(&with_imagery, &region)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lacks") && err.contains("l8_"), "{err}");
    // A corrupt model file is a clear error.
    std::fs::write(&path, b"not a model").unwrap();
    let err = HeightModel::load(&path).unwrap_err().to_string();
    assert!(err.contains("m.model"), "{err}");
}

#[test]
fn forest_with_out_of_bag_error() {
    let (w, d) = (features("wageningen"), features("delft-5910"));
    let o = TrainOptions {
        kind: roofline::model::ModelKind::Forest,
        forest: roofline::model::forest::ForestParams::new()
            .n_trees(100)
            .check()
            .unwrap(),
        alpha: None,
        ..TrainOptions::default()
    };
    let m = train_model(&[&w, &d], &o).unwrap();
    let oob = m.meta.oob_error.clone().unwrap();
    eprintln!(
        "forest OOB MAE {:.2} RMSE {:.2} over {}",
        oob.mae, oob.rmse, oob.n
    );
    assert!(oob.n > 1700, "most buildings are out of bag for some tree");
    assert!(
        oob.mae > m.meta.training_error.mae,
        "out-of-bag error is the honest one"
    );
    assert!(oob.mae < 3.0, "{}", oob.mae);
}

/// CLI: train, predict to every format, the files open in GDAL with the input's CRS; export
/// to XGBoost JSON and load it in Python's xgboost with the same predictions.
#[test]
fn cli_train_predict_export() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.model");
    let cities = data().join("cities");
    let (code, out, err) = roofline(&[
        "train",
        cities.join("wageningen.toml").to_str().unwrap(),
        cities.join("delft-5910.toml").to_str().unwrap(),
        "-o",
        model.to_str().unwrap(),
        "--trees",
        "100",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("wageningen: 1376 of 1408") && out.contains("top features"),
        "{out}"
    );
    // Périgueux comes in WGS 84: predictions go back to it.
    for ext in ["gpkg", "geojson", "fgb", "parquet", "csv"] {
        let p = dir.path().join(format!("pred.{ext}"));
        let (code, _, err) = roofline(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            cities.join("perigueux.toml").to_str().unwrap(),
            "-o",
            p.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{ext}: {err}");
        let t = roofline::io::output::read_table(&p).unwrap();
        assert_eq!(t.n_rows(), 10381, "{ext}");
        for c in [
            "id",
            "height_m",
            "height_lo_m",
            "height_hi_m",
            "source",
            "ood",
            "label",
        ] {
            assert!(t.column(c).is_some(), "{ext}: no column {c}");
        }
        if ext != "csv" {
            assert_eq!(t.crs.as_ref().unwrap().label, "EPSG:4326", "{ext}");
        }
        if ["gpkg", "geojson", "fgb"].contains(&ext) {
            use gdal::vector::LayerAccess;
            let ds = gdal::Dataset::open(&p).unwrap();
            let layer = ds.layer(0).unwrap();
            assert_eq!(layer.feature_count(), 10381);
            assert_eq!(layer.spatial_ref().unwrap().auth_code().unwrap(), 4326);
        }
    }
    let json = dir.path().join("m.json");
    let (code, _, err) = roofline(&[
        "export",
        model.to_str().unwrap(),
        "--xgboost-json",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // Rust predictions for Delft's features vs xgboost's on the same matrix.
    let m = HeightModel::load(&model).unwrap();
    let region = features("delft-3dfier");
    let x = roofline::model::predict::model_matrix(&m, &region).unwrap();
    let ours = roofline::model::boosting::predict_booster(&m.point, &x).unwrap();
    let csv = dir.path().join("x.csv");
    let rows: Vec<String> = x
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    if v.is_finite() {
                        format!("{v}")
                    } else {
                        "nan".into()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    std::fs::write(&csv, rows.join("\n")).unwrap();
    let script = format!(
        "import numpy as np, xgboost as xgb\nb = xgb.Booster()\nb.load_model({:?})\nx = np.loadtxt({:?}, delimiter=',', ndmin=2)\nassert b.feature_names[:2] == ['area_m2', 'perimeter_m'], b.feature_names[:2]\np = b.predict(xgb.DMatrix(x, missing=np.nan, feature_names=b.feature_names))\nprint('\\n'.join(repr(float(v)) for v in p))\n",
        json.to_str().unwrap(),
        csv.to_str().unwrap()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "xgboost failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), region.len());
    for (i, t) in theirs.iter().enumerate() {
        assert!(
            (t - ours[[i, 0]]).abs() <= 1e-4 * t.abs().max(1.0),
            "row {i}: xgboost {t} vs roofline {}",
            ours[[i, 0]]
        );
    }
}

/// Early stopping on a validation share keeps fewer trees than the limit when more would only
/// fit noise, and the result is still a good model.
#[test]
fn early_stopping_stops() {
    let city = features("perigueux");
    let names = select_features(&[&city], false);
    let labels = city.ok_labels();
    let rows: Vec<usize> = (0..city.len()).filter(|&i| labels[i].is_some()).collect();
    let x = city.matrix(&names, Some(&rows)).unwrap();
    let y: Array1<f64> = rows.iter().map(|&i| labels[i].unwrap()).collect();
    let ds = Dataset::new(x, y);
    let params = GbmParams::new()
        .n_trees(2000)
        .learning_rate(0.1)
        .early_stopping(Some(20), 0.1)
        .check()
        .unwrap();
    let m = params.fit(&ds).unwrap();
    let rounds = m.booster.num_boost_rounds();
    eprintln!("early stopping kept {rounds} of 2000 rounds");
    assert!(rounds < 2000 && rounds > 20, "{rounds}");
    let mae = m
        .predict_checked(ds.records())
        .unwrap()
        .mean_absolute_error(ds.targets())
        .unwrap();
    assert!(mae < 2.5, "{mae}");
}
