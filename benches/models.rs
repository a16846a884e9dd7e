//! Training time and accuracy of roofline's boosters on real feature tables, printed as a
//! table: `cargo bench --bench models`. Also writes the exact train/test matrices to
//! `target/bench-data/` so `bench/lightgbm_compare.py` trains LightGBM on the same split.
//!
//! Splits: Périgueux by 250 m blocks (folds 1–4 train, fold 5 test; ~8 000 training rows) and
//! the roof-p70 cities leave-Amsterdam-out (train on Delft ×2 and Wageningen).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use linfa::prelude::*;
use ndarray::{Array1, Array2};
use roofline::config::CityConfig;
use roofline::features::{city_features, CityFeatures, FeatureOptions};
use roofline::model::boosting::GbmParams;
use roofline::model::ensemble::TreeEnsemble;
use roofline::model::train::select_features;
use roofline::progress::Progress;
use roofline::spatial::blocks::block_folds;

fn features(name: &str) -> CityFeatures {
    let cfg = CityConfig::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/cities")
            .join(format!("{name}.toml")),
    )
    .unwrap();
    city_features(
        &cfg,
        FeatureOptions {
            known_heights: false,
            ..Default::default()
        },
        &Progress::hidden(),
    )
    .unwrap()
}

struct Split {
    name: &'static str,
    names: Vec<String>,
    train: (Array2<f64>, Array1<f64>),
    test: (Array2<f64>, Array1<f64>),
}

fn rows(
    c: &CityFeatures,
    names: &[String],
    keep: impl Fn(usize) -> bool,
) -> (Array2<f64>, Array1<f64>) {
    let l = c.ok_labels();
    let r: Vec<usize> = (0..c.len())
        .filter(|&i| l[i].is_some() && keep(i))
        .collect();
    (
        c.matrix(names, Some(&r)).unwrap(),
        r.iter().map(|&i| l[i].unwrap()).collect(),
    )
}

fn stack(parts: Vec<(Array2<f64>, Array1<f64>)>) -> (Array2<f64>, Array1<f64>) {
    let xs: Vec<_> = parts.iter().map(|p| p.0.view()).collect();
    let ys: Vec<_> = parts.iter().map(|p| p.1.view()).collect();
    (
        ndarray::concatenate(ndarray::Axis(0), &xs).unwrap(),
        ndarray::concatenate(ndarray::Axis(0), &ys).unwrap(),
    )
}

fn write_csv(path: &Path, names: &[String], (x, y): &(Array2<f64>, Array1<f64>)) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "{},height_m", names.join(",")).unwrap();
    for (r, t) in x.rows().into_iter().zip(y) {
        let v: Vec<String> = r
            .iter()
            .map(|v| {
                if v.is_finite() {
                    format!("{v}")
                } else {
                    String::new()
                }
            })
            .collect();
        writeln!(f, "{},{t}", v.join(",")).unwrap();
    }
}

fn main() {
    let per = features("perigueux");
    let names = select_features(&[&per], false);
    let folds = block_folds(&per.centroids, 250.0, 5, 42);
    let mut splits = vec![Split {
        name: "perigueux-blocks",
        names: names.clone(),
        train: rows(&per, &names, |i| folds[i] != 4),
        test: rows(&per, &names, |i| folds[i] == 4),
    }];
    let (a, d, w, d5) = (
        features("amsterdam-centre"),
        features("delft-3dfier"),
        features("wageningen"),
        features("delft-5910"),
    );
    let names = select_features(&[&a, &d, &w, &d5], false);
    splits.push(Split {
        name: "roof-p70-leave-amsterdam-out",
        names: names.clone(),
        train: stack(vec![
            rows(&d, &names, |_| true),
            rows(&w, &names, |_| true),
            rows(&d5, &names, |_| true),
        ]),
        test: rows(&a, &names, |_| true),
    });

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&out).unwrap();
    let threads = rayon::current_num_threads();
    let p = GbmParams::new().check().unwrap();
    println!(
        "roofline gbm (hessboost): {} trees, learning rate {}, {} leaves leaf-wise, min {} per leaf, row share {}, feature share {}; {threads} threads, best of 3\n",
        p.n_trees, p.learning_rate, p.max_leaves, p.min_child_weight, p.subsample, p.colsample
    );
    println!(
        "| split | train rows | test rows | features | train seconds | 1 thread | test MAE (m) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for s in &splits {
        write_csv(
            &out.join(format!("{}-train.csv", s.name)),
            &s.names,
            &s.train,
        );
        write_csv(&out.join(format!("{}-test.csv", s.name)), &s.names, &s.test);
        let ds = Dataset::new(s.train.0.clone(), s.train.1.clone());
        let params = GbmParams::new().check().unwrap();
        let mut best = f64::INFINITY;
        let mut model = None;
        for _ in 0..3 {
            let t = Instant::now();
            let m = params.fit(&ds).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            model = Some(m);
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let single = (0..3)
            .map(|_| {
                let t = Instant::now();
                one.install(|| params.fit(&ds).unwrap());
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        let pred = model.unwrap().predict_checked(&s.test.0).unwrap();
        let mae = pred.mean_absolute_error(&s.test.1).unwrap();
        println!(
            "| {} | {} | {} | {} | {best:.3} | {single:.3} | {mae:.3} |",
            s.name,
            s.train.1.len(),
            s.test.1.len(),
            s.names.len()
        );
        json.push(serde_json::json!({
            "split": s.name,
            "seconds": best,
            "seconds_1_thread": single,
            "mae": mae,
            "threads": threads,
        }));
    }
    std::fs::write(
        out.join("roofline.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
}
