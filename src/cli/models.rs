//! `roofline train`, `roofline predict`, `roofline export`.

use std::path::{Path, PathBuf};

use super::{
    Ablate, By, Context, CvArgs, LocalArgs, LocalLabels, ModelArgs, PredictArgs, TrainArgs,
};
use roofline::config::CityConfig;
use roofline::crs::Crs;
use roofline::error::{Error, FileKind, Result};
use roofline::eval::ablation::{ablate, Variant};
use roofline::eval::scenario::Scenario;
use roofline::features::{city_features, CityFeatures, FeatureOptions};
use roofline::io::footprints::{read_attributes, KeepColumns};
use roofline::io::output::{
    check_output_dir, check_output_file, check_output_table, output_name, write_table_with,
    TableOptions,
};
use roofline::label::sparsify::Sparsify;
use roofline::model::anchor::{Draw, Known};
use roofline::model::intervals::CalibrationMethod;
use roofline::model::params::TrainParams;
use roofline::model::predict::{
    predict_region_local, region_table, LocalData, Predictions, Source,
};
use roofline::model::train::{train_model, train_model_for, TrainOptions};
use roofline::model::HeightModel;
use roofline::progress::Progress;
use roofline::stats::percentile::percentile_sorted;

/// Training options from the command line: its flags as the library's [`TrainParams`]
/// (`no_intervals`: `train --no-intervals`).
pub fn train_options(args: &ModelArgs, no_intervals: bool) -> Result<TrainOptions> {
    TrainParams {
        model: args.model,
        seed: args.seed,
        trees: args.trees,
        learning_rate: args.learning_rate,
        max_leaves: args.max_leaves,
        max_depth: args.max_depth,
        min_leaf: args.min_leaf,
        subsample: args.subsample,
        colsample: args.colsample,
        max_features: args.max_features,
        max_bin: args.max_bin,
        linear_leaves: args.linear_leaves,
        loss: args.loss,
        early_stopping: args.early_stopping,
        known_heights: args.known_heights,
        allow_mixed_labels: args.allow_mixed_labels,
        intervals: args.intervals,
        no_intervals,
    }
    .options()
}

/// Labels and features of every config, with a bar over cities.
pub fn load_cities(
    paths: &[PathBuf],
    options: FeatureOptions,
    ctx: &Context,
) -> Result<Vec<CityFeatures>> {
    let (progress, cache) = (&ctx.progress, ctx.cache.as_ref());
    let configs = paths
        .iter()
        .map(CityConfig::load)
        .collect::<Result<Vec<_>>>()?;
    let bar = progress.bar(configs.len() as u64, "features", "cities");
    let mut out = Vec::new();
    for c in &configs {
        bar.set_message(c.name.clone());
        out.push(match cache {
            Some(cache) => cache.city_features(c, options, progress)?,
            None => city_features(c, options, progress)?,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// `roofline train`.
pub fn train(a: &TrainArgs, ctx: &Context) -> Result<()> {
    let progress = &ctx.progress;
    let (cities, output, adapt_to, args) = (
        &a.cities,
        a.output.as_path(),
        a.adapt_to.as_deref(),
        &a.model,
    );
    let opts = train_options(args, a.no_intervals)?;
    check_output_file(output, false)?;
    let features = load_cities(
        cities,
        FeatureOptions {
            known_heights: opts.known_heights,
            ..Default::default()
        },
        ctx,
    )?;
    // The region's features are read before the clock of the fit starts.
    let region = adapt_to
        .map(|r| {
            load_cities(
                &[r.to_path_buf()],
                FeatureOptions {
                    known_heights: false,
                    ..Default::default()
                },
                ctx,
            )
        })
        .transpose()?
        .and_then(|mut v| v.pop());
    let refs: Vec<&CityFeatures> = features.iter().collect();
    let spinner = progress.bar(1, "training", "models");
    let fit_start = std::time::Instant::now();
    let model = match &region {
        Some(r) => train_model_for(&refs, r, &opts)?,
        None => train_model(&refs, &opts)?,
    };
    let fit_seconds = fit_start.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    model.save(output)?;
    print_trained(&model, region.as_ref(), fit_seconds);
    println!("wrote {}", output.display());
    Ok(())
}

/// What `train` made: the training data, in-sample and out-of-bag errors (each with why it
/// flatters), the intervals' calibration and the main features.
fn print_trained(model: &HeightModel, region: Option<&CityFeatures>, fit_seconds: f64) {
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
    if let Some(r) = region {
        println!(
            "  adapted to {}: training buildings weighted by their resemblance to its {} buildings",
            r.city,
            r.len()
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
            "  out-of-bag error: MAE {:.2} m, RMSE {:.2} m over {} buildings (per building, not per block: optimistic where neighbours share heights — use `roofline cv`)",
            o.mae, o.rmse, o.n
        );
    }
    if let Some(l) = &m.level {
        println!("  {}", l.describe());
    }
    if let Some(c) = &m.calibration {
        let how = match c.method {
            CalibrationMethod::Holdout => format!(
                "split conformal on {} ({} buildings)",
                c.groups.join(", "),
                c.n
            ),
            CalibrationMethod::Grouped => format!(
                "{} calibration, {} rule, over {}",
                c.method,
                c.rule.as_str(),
                c.groups.join(", ")
            ),
        };
        println!(
            "  {:.0} % intervals: conformal correction {} ({how})",
            100.0 * (1.0 - c.alpha),
            c.correction_text(),
        );
    } else if model.interval.is_none() {
        println!(
            "  no intervals (--no-intervals): predict leaves height_lo_m and height_hi_m empty"
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
    println!("  model fitting: training {fit_seconds:.2} s (after labels and features)");
}

/// `roofline predict` of whole regions into `output`.
pub fn predict(a: &PredictArgs, output: &Path, keep: &KeepColumns, ctx: &Context) -> Result<()> {
    let progress = &ctx.progress;
    let (model_path, regions, local_args) = (a.model.as_path(), &a.regions, &a.local);
    let db = &a.db.options();
    let html = check_predict_output(output, db)?;
    let thin = local_args.sparse_lidar.map(|s| (s, local_args.seed));
    let model = HeightModel::load(model_path)?;
    // The footprints' own attributes, read first so a misspelt --keep-columns fails at once.
    let mut kept = regions
        .iter()
        .map(|path| read_attributes(CityConfig::load(path)?.require_footprints()?, keep))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let known = model.meta.uses_known_heights();
    let features = load_cities(
        regions,
        FeatureOptions {
            known_heights: known,
            ..Default::default()
        },
        ctx,
    )?;
    let out_crs = Crs::common_or_wgs84(features.iter().map(|f| &f.source_crs))?;
    let mut tables = Vec::new();
    for (region, path) in features.iter().zip(regions) {
        let cfg = CityConfig::load(path)?;
        let local = local_data(&cfg, region, local_args, thin, progress)?;
        let p = predict_region_local(&model, region, &local).map_err(|e| match e {
            Error::Invalid(msg) | Error::Model(msg) => Error::of(FileKind::Config, path, msg),
            other => other,
        })?;
        print_sources(&p);
        warn_if_mostly_ood(&p);
        say_the_level(&model, region, &p);
        print_heights(&p);
        let (ids, attributes) = kept.next().expect("one per region");
        tables.push(region_output(
            &p,
            region,
            &out_crs,
            path,
            (ids, attributes),
        )?);
    }
    let table = roofline::io::table::concat_union(tables)?;
    if html {
        return super::report::write_map(&table, output);
    }
    write_table_with(&table, output, db)?;
    println!(
        "wrote {} ({} rows, geometry in {})",
        output_name(output, db),
        table.n_rows(),
        out_crs.label
    );
    Ok(())
}

/// The region's output rows ([`region_table`]), with a warning naming clashing attributes.
fn region_output(
    p: &Predictions,
    region: &CityFeatures,
    out_crs: &Crs,
    path: &Path,
    attributes: (Vec<String>, Vec<roofline::io::table::Column>),
) -> Result<roofline::io::table::Table> {
    let (table, renamed) = region_table(p, region, out_crs, attributes)?;
    if !renamed.is_empty() {
        tracing::warn!(
            "{}: input attributes {} clash with roofline's columns; written as input_<name>",
            path.display(),
            renamed.join(", ")
        );
    }
    Ok(table)
}

/// Refuses an output `predict` cannot write before any work; true for an HTML map.
fn check_predict_output(output: &Path, db: &TableOptions) -> Result<bool> {
    let html = super::report::is_html(output);
    if html {
        if db.table.is_some() || db.overwrite {
            return Err(Error::of(
                FileKind::Output,
                output,
                "--table and --overwrite are for database outputs (-o PG:dbname=...)",
            ));
        }
        check_output_file(output, false)?;
    } else {
        if roofline::io::output::Format::from_path(output).is_err() {
            return Err(Error::of(
                FileKind::Output,
                output,
                format!(
                    "unknown output format (use {}, .html for a 3D map, or PG:dbname=... with --table)",
                    roofline::io::output::TABLE_FORMATS
                ),
            ));
        }
        check_output_table(output, db)?;
    }
    Ok(html)
}

/// The region's local data as the flags ask: its sparse-LiDAR estimates and measured
/// buildings (both off with `--no-recalibrate`).
fn local_data(
    cfg: &CityConfig,
    region: &CityFeatures,
    local_args: &LocalArgs,
    thin: Option<(Sparsify, u64)>,
    progress: &Progress,
) -> Result<LocalData> {
    roofline::model::predict::local_data(
        cfg,
        region,
        !local_args.no_recalibrate,
        thin,
        local_args.local_labels.map(|reveal| Known {
            reveal,
            draw: local_args.local_draw,
            seed: local_args.seed,
        }),
        progress,
    )
}

/// Where the region's heights came from, and the recalibration used.
fn print_sources(p: &Predictions) {
    let count = |s: Source| p.source.iter().filter(|x| **x == s).count();
    println!(
        "{}: {} measured{}{}, {} measured directly from sparse LiDAR, {} predicted with local recalibration, {} predicted from other cities{}",
        p.city,
        count(Source::Measured),
        match count(Source::Survey) {
            0 => String::new(),
            n => format!(", {n} surveyed"),
        },
        match (count(Source::OsmHeight), count(Source::OsmLevels)) {
            (0, 0) => String::new(),
            (h, l) => format!(", {h} from OpenStreetMap height tags, {l} from OpenStreetMap storeys"),
        },
        count(Source::SparseLidar),
        count(Source::Recalibrated),
        count(Source::Predicted),
        p.local.as_ref().map_or(String::new(), |l| format!(
            " (recalibration on {} known buildings: {}, {})",
            l.known,
            l.map_text(),
            l.interval_text()
        ))
    );
}

/// Warns when most buildings predicted from other cities alone lie outside the training
/// range: cross-validation showed such cities biased, with intervals covering too little.
fn warn_if_mostly_ood(p: &Predictions) {
    let alone = p.source.iter().filter(|x| **x == Source::Predicted).count();
    let ood_alone = (0..p.ids.len())
        .filter(|&i| p.source[i] == Source::Predicted && p.ood_features[i] > 0)
        .count();
    if alone > 0 && ood_alone * 2 > alone {
        tracing::warn!(
            "{}: {} of {} buildings predicted from other cities alone lie outside the training range: in leave-one-city-out tests such cities were predicted with a city-wide bias and 90 % intervals that covered as little as 55 %; a few measured buildings (labels or a sparse survey in the config) let predict recalibrate",
            p.city, ood_alone, alone
        );
    }
}

/// For a model with a city level and a region with no height of its own: the level it was
/// given and how far off such a level was for the training cities, in one line — the level
/// of a city cannot be read from footprints alone, and a few measured buildings fix it.
fn say_the_level(model: &HeightModel, region: &CityFeatures, p: &Predictions) {
    let (Some(level), Some(log_level)) = (&model.meta.level, model.region_log_level(region)) else {
        return;
    };
    if p.source.iter().any(|s| *s != Source::Predicted) {
        return;
    }
    let (lo, hi) = level.log_level_range();
    let (lo, hi) = (lo.exp(), hi.exp());
    // The structure narrowed by the spread cap, said so that a flat-looking result is explained.
    let narrowed = match p.level {
        Some(r) if r.weight < level.structure_weight - 1e-9 => format!(
            "; the structure weighted {:.2} instead of {:.2}, since the region's footprints are alike (spread cap)",
            r.weight, level.structure_weight
        ),
        _ => String::new(),
    };
    println!(
        "{}: no known heights, so the height level is estimated: {:.1} m ({}; training cities {lo:.1}–{hi:.1} m, off by ×{:.2} on average for a city left out{narrowed}); about 20 known heights spread over the region anchor it (in leave-one-city-out they took Tokyo Chiyoda from 14.0 to 9.2 m MAE, 2 % of a city to within 1.3× of its own block CV): OpenStreetMap tags ([label] source = \"osm\"), a file of surveyed heights ([label] source = \"survey\"), a [label] field that some rows carry, or sparse LiDAR in [lidar]",
        p.city,
        log_level.exp(),
        level
            .descriptor
            .as_ref()
            .map_or("the training cities' mean".to_string(), |d| format!("from its median {d}")),
        level.loo_error.exp()
    );
}

/// The region's median height and median interval width, a first check of the result.
fn print_heights(p: &Predictions) {
    let mut h: Vec<f64> = p.height_m.clone();
    h.sort_by(f64::total_cmp);
    let mut w: Vec<f64> = (0..p.ids.len())
        .filter(|&i| matches!(p.source[i], Source::Predicted | Source::Recalibrated))
        .map(|i| p.hi_m[i] - p.lo_m[i])
        .filter(|v| v.is_finite())
        .collect();
    w.sort_by(f64::total_cmp);
    println!(
        "{}: {} buildings, {} out of the training range; median height {:.1} m{}",
        p.city,
        p.ids.len(),
        p.ood_features.iter().filter(|n| **n > 0).count(),
        if h.is_empty() {
            f64::NAN
        } else {
            percentile_sorted(&h, 50.0)
        },
        if w.is_empty() {
            String::new()
        } else {
            format!(
                ", median 90 % interval width {:.1} m",
                percentile_sorted(&w, 50.0)
            )
        }
    );
}

pub fn export(
    model_path: &Path,
    output: &Path,
    region: Option<&Path>,
    ctx: &Context,
) -> Result<()> {
    check_output_file(output, false)?;
    let model = HeightModel::load(model_path)?;
    let level = match (&model.meta.level, region) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Error::of(
                FileKind::Model,
                model_path,
                "the model predicts ln(height) above a city's level: name the region it will predict with --region REGION.toml",
            ))
        }
        (Some(_), Some(r)) => {
            let features = load_cities(
                &[r.to_path_buf()],
                FeatureOptions {
                    known_heights: false,
                    ..Default::default()
                },
                ctx,
            )?;
            model.region_level(&features[0])?
        }
    };
    roofline::io::output::write_text(output, &model.xgboost_json(level)?)?;
    println!(
        "wrote {} (XGBoost JSON, {} features, label '{}'{})",
        output.display(),
        model.meta.feature_names.len(),
        model.meta.label.name,
        match level {
            Some(l) => format!(
                "; height = exp({:.4} + {:.2} × output), attributes roofline_log_level and roofline_structure_weight",
                l.log_level, l.weight
            ),
            None => String::new(),
        }
    );
    Ok(())
}

/// The scenarios of `--sparse-lidar` and `--local-labels`, in that order.
pub fn scenarios(
    sparse_lidar: &[Sparsify],
    local_labels: &[LocalLabels],
    draw: Draw,
) -> Vec<Scenario> {
    let sparse = sparse_lidar
        .iter()
        .map(|&sparsify| Scenario::SparseLidar { sparsify });
    let local = local_labels.iter().map(|l| Scenario::LocalLabels {
        known: l.known,
        draw: l.draw.unwrap_or(draw),
    });
    sparse.chain(local).collect()
}

/// The ablation variants asked for (each once, `all` expanded) and their seeds.
pub fn ablation(asked: &[Ablate], seeds: u64, first_seed: u64) -> Result<(Vec<Variant>, Vec<u64>)> {
    let mut variants = Vec::new();
    for a in asked {
        let add: Vec<Variant> = match a {
            Ablate::All => Variant::ALL.to_vec(),
            Ablate::One(v) => vec![*v],
        };
        for v in add {
            if !variants.contains(&v) {
                variants.push(v);
            }
        }
    }
    if !variants.is_empty() && seeds == 0 {
        return Err(Error::invalid("--ablation-seeds must be at least 1"));
    }
    Ok((
        variants,
        (0..seeds).map(|k| first_seed.wrapping_add(k)).collect(),
    ))
}

/// `roofline cv`.
pub fn cv(a: &CvArgs, ctx: &Context) -> Result<()> {
    let progress = &ctx.progress;
    let scenario_list = &scenarios(&a.sparse_lidar, &a.local_labels, a.local_draw);
    let (variants, seeds) = &ablation(&a.ablate, a.ablation_seeds, a.model.seed)?;
    let (cities, output, args) = (&a.cities, a.output.as_path(), &a.model);
    let (by, block_size, folds, buffer) = (a.by, a.block_size, a.folds, a.buffer);
    use roofline::eval::cv::{cross_validate_with, Scenarios, Scheme};
    // A scheme that cannot run stops before any city's features are computed.
    let scheme = Scheme::choose(
        by.map(|b| b == By::City),
        cities.len(),
        block_size,
        folds,
        buffer,
    )?;
    if !variants.is_empty() && !matches!(scheme, Scheme::City) {
        return Err(Error::invalid(
            "--ablate compares variants under leave-one-city-out (--by city)",
        ));
    }
    let mut opts = train_options(args, false)?;
    check_output_dir(output)?;
    opts.known_heights = scheme.known_heights(args.known_heights);
    // Features are computed without known heights: the CV recomputes them per fold.
    let features = load_cities(
        cities,
        FeatureOptions {
            known_heights: false,
            wide_context: variants.contains(&Variant::WideContext),
        },
        ctx,
    )?;
    let configs = cities
        .iter()
        .map(CityConfig::load)
        .collect::<Result<Vec<_>>>()?;
    let scenarios = Scenarios {
        list: scenario_list,
        configs: &configs,
    };
    let mut out = cross_validate_with(&features, scheme, &opts, scenarios, progress)?;
    if !variants.is_empty() {
        out.summary.ablation = ablate(&features, variants, seeds, &opts, progress)?;
    }
    roofline::render::report::write_report(&out, &features, output)?;
    print_cv_summary(&out.summary);
    println!(
        "wrote {} (metrics.json, predictions.parquet, predictions.csv, report.md, report.html)",
        output.display()
    );
    Ok(())
}

pub fn print_cv_summary(s: &roofline::eval::cv::CvSummary) {
    println!(
        "cross-validation ({}), label '{}'{}:",
        s.scheme,
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
    for sc in &s.scenarios {
        println!("  scenario {}:", sc.name);
        for c in &sc.cities {
            if let Some(why) = &c.skipped {
                println!("    {:<16} skipped: {why}", c.city);
                continue;
            }
            let Some(m) = sc.per_city.iter().find(|m| m.city == c.city) else {
                continue;
            };
            let pts = if c.points_full > 0 {
                format!(
                    ", {} of {} points kept, {} measured directly",
                    c.points_kept, c.points_full, c.direct
                )
            } else {
                String::new()
            };
            println!(
                "    {:<16} n {:>5}  MAE {:>5.2} m  bias {:+.2}  90 % coverage {} (median width {}), {} known{pts}",
                c.city,
                m.model.n,
                m.model.mae,
                m.model.bias,
                m.model.coverage.map_or("–".into(), |v| format!("{:.1} %", 100.0 * v)),
                m.model.median_interval_width.map_or("–".into(), |v| format!("{v:.1} m")),
                c.known,
            );
        }
    }
}
