//! `roofline train`, `roofline predict`, `roofline export`.

use std::path::{Path, PathBuf};

use linfa::ParamGuard;

use super::ModelArgs;
use crate::config::CityConfig;
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::features::{city_features, CityFeatures, FeatureOptions};
use crate::io::footprints::{read_attributes, KeepColumns};
use crate::io::output::{check_output_dir, check_output_file, write_table};
use crate::label::percentile::percentile_sorted;
use crate::model::boosting::Loss;
use crate::model::predict::{predict_region, Source};
use crate::model::train::{train_model, TrainOptions};
use crate::model::HeightModel;
use crate::progress::Progress;

/// Training options from the command line.
pub fn train_options(args: &ModelArgs) -> Result<TrainOptions> {
    let mut o = TrainOptions::default().with_seed(args.seed);
    o.kind = args.model;
    o.known_heights = args.known_heights;
    o.allow_mixed_labels = args.allow_mixed_labels;
    let mut gbm = crate::model::boosting::GbmParams::new().seed(args.seed);
    gbm = match args.loss.as_str() {
        "squared" => gbm,
        "huber" => gbm.loss(Loss::PseudoHuber { slope: 1.0 }),
        other => {
            return Err(Error::invalid(format!(
                "unknown loss '{other}' (squared or huber)"
            )))
        }
    };
    if let Some(t) = args.trees {
        gbm = gbm.n_trees(t);
        o.forest = crate::model::forest::ForestParams::new()
            .n_trees(t)
            .seed(args.seed)
            .check()?;
    }
    if let Some(v) = args.learning_rate {
        gbm = gbm.learning_rate(v);
    }
    if let Some(v) = args.max_leaves {
        gbm = gbm.max_leaves(v);
    }
    if args.max_depth.is_some() {
        gbm = gbm.max_depth(args.max_depth);
    }
    if let Some(v) = args.min_leaf {
        gbm = gbm.min_child_weight(v);
    }
    if let Some(v) = args.subsample {
        gbm = gbm.subsample(v);
    }
    if let Some(v) = args.colsample {
        gbm = gbm.colsample(v);
    }
    gbm = gbm.early_stopping(args.early_stopping, 0.1);
    o.gbm = gbm.check()?;
    Ok(o)
}

/// Labels and features of every config, with a bar over cities.
pub fn load_cities(
    paths: &[PathBuf],
    known_heights: bool,
    progress: &Progress,
) -> Result<Vec<CityFeatures>> {
    let configs = paths
        .iter()
        .map(CityConfig::load)
        .collect::<Result<Vec<_>>>()?;
    let bar = progress.bar(configs.len() as u64, "features", "cities");
    let mut out = Vec::new();
    for c in &configs {
        bar.set_message(c.name.clone());
        out.push(city_features(
            c,
            FeatureOptions { known_heights },
            progress,
        )?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

pub fn train(
    cities: &[PathBuf],
    output: &Path,
    args: &ModelArgs,
    progress: Progress,
) -> Result<()> {
    let opts = train_options(args)?;
    check_output_file(output, false)?;
    let features = load_cities(cities, opts.known_heights, &progress)?;
    let refs: Vec<&CityFeatures> = features.iter().collect();
    let spinner = progress.bar(1, "training", "models");
    let model = train_model(&refs, &opts)?;
    spinner.finish_and_clear();
    model.save(output)?;
    let m = &model.meta;
    println!(
        "trained {} model on label '{}' ({})",
        m.kind, m.label.name, m.label.detail
    );
    for t in &m.training {
        println!(
            "  {}: {} of {} buildings used (ok labels)",
            t.city, t.used, t.buildings
        );
    }
    println!(
        "  {} features; training error: MAE {:.2} m, RMSE {:.2} m (in-sample: optimistic — use `roofline cv`)",
        m.feature_names.len(),
        m.training_error.mae,
        m.training_error.rmse
    );
    if let Some(o) = &m.oob_error {
        println!(
            "  out-of-bag error: MAE {:.2} m, RMSE {:.2} m over {} buildings",
            o.mae, o.rmse, o.n
        );
    }
    if let Some(c) = &m.calibration {
        println!(
            "  {:.0} % intervals: conformal correction {:+.2} m ({} calibration over {})",
            100.0 * (1.0 - c.alpha),
            c.correction,
            c.method,
            c.groups.join(", ")
        );
    }
    let total: f64 = m.importance.iter().map(|(_, g)| g).sum::<f64>().max(1e-12);
    let top: Vec<String> = m
        .importance
        .iter()
        .take(8)
        .map(|(n, g)| format!("{n} {:.0}%", 100.0 * g / total))
        .collect();
    println!("  top features (gain): {}", top.join(", "));
    println!("wrote {}", output.display());
    Ok(())
}

pub fn predict(
    model_path: &Path,
    regions: &[PathBuf],
    output: &Path,
    keep: &KeepColumns,
    progress: Progress,
) -> Result<()> {
    check_output_file(output, true)?;
    let model = HeightModel::load(model_path)?;
    // The footprints' own attributes, read first so a misspelt --keep-columns fails at once.
    let mut kept = regions
        .iter()
        .map(|path| read_attributes(CityConfig::load(path)?.require_footprints()?, keep))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let known = model.meta.uses_known_heights();
    let features = load_cities(regions, known, &progress)?;
    let out_crs = Crs::common_or_wgs84(features.iter().map(|f| &f.source_crs))?;
    let mut tables = Vec::new();
    for (region, path) in features.iter().zip(regions) {
        let p = predict_region(&model, region).map_err(|e| match e {
            Error::Invalid(msg) => Error::file(path, msg),
            other => other,
        })?;
        let measured = p.source.iter().filter(|s| **s == Source::Measured).count();
        let ood = p.ood_features.iter().filter(|n| **n > 0).count();
        let mut h: Vec<f64> = p.height_m.clone();
        h.sort_by(f64::total_cmp);
        let mut w: Vec<f64> = (0..p.ids.len())
            .filter(|&i| p.source[i] == Source::Predicted)
            .map(|i| p.hi_m[i] - p.lo_m[i])
            .filter(|v| v.is_finite())
            .collect();
        w.sort_by(f64::total_cmp);
        println!(
            "{}: {} buildings, {} measured, {} predicted, {} out of the training range; median height {:.1} m{}",
            p.city,
            p.ids.len(),
            measured,
            p.ids.len() - measured,
            ood,
            if h.is_empty() { f64::NAN } else { percentile_sorted(&h, 50.0) },
            if w.is_empty() {
                String::new()
            } else {
                format!(", median 90 % interval width {:.1} m", percentile_sorted(&w, 50.0))
            }
        );
        let mut table = p.to_table(region, &out_crs)?;
        let (ids, attributes) = kept.next().expect("one per region");
        let renamed = table.join_columns(&p.ids, &ids, attributes);
        if !renamed.is_empty() {
            tracing::warn!(
                "{}: input attributes {} clash with roofline's columns; written as input_<name>",
                path.display(),
                renamed.join(", ")
            );
        }
        tables.push(table);
    }
    let table = crate::io::table::concat_union(tables)?;
    write_table(&table, output)?;
    println!(
        "wrote {} ({} rows, geometry in {})",
        output.display(),
        table.n_rows(),
        out_crs.label
    );
    Ok(())
}

pub fn export(model_path: &Path, output: &Path) -> Result<()> {
    check_output_file(output, false)?;
    let model = HeightModel::load(model_path)?;
    crate::io::output::write_text(output, &model.xgboost_json()?)?;
    println!(
        "wrote {} (XGBoost JSON, {} features, label '{}')",
        output.display(),
        model.meta.feature_names.len(),
        model.meta.label.name
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn cv(
    cities: &[PathBuf],
    output: &Path,
    by: Option<&str>,
    block_size: f64,
    folds: usize,
    args: &ModelArgs,
    progress: Progress,
) -> Result<()> {
    use crate::eval::cv::{cross_validate, Scheme};
    let scheme = match by {
        Some("city") => Scheme::City,
        Some("blocks") => Scheme::Blocks {
            size_m: block_size,
            folds,
        },
        None if cities.len() >= 2 => Scheme::City,
        None => Scheme::Blocks {
            size_m: block_size,
            folds,
        },
        Some(other) => {
            return Err(Error::invalid(format!(
                "unknown --by '{other}' (city or blocks)"
            )))
        }
    };
    let mut opts = train_options(args)?;
    check_output_dir(output)?;
    opts.known_heights = args.known_heights && matches!(scheme, Scheme::Blocks { .. });
    // Features are computed without known heights: the CV recomputes them per fold.
    let features = load_cities(cities, false, &progress)?;
    let out = cross_validate(&features, scheme, &opts, &progress)?;
    crate::eval::report::write_report(&out, &features, output)?;
    print_cv_summary(&out.summary);
    println!(
        "wrote {} (metrics.json, predictions.parquet, predictions.csv, report.md)",
        output.display()
    );
    Ok(())
}

pub fn print_cv_summary(s: &crate::eval::cv::CvSummary) {
    println!(
        "{} cross-validation, label '{}'{}:",
        match s.scheme {
            crate::eval::cv::Scheme::City => "leave-one-city-out".to_string(),
            crate::eval::cv::Scheme::Blocks { size_m, folds } =>
                format!("{size_m} m block {folds}-fold"),
        },
        s.label.name,
        if s.mixed_labels {
            " (MIXED label definitions)"
        } else {
            ""
        }
    );
    for c in s.per_city.iter().chain(std::iter::once(&s.pooled)) {
        println!(
            "  {:<18} n {:>5}  MAE {:>5.2} m (median baseline {:>5.2})  RMSE {:>5.2}  bias {:+.2}  ±2.5 m {:>5.1} %  90 % coverage {}",
            c.city,
            c.model.n,
            c.model.mae,
            c.baseline.mae,
            c.model.rmse,
            c.model.bias,
            100.0 * c.model.within_2_5m,
            c.model.coverage.map_or("–".into(), |v| format!("{:.1} %", 100.0 * v))
        );
    }
}
