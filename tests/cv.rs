//! Cross-validation: leave-one-city-out on the roof-p70 cities, spatial blocks, mixed labels.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::*;
use roofline::eval::cv::{block_plan, cross_validate, fold_view, Scheme, DEFAULT_BUFFER_M};
use roofline::features::CityFeatures;
use roofline::model::train::TrainOptions;
use roofline::progress::Progress;
use roofline::render::report::write_report;
use roofline::spatial::blocks::blocks;

fn features(name: &str) -> CityFeatures {
    plain_features(name)
}

/// Leave-one-city-out on the four roof-p70 cities: each city held out once, every labelled
/// building predicted once, metrics.json recomputable from predictions.csv, and the model
/// beats the training-median baseline on at least 3 of the 4 cities.
#[test]
fn leave_one_city_out_roof_p70() {
    let names = [
        "amsterdam-centre",
        "delft-3dfier",
        "wageningen",
        "delft-5910",
    ];
    let cities: Vec<CityFeatures> = names.iter().map(|n| features(n)).collect();
    let out = cross_validate(
        &cities,
        Scheme::City,
        &TrainOptions::default(),
        &Progress::hidden(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_report(&out, &cities, dir.path()).unwrap();
    for f in [
        "metrics.json",
        "predictions.parquet",
        "predictions.csv",
        "report.md",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    // Every city held out exactly once, with all its ok-labelled buildings, each once.
    let mut folds_of: BTreeMap<String, HashSet<i64>> = BTreeMap::new();
    let table = roofline::io::output::read_table(&dir.path().join("predictions.csv")).unwrap();
    let city = table.column("city").unwrap().as_strings();
    let id = table.column("id").unwrap().as_strings();
    let fold = table.column("fold").unwrap().as_f64();
    for i in 0..table.n_rows() {
        folds_of
            .entry(city[i].clone())
            .or_default()
            .insert(fold[i] as i64);
    }
    assert_eq!(folds_of.len(), 4);
    let all_folds: HashSet<i64> = folds_of.values().flat_map(|f| f.iter().copied()).collect();
    assert_eq!(all_folds.len(), 4, "one fold per city");
    assert!(folds_of.values().all(|f| f.len() == 1));
    for c in &cities {
        let n_ok = c.ok_labels().iter().filter(|l| l.is_some()).count();
        let ids: Vec<&String> = (0..table.n_rows())
            .filter(|&i| city[i] == c.city)
            .map(|i| &id[i])
            .collect();
        assert_eq!(ids.len(), n_ok, "{}", c.city);
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            n_ok,
            "{}: a building predicted twice",
            c.city
        );
    }
    // metrics.json from predictions.csv, recomputed here from scratch.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    let col = |n: &str| table.column(n).unwrap().as_f64();
    let (truth, pred, lo, hi, base) = (
        col("height_m"),
        col("height_predicted_m"),
        col("height_lo_m"),
        col("height_hi_m"),
        col("baseline_m"),
    );
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in city.iter().enumerate() {
        groups.entry(c.clone()).or_default().push(i);
        groups.entry("all".into()).or_default().push(i);
    }
    let entries: Vec<&serde_json::Value> = json["per_city"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&json["pooled"]))
        .collect();
    let mut wins = 0;
    for e in entries {
        let rows = &groups[e["city"].as_str().unwrap()];
        let n = rows.len() as f64;
        let mae = rows
            .iter()
            .map(|&i| (pred[i] - truth[i]).abs())
            .sum::<f64>()
            / n;
        let rmse = (rows
            .iter()
            .map(|&i| (pred[i] - truth[i]).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let bias = rows.iter().map(|&i| pred[i] - truth[i]).sum::<f64>() / n;
        let within = rows
            .iter()
            .filter(|&&i| (pred[i] - truth[i]).abs() <= 2.5)
            .count() as f64
            / n;
        let cov = rows
            .iter()
            .filter(|&&i| truth[i] >= lo[i] && truth[i] <= hi[i])
            .count() as f64
            / n;
        let base_mae = rows
            .iter()
            .map(|&i| (base[i] - truth[i]).abs())
            .sum::<f64>()
            / n;
        let m = &e["model"];
        for (name, ours) in [
            ("mae", mae),
            ("rmse", rmse),
            ("bias", bias),
            ("within_2_5m", within),
            ("coverage", cov),
        ] {
            let theirs = m[name].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9,
                "{} {name}: {ours} vs {theirs}",
                e["city"]
            );
        }
        assert!((e["baseline"]["mae"].as_f64().unwrap() - base_mae).abs() <= 1e-9);
        assert_eq!(m["n"].as_u64().unwrap() as usize, rows.len());
        if e["city"] != "all" && mae < base_mae {
            wins += 1;
        }
    }
    assert!(
        wins >= 3,
        "the model beats the median baseline on {wins} of 4 cities"
    );
    assert_eq!(json["label"]["name"], "roof-p70");
    assert_eq!(json["model"], "gbm");
    assert!(json["hyperparameters"]["n_trees"].as_u64().is_some());
    // What the report says of the ood flag is what the recomputed numbers show, city by city.
    let ood = col("ood");
    let (mut compared, mut worse) = (0, 0);
    for c in names {
        let rows = &groups[c];
        let mae = |flag: f64| {
            let r: Vec<&usize> = rows.iter().filter(|&&i| ood[i] == flag).collect();
            (!r.is_empty()).then(|| {
                r.iter().map(|&&i| (pred[i] - truth[i]).abs()).sum::<f64>() / r.len() as f64
            })
        };
        if let (Some(o), Some(i)) = (mae(1.0), mae(0.0)) {
            compared += 1;
            worse += usize::from(o > i);
        }
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let said = format!("higher than in range in {worse} of {compared} cities");
    assert!(compared > 0 && md.contains(&said), "{said}: {md}");
}

/// Spatial blocks: a fold's training buildings never lie in its test blocks, and the
/// known-neighbour-height features a test building gets come from training labels only — never
/// its own label, never its block's.
#[test]
fn spatial_blocks_do_not_leak() {
    let city = features("delft-5910");
    let b = blocks(&city.centroids, 250.0);
    let truth = city.ok_labels();
    for fold in block_plan(&city, 250.0, 5, 100.0, 42) {
        let test_blocks: HashSet<(i64, i64)> = fold.test.iter().map(|&i| b[i]).collect();
        assert!(
            fold.train.iter().all(|i| !test_blocks.contains(&b[*i])),
            "fold {}: training building in a test block",
            fold.fold
        );
        // The buffer: no training building within 100 m of a test building.
        for &i in &fold.train {
            let c = city.centroids[i];
            let nearest = fold
                .test
                .iter()
                .map(|&j| (city.centroids[j][0] - c[0]).hypot(city.centroids[j][1] - c[1]))
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest > 100.0,
                "fold {}: training building {nearest:.0} m from a test one",
                fold.fold
            );
        }
        let view = fold_view(&city, &fold, true);
        let mean100 = view.column("known_mean_100m").unwrap();
        let n100 = view.column("known_n_100m").unwrap();
        let train: HashSet<usize> = fold.train.iter().copied().collect();
        for &i in &fold.test {
            // Brute force over the training buildings only.
            let near: Vec<f64> = fold
                .train
                .iter()
                .filter(|&&j| {
                    let (a, c) = (city.centroids[i], city.centroids[j]);
                    ((a[0] - c[0]).powi(2) + (a[1] - c[1]).powi(2)).sqrt() <= 100.0
                })
                .map(|&j| truth[j].unwrap())
                .collect();
            assert_eq!(n100[i], near.len() as f64, "building {i}");
            if !near.is_empty() {
                assert!((mean100[i] - near.iter().sum::<f64>() / near.len() as f64).abs() < 1e-9);
            } else {
                assert!(mean100[i].is_nan());
            }
            assert!(!train.contains(&i));
        }
        // Changing every test label changes no test building's known-height features.
        let mut poisoned = city.clone();
        for &i in &fold.test {
            poisoned.labels.as_mut().unwrap().rows[i].height_m = Some(999.0);
        }
        let pv = fold_view(&poisoned, &fold, true);
        for name in ["known_mean_100m", "known_idw_250m", "known_n_250m"] {
            let (x, y) = (view.column(name).unwrap(), pv.column(name).unwrap());
            for &i in &fold.test {
                assert!(
                    x[i].to_bits() == y[i].to_bits(),
                    "{name} of test building {i} uses test labels"
                );
            }
        }
    }
    // The whole block CV predicts every labelled building exactly once.
    let out = cross_validate(
        std::slice::from_ref(&city),
        Scheme::Blocks {
            size_m: 250.0,
            folds: 5,
            buffer_m: DEFAULT_BUFFER_M,
        },
        &TrainOptions {
            known_heights: true,
            ..TrainOptions::default()
        },
        &Progress::hidden(),
    )
    .unwrap();
    let ids: HashSet<&String> = out.rows.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), out.rows.len());
    assert_eq!(out.rows.len(), truth.iter().filter(|t| t.is_some()).count());
    assert!(out.summary.per_city[0].model.mae < out.summary.per_city[0].baseline.mae);
}

#[test]
fn mixed_label_definitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cities = data().join("cities");
    let (code, _, err) = roofline(&[
        "cv",
        cities.join("delft-5910.toml").to_str().unwrap(),
        cities.join("olemps-measured.toml").to_str().unwrap(),
        "-o",
        dir.path().join("r").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("roof-p70") && err.contains("eave") && err.contains("--allow-mixed-labels"),
        "{err}"
    );
    assert!(!dir.path().join("r").exists());
    // With the flag it runs, and every table of the report says so.
    let (d, o) = (features("delft-5910"), features("olemps-measured"));
    let opts = TrainOptions {
        allow_mixed_labels: true,
        alpha: None,
        ..TrainOptions::default()
    };
    let out = cross_validate(&[d, o], Scheme::City, &opts, &Progress::hidden()).unwrap();
    assert!(out.summary.mixed_labels);
    let md = roofline::render::markdown::render_markdown(&out);
    assert!(md.matches("Mixed label definitions").count() >= 3, "{md}");
}

#[test]
fn a_report_folder_named_like_a_file_is_refused() {
    // `cv -o out/cv.csv` used to make a folder called cv.csv.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cv.csv");
    let (code, _, err) = roofline(&[
        "cv",
        "--quiet",
        data().join("cities/delft-5910.toml").to_str().unwrap(),
        "--by",
        "blocks",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_clean_error(code, &err, "cv.csv");
    assert!(err.contains("report folder"), "{err}");
    assert!(!out.exists());
}
