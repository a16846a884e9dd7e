//! Cross-validation: leave-one-city-out (each city predicted by a model that never saw it) or
//! spatial-block k-fold inside each city (whole blocks held out, so a test building's
//! neighbours are never in training). Everything fitted from labels — the models, the conformal
//! calibration, the known-neighbour-height features — is refitted inside each fold from that
//! fold's training buildings only.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::metrics::{metrics, Metrics};
use super::rows::held_out_row;
pub use super::rows::{CvRow, NO_SCENARIO};
use super::scenario::{run_scenario, HeldOut, Scenario, ScenarioCity};
use crate::config::CityConfig;
use crate::config::LabelDefinition;
use crate::error::{Error, Result};
use crate::features::{neighbours, CityFeatures};
use crate::model::predict::predict_region;
use crate::model::train::{common_label, fit, select_features, training_set, TrainOptions};
use crate::progress::Progress;
use crate::spatial::blocks::block_folds;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Scheme {
    /// Leave one city out.
    City,
    /// Spatial blocks of `size_m`, `folds` folds, inside each city.
    Blocks { size_m: f64, folds: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CityMetrics {
    pub city: String,
    pub model: Metrics,
    pub baseline: Metrics,
    /// The model's metrics over buildings flagged `ood` and over the others, so the flag's
    /// meaning is measured: it should mark larger errors.
    #[serde(default)]
    pub ood: Option<Metrics>,
    #[serde(default)]
    pub in_range: Option<Metrics>,
}

/// One scenario over every held-out city.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub scenario: Scenario,
    /// As in the `scenario` column of the predictions.
    pub name: String,
    pub cities: Vec<ScenarioCity>,
    /// Metrics of the cities it applies to (scored buildings: the local labels themselves are
    /// not scored; direct estimates are).
    pub per_city: Vec<CityMetrics>,
}

/// Everything `metrics.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    pub roofline_version: String,
    pub scheme: Scheme,
    pub seed: u64,
    pub label: LabelDefinition,
    /// True when cities with different label definitions were mixed.
    pub mixed_labels: bool,
    pub cities: Vec<String>,
    pub model: crate::model::ModelKind,
    pub hyperparameters: serde_json::Value,
    pub known_heights: bool,
    /// Features used in each fold.
    pub fold_features: Vec<Vec<String>>,
    pub per_city: Vec<CityMetrics>,
    pub pooled: CityMetrics,
    /// What-if scenarios of leave-one-city-out (local data given to the held-out city).
    #[serde(default)]
    pub scenarios: Vec<ScenarioSummary>,
    /// Each feature's share of the point model's split gain, averaged over the folds (0 in a
    /// fold that did not use it), largest first.
    #[serde(default)]
    pub importance: Vec<(String, f64)>,
    pub seconds: f64,
}

/// Local-data scenarios to run with leave-one-city-out, and the cities' configs they read
/// (point clouds to degrade), in the order of the cities.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scenarios<'a> {
    pub list: &'a [Scenario],
    pub configs: &'a [CityConfig],
}

pub struct CvOutput {
    pub summary: CvSummary,
    pub rows: Vec<CvRow>,
}

/// A fold of spatial-block CV in one city: which labelled buildings train and which test.
#[derive(Clone, Debug)]
pub struct BlockFold {
    pub fold: usize,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// The folds of one city: blocks assigned to folds; labelled buildings split by their fold.
pub fn block_plan(city: &CityFeatures, size_m: f64, folds: usize, seed: u64) -> Vec<BlockFold> {
    let fold_of = block_folds(&city.centroids, size_m, folds, seed);
    let labels = city.ok_labels();
    (0..folds)
        .map(|f| BlockFold {
            fold: f,
            train: (0..city.len())
                .filter(|&i| labels[i].is_some() && fold_of[i] != f)
                .collect(),
            test: (0..city.len())
                .filter(|&i| labels[i].is_some() && fold_of[i] == f)
                .collect(),
        })
        .collect()
}

/// The city as a fold sees it: labels of test buildings hidden, known-neighbour heights
/// recomputed from the training buildings' labels only.
pub fn fold_view(city: &CityFeatures, fold: &BlockFold, known_heights: bool) -> CityFeatures {
    let mut c = city.clone();
    let train: std::collections::HashSet<usize> = fold.train.iter().copied().collect();
    if let Some(l) = &mut c.labels {
        for (i, r) in l.rows.iter_mut().enumerate() {
            if !train.contains(&i) && r.flag == crate::label::Flag::Ok {
                r.flag = crate::label::Flag::Filtered;
            }
        }
    }
    if known_heights {
        let known = neighbours::neighbour_heights(&c.centroids, &c.ok_labels());
        c.append(neighbours::names(), &known);
    }
    c
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        crate::stats::percentile::percentile_sorted(v, 50.0)
    }
}

/// Cross-validates `cities` under `scheme`.
pub fn cross_validate(
    cities: &[CityFeatures],
    scheme: Scheme,
    opts: &TrainOptions,
    progress: &Progress,
) -> Result<CvOutput> {
    cross_validate_with(cities, scheme, opts, Scenarios::default(), progress)
}

/// [`cross_validate`] plus local-data scenarios for each held-out city (leave-one-city-out).
pub fn cross_validate_with(
    cities: &[CityFeatures],
    scheme: Scheme,
    opts: &TrainOptions,
    scenarios: Scenarios<'_>,
    progress: &Progress,
) -> Result<CvOutput> {
    if !scenarios.list.is_empty() && !matches!(scheme, Scheme::City) {
        return Err(Error::invalid(
            "--sparse-lidar and --local-labels are scenarios of leave-one-city-out (--by city)",
        ));
    }
    let mut scenario_cities: Vec<Vec<ScenarioCity>> = vec![Vec::new(); scenarios.list.len()];
    let start = Instant::now();
    let refs: Vec<&CityFeatures> = cities.iter().collect();
    let label = common_label(&refs, opts.allow_mixed_labels)?;
    let mixed = label.name.starts_with("mixed");
    let mut rows = Vec::new();
    let mut fold_features = Vec::new();
    let mut fold_importance: Vec<Vec<(String, f64)>> = Vec::new();
    match scheme {
        Scheme::City => {
            if cities.len() < 2 {
                return Err(Error::invalid(
                    "leave-one-city-out needs at least two cities (use --by blocks for one)",
                ));
            }
            let bar = progress.bar(cities.len() as u64, "cv", "cities");
            for (h, held) in cities.iter().enumerate() {
                bar.set_message(held.city.clone());
                let train: Vec<&CityFeatures> = cities
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != h)
                    .map(|(_, c)| c)
                    .collect();
                let mut with_held = train.clone();
                with_held.push(held);
                // Known-neighbour heights need labels in the predicted city: never in LOCO.
                let names = select_features(&with_held, false);
                let set = training_set(&train, &names, &|_, _| true)?;
                let city_names: Vec<String> = train.iter().map(|c| c.city.clone()).collect();
                let model = fit(
                    &set,
                    &names,
                    &city_names,
                    label.clone(),
                    set.per_city(&train),
                    opts,
                )?;
                fold_importance.push(model.meta.importance.clone());
                let baseline = median(&mut set.y.to_vec());
                let test: Vec<usize> = held
                    .ok_labels()
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.is_some())
                    .map(|(i, _)| i)
                    .collect();
                let p = predict_region(&model, held)?;
                rows.extend(test.iter().map(|&i| held_out_row(held, &p, i, h, baseline)));
                let view = HeldOut {
                    city: held,
                    config: scenarios.configs.get(h),
                    predictions: &p,
                    test: &test,
                    fold: h,
                    baseline_m: baseline,
                    seed: opts.seed.wrapping_add(h as u64),
                };
                for (k, sc) in scenarios.list.iter().enumerate() {
                    let (mut r, summary) = run_scenario(sc, &view, progress)?;
                    for row in &mut r {
                        row.scenario = sc.to_string();
                    }
                    rows.extend(r);
                    scenario_cities[k].push(summary);
                }
                fold_features.push(names);
                bar.inc(1);
            }
            bar.finish_and_clear();
        }
        Scheme::Blocks { size_m, folds } => {
            if folds < 2 || size_m.is_nan() || size_m <= 0.0 {
                return Err(Error::invalid(
                    "block cross-validation needs at least 2 folds and a positive block size",
                ));
            }
            let bar = progress.bar((cities.len() * folds) as u64, "cv", "folds");
            for city in cities {
                bar.set_message(city.city.clone());
                for fold in block_plan(city, size_m, folds, opts.seed) {
                    if fold.test.is_empty() || fold.train.is_empty() {
                        bar.inc(1);
                        continue;
                    }
                    let view = fold_view(city, &fold, opts.known_heights);
                    let names = select_features(&[&view], opts.known_heights);
                    let set = training_set(&[&view], &names, &|_, _| true)?;
                    let model = fit(
                        &set,
                        &names,
                        std::slice::from_ref(&city.city),
                        label.clone(),
                        set.per_city(&[&view]),
                        opts,
                    )?;
                    fold_importance.push(model.meta.importance.clone());
                    let baseline = median(&mut set.y.to_vec());
                    let mut held = held_out_rows(&model, &view, &fold.test, fold.fold, baseline)?;
                    // Truth comes from the full city (the view hid the test labels).
                    let truth = city.ok_labels();
                    for (r, &i) in held.iter_mut().zip(&fold.test) {
                        r.truth_m = truth[i].expect("test rows are labelled");
                    }
                    rows.extend(held);
                    fold_features.push(names);
                    bar.inc(1);
                }
            }
            bar.finish_and_clear();
        }
    }
    let base = |r: &&CvRow| r.scenario == NO_SCENARIO;
    let per_city = cities
        .iter()
        .map(|c| {
            city_metrics(
                &c.city,
                rows.iter().filter(base).filter(|r| r.city == c.city),
            )
        })
        .collect();
    let pooled = city_metrics("all", rows.iter().filter(base));
    let scenario_summaries = scenarios
        .list
        .iter()
        .zip(scenario_cities)
        .map(|(sc, cs)| {
            let name = sc.to_string();
            let per_city = cs
                .iter()
                .filter(|c| c.skipped.is_none())
                .filter(|c| rows.iter().any(|r| r.scenario == name && r.city == c.city))
                .map(|c| {
                    city_metrics(
                        &c.city,
                        rows.iter()
                            .filter(|r| r.scenario == name && r.city == c.city),
                    )
                })
                .collect();
            ScenarioSummary {
                scenario: *sc,
                name,
                cities: cs,
                per_city,
            }
        })
        .collect();
    Ok(CvOutput {
        summary: CvSummary {
            roofline_version: env!("CARGO_PKG_VERSION").into(),
            scheme,
            seed: opts.seed,
            label,
            mixed_labels: mixed,
            cities: cities.iter().map(|c| c.city.clone()).collect(),
            model: opts.kind,
            hyperparameters: match opts.kind {
                crate::model::ModelKind::Gbm => serde_json::to_value(&opts.gbm),
                crate::model::ModelKind::Forest => serde_json::to_value(&opts.forest),
            }
            .map_err(|e| Error::invalid(e.to_string()))?,
            known_heights: opts.known_heights && matches!(scheme, Scheme::Blocks { .. }),
            fold_features,
            per_city,
            pooled,
            scenarios: scenario_summaries,
            importance: mean_gain_shares(&fold_importance),
            seconds: start.elapsed().as_secs_f64(),
        },
        rows,
    })
}

/// Each feature's share of its fold model's total gain, averaged over the folds, largest first.
fn mean_gain_shares(folds: &[Vec<(String, f64)>]) -> Vec<(String, f64)> {
    let mut sum: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    for fold in folds {
        let total: f64 = fold.iter().map(|(_, g)| g).sum();
        for (name, g) in fold {
            let share = if total > 0.0 { g / total } else { 0.0 };
            *sum.entry(name.as_str()).or_default() += share;
        }
    }
    let n = folds.len().max(1) as f64;
    let mut out: Vec<(String, f64)> = sum
        .into_iter()
        .map(|(k, v)| (k.to_string(), v / n))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The model's predictions for the chosen (labelled) buildings of a city.
fn held_out_rows(
    model: &crate::model::HeightModel,
    city: &CityFeatures,
    test: &[usize],
    fold: usize,
    baseline: f64,
) -> Result<Vec<CvRow>> {
    let p = predict_region(model, city)?;
    Ok(test
        .iter()
        .map(|&i| held_out_row(city, &p, i, fold, baseline))
        .collect())
}

/// Model and baseline metrics over some rows.
pub fn city_metrics<'a>(city: &str, rows: impl Iterator<Item = &'a CvRow>) -> CityMetrics {
    let rows: Vec<&CvRow> = rows.collect();
    let col = |f: fn(&CvRow) -> f64| rows.iter().map(|r| f(r)).collect::<Vec<f64>>();
    let (truth, area) = (col(|r| r.truth_m), col(|r| r.area_m2));
    let (lo, hi) = (col(|r| r.lo_m), col(|r| r.hi_m));
    let has_intervals = lo.iter().all(|v| v.is_finite());
    let (lo, hi) = if has_intervals {
        (lo, hi)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut model = metrics(&truth, &col(|r| r.predicted_m), &lo, &hi, &area);
    if !rows.is_empty() {
        let inside: Vec<&&CvRow> = rows.iter().filter(|r| !r.ood).collect();
        model.out_of_range_share = Some(1.0 - inside.len() as f64 / rows.len() as f64);
        if has_intervals && !inside.is_empty() {
            let covered = inside
                .iter()
                .filter(|r| r.truth_m >= r.lo_m && r.truth_m <= r.hi_m)
                .count();
            model.coverage_in_range = Some(covered as f64 / inside.len() as f64);
        }
    }
    let subset = |want_ood: bool| {
        let sel: Vec<&&CvRow> = rows.iter().filter(|r| r.ood == want_ood).collect();
        (!sel.is_empty()).then(|| {
            let c = |f: fn(&CvRow) -> f64| sel.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let (lo, hi) = if has_intervals {
                (c(|r| r.lo_m), c(|r| r.hi_m))
            } else {
                (Vec::new(), Vec::new())
            };
            metrics(
                &c(|r| r.truth_m),
                &c(|r| r.predicted_m),
                &lo,
                &hi,
                &c(|r| r.area_m2),
            )
        })
    };
    CityMetrics {
        city: city.into(),
        model,
        baseline: metrics(&truth, &col(|r| r.baseline_m), &[], &[], &area),
        ood: subset(true),
        in_range: subset(false),
    }
}
