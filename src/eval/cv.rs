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
use crate::model::local::LocalOptions;
use crate::model::predict::predict_region;
use crate::model::train::{
    common_label, features_for, fit, training_set, weigh_toward, TrainOptions,
};
use crate::progress::Progress;
use crate::spatial::blocks::{block_folds_counting, near_fold};

/// How buildings are held out (`--by`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Scheme {
    /// Leave one city out: the error a user gets in a city with no labels (needs two cities).
    City,
    /// Spatial blocks of `size_m`, `folds` folds, inside each city: the error with labels
    /// nearby, but none in the same block.
    Blocks {
        /// Block side in metres of each city's working CRS (positive).
        size_m: f64,
        /// Number of folds (at least 2).
        folds: usize,
        /// Training buildings within this distance (m) of a test block are left out of that
        /// fold's training (0: none); older metrics files without it read as 0.
        #[serde(default)]
        buffer_m: f64,
    },
}

impl Scheme {
    /// The scheme asked for (`by_city`: `Some(true)` leave-one-city-out, `Some(false)` blocks;
    /// `None`: leave-one-city-out from two cities on, else blocks), checked.
    pub fn choose(
        by_city: Option<bool>,
        cities: usize,
        size_m: f64,
        folds: usize,
        buffer_m: f64,
    ) -> Result<Scheme> {
        let scheme = if by_city.unwrap_or(cities >= 2) {
            Scheme::City
        } else {
            Scheme::Blocks {
                size_m,
                folds,
                buffer_m,
            }
        };
        scheme.check()?;
        Ok(scheme)
    }

    /// Whether folds learn from known-neighbour features when they are `wanted`: only under
    /// blocks (recomputed per fold from its training labels); a held-out city has none.
    pub fn known_heights(&self, wanted: bool) -> bool {
        wanted && matches!(self, Scheme::Blocks { .. })
    }

    /// An error when the scheme cannot run: fewer than 2 folds, a block size that is not
    /// positive, a negative buffer.
    pub fn check(&self) -> Result<()> {
        if let Scheme::Blocks {
            size_m,
            folds,
            buffer_m,
        } = *self
        {
            if folds < 2 || size_m.is_nan() || size_m <= 0.0 {
                return Err(Error::invalid(
                    "block cross-validation needs at least 2 folds and a positive block size",
                ));
            }
            if buffer_m.is_nan() || buffer_m < 0.0 {
                return Err(Error::invalid(format!(
                    "the block buffer must be 0 m or more, got {buffer_m}"
                )));
            }
        }
        Ok(())
    }
}

/// How the scheme reads in every report and summary: `leave-one-city-out`, or
/// `spatial blocks of 250 m, 5 folds inside each city, 200 m buffer`; the alternate form
/// (`{:#}`, report.md's) says how block folds are made.
impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scheme::City => f.write_str("leave-one-city-out"),
            Scheme::Blocks {
                size_m,
                folds,
                buffer_m,
            } if f.alternate() => write!(
                f,
                "spatial blocks of {size_m} m, {folds} folds inside each city (folds balanced by labelled buildings; training buildings within {buffer_m} m of a test block left out)"
            ),
            Scheme::Blocks {
                size_m,
                folds,
                buffer_m,
            } => write!(
                f,
                "spatial blocks of {size_m} m, {folds} folds inside each city, {buffer_m} m buffer"
            ),
        }
    }
}

/// Metrics of one city (or `all`, pooled) for the model and the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CityMetrics {
    /// The city's name, or `all` for the pooled metrics.
    pub city: String,
    /// The model's held-out errors.
    pub model: Metrics,
    /// The errors of predicting every building at the training buildings' median height:
    /// what the model must beat.
    pub baseline: Metrics,
    /// The model's metrics over buildings flagged `ood` and over the others, so the flag's
    /// meaning is measured: it should mark larger errors.
    #[serde(default)]
    pub ood: Option<Metrics>,
    /// The model's metrics over buildings not flagged `ood`.
    #[serde(default)]
    pub in_range: Option<Metrics>,
}

/// One scenario over every held-out city.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    /// The scenario run.
    pub scenario: Scenario,
    /// As in the `scenario` column of the predictions.
    pub name: String,
    /// What the scenario did in each held-out city (including where it did not apply).
    pub cities: Vec<ScenarioCity>,
    /// Metrics of the cities it applies to (scored buildings: the local labels themselves are
    /// not scored; direct estimates are).
    pub per_city: Vec<CityMetrics>,
}

/// Everything `metrics.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    /// The crate version that ran the cross-validation.
    pub roofline_version: String,
    /// How buildings were held out.
    pub scheme: Scheme,
    /// The training seed (blocks, subsampling, calibration folds).
    pub seed: u64,
    /// The cities' common label definition (a `mixed (...)` one when mixing was allowed).
    pub label: LabelDefinition,
    /// True when cities with different label definitions were mixed.
    pub mixed_labels: bool,
    /// The cities' names, in the order given.
    pub cities: Vec<String>,
    /// The point learner.
    pub model: crate::model::ModelKind,
    /// The point learner's hyperparameters, as JSON.
    pub hyperparameters: serde_json::Value,
    /// Whether known-neighbour heights were used (only with blocks: leave-one-city-out has no
    /// labels in the held-out city).
    pub known_heights: bool,
    /// Features used in each fold.
    pub fold_features: Vec<Vec<String>>,
    /// Metrics per city, in the order of `cities`.
    pub per_city: Vec<CityMetrics>,
    /// Metrics over every held-out building of every city (city `all`).
    pub pooled: CityMetrics,
    /// What-if scenarios of leave-one-city-out (local data given to the held-out city).
    #[serde(default)]
    pub scenarios: Vec<ScenarioSummary>,
    /// Each feature's share of the point model's split gain, averaged over the folds (0 in a
    /// fold that did not use it), largest first.
    #[serde(default)]
    pub importance: Vec<(String, f64)>,
    /// Ablation rows (leave-one-city-out, point model only), when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ablation: Vec<super::metrics::AblationRow>,
    /// Wall-clock time of the whole cross-validation.
    pub seconds: f64,
}

impl CvSummary {
    /// What the `ood` flag meant in this run, read from its numbers (not assumed): in how many
    /// cities flagged buildings were predicted worse, and covered less, than the rest.
    pub fn ood_finding(&self) -> String {
        let pairs: Vec<(&Metrics, &Metrics)> = self
            .per_city
            .iter()
            .filter_map(|c| Some((c.ood.as_ref()?, c.in_range.as_ref()?)))
            .filter(|(o, i)| o.n > 0 && i.n > 0)
            .collect();
        let intro = "A building is *out of training range* (`ood` in predictions) when one of its features lies outside the range seen in training.";
        if pairs.is_empty() {
            return format!(
                "{intro} No city here has buildings both in and out of the range to compare."
            );
        }
        let worse = pairs.iter().filter(|(o, i)| o.mae > i.mae).count();
        let covered: Vec<(f64, f64)> = pairs
            .iter()
            .filter_map(|(o, i)| Some((o.coverage?, i.coverage?)))
            .collect();
        let less = covered.iter().filter(|(o, i)| o < i).count();
        let mut text = format!(
            "{intro} Here their error was higher than in range in {worse} of {} cities",
            pairs.len()
        );
        if !covered.is_empty() {
            text.push_str(&format!(
                ", and their intervals covered less in {less} of {}",
                covered.len()
            ));
        }
        text.push_str(if worse * 2 > pairs.len() {
            ": the flag marks buildings to check first."
        } else {
            ": in these cities the flag did not single out worse predictions, so read it as \"unlike the training data\", not as \"wrong\"."
        });
        text
    }
}

/// Local-data scenarios to run with leave-one-city-out, and the cities' configs they read
/// (point clouds to degrade), in the order of the cities.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scenarios<'a> {
    /// The scenarios; empty runs none.
    pub list: &'a [Scenario],
    /// One config per city, in the order of the cities (scenarios without one are skipped
    /// for that city).
    pub configs: &'a [CityConfig],
}

/// A cross-validation's result: the summary (`metrics.json`) and every held-out prediction.
pub struct CvOutput {
    /// Metrics and settings.
    pub summary: CvSummary,
    /// One row per held-out labelled building (and per scenario), what `predictions.csv` holds.
    pub rows: Vec<CvRow>,
}

/// A fold of spatial-block CV in one city: which labelled buildings train and which test.
#[derive(Clone, Debug)]
pub struct BlockFold {
    /// Fold number, from 0.
    pub fold: usize,
    /// Indices (into the city's buildings) of the labelled buildings outside the fold.
    pub train: Vec<usize>,
    /// Indices of the labelled buildings inside the fold.
    pub test: Vec<usize>,
}

/// The buffer block CV uses unless told otherwise: the largest context radius, so no training
/// building's context window reaches into the test block's buildings' own (m).
pub const DEFAULT_BUFFER_M: f64 =
    crate::features::context::RADII[crate::features::context::RADII.len() - 1];

/// The folds of one city: blocks assigned to folds (balanced by labelled buildings); labelled
/// buildings split by their fold, training ones within `buffer_m` of a test block dropped.
pub fn block_plan(
    city: &CityFeatures,
    size_m: f64,
    folds: usize,
    buffer_m: f64,
    seed: u64,
) -> Vec<BlockFold> {
    let labels = city.ok_labels();
    let labelled: Vec<bool> = labels.iter().map(Option::is_some).collect();
    let fold_of = block_folds_counting(&city.centroids, &labelled, size_m, folds, seed);
    (0..folds)
        .map(|f| {
            let near =
                (buffer_m > 0.0).then(|| near_fold(&city.centroids, &fold_of, size_m, f, buffer_m));
            let too_near = |i: usize| near.as_ref().is_some_and(|n| n[i]);
            BlockFold {
                fold: f,
                train: (0..city.len())
                    .filter(|&i| labelled[i] && fold_of[i] != f && !too_near(i))
                    .collect(),
                test: (0..city.len())
                    .filter(|&i| labelled[i] && fold_of[i] == f)
                    .collect(),
            }
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
///
/// Every labelled (`ok`) building is predicted once by a model trained without it and without
/// its block or city; the label families must agree unless `opts.allow_mixed_labels`. Errors
/// are in metres, per city and pooled, next to the "training median" baseline.
///
/// ```
/// use roofline::config::CityConfig;
/// use roofline::eval::cv::{cross_validate, Scheme};
/// use roofline::features::{city_features, FeatureOptions};
/// use roofline::model::boosting::GbmParams;
/// use roofline::model::train::TrainOptions;
/// use roofline::progress::Progress;
/// use linfa::ParamGuard;
///
/// let city = CityConfig::load("data/cities/delft-5910.toml")?;
/// let delft = city_features(&city, FeatureOptions { known_heights: false, ..Default::default() }, &Progress::hidden())?;
/// let options = TrainOptions {
///     gbm: GbmParams::new().n_trees(100).learning_rate(0.1).check()?,
///     ..Default::default()
/// };
/// // 3 folds of 250 m blocks: whole blocks held out. No buffer here: Delft-5910 is small, and
/// // the default 200 m buffer (DEFAULT_BUFFER_M) would leave its folds little to train on.
/// let scheme = Scheme::Blocks { size_m: 250.0, folds: 3, buffer_m: 0.0 };
/// let cv = cross_validate(&[delft], scheme, &options, &Progress::hidden())?;
/// let m = &cv.summary.per_city[0];
/// assert_eq!(m.model.n, cv.rows.len());
/// assert!(m.model.n > 300, "{} held-out buildings", m.model.n);
/// // About 1.2 m, against 3.2 m for the training buildings' median height everywhere.
/// assert!(m.model.mae < 2.0, "MAE {:.2} m", m.model.mae);
/// assert!(m.model.mae < 0.6 * m.baseline.mae, "baseline MAE {:.2} m", m.baseline.mae);
/// # Ok::<(), roofline::Error>(())
/// ```
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
    scheme.check()?;
    opts.check()?;
    if !scenarios.list.is_empty() && !matches!(scheme, Scheme::City) {
        return Err(Error::invalid(
            "`sparse_lidar` and `local_labels` are scenarios of leave-one-city-out (`by` city)",
        ));
    }
    let mut scenario_cities: Vec<Vec<ScenarioCity>> = vec![Vec::new(); scenarios.list.len()];
    let start = Instant::now();
    let refs: Vec<&CityFeatures> = cities.iter().collect();
    let label = common_label(&refs, opts.allow_mixed_labels)?;
    // Cities of more than one label family (allowed by option).
    let mixed = refs
        .iter()
        .filter_map(|c| c.labels.as_ref().map(|l| &l.definition.name))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let run = Run {
        label: &label,
        opts,
        progress,
    };
    let mut folds = Folds::default();
    match scheme {
        Scheme::City => {
            leave_cities_out(cities, &run, scenarios, &mut folds, &mut scenario_cities)?
        }
        Scheme::Blocks {
            size_m,
            folds: k,
            buffer_m,
        } => blocks_within(cities, (size_m, k, buffer_m), &run, &mut folds)?,
    }
    check_every_city_scored(scheme, cities, &folds.rows)?;
    let rows = folds.rows;
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
    let scenarios = scenario_summaries(scenarios.list, scenario_cities, &rows);
    Ok(CvOutput {
        summary: CvSummary {
            roofline_version: env!("CARGO_PKG_VERSION").into(),
            scheme,
            seed: opts.seed,
            label,
            mixed_labels: mixed,
            cities: cities.iter().map(|c| c.city.clone()).collect(),
            model: opts.kind,
            hyperparameters: hyperparameters(opts)?,
            known_heights: opts.known_heights && matches!(scheme, Scheme::Blocks { .. }),
            fold_features: folds.features,
            per_city,
            pooled,
            scenarios,
            importance: mean_gain_shares(&folds.importance),
            ablation: Vec::new(),
            seconds: start.elapsed().as_secs_f64(),
        },
        rows,
    })
}

/// What the folds of either scheme add up to: held-out rows, each fold's features and gains.
#[derive(Default)]
struct Folds {
    rows: Vec<CvRow>,
    features: Vec<Vec<String>>,
    importance: Vec<Vec<(String, f64)>>,
}

/// What every fold of a run shares.
struct Run<'a> {
    label: &'a LabelDefinition,
    opts: &'a TrainOptions,
    progress: &'a Progress,
}

impl Folds {
    /// One fold's model and its training median (the baseline), the step both schemes share
    /// so they differ only in what they hold out; `toward` weighs training toward a city.
    fn fit(
        &mut self,
        train: &[&CityFeatures],
        names: Vec<String>,
        toward: Option<&CityFeatures>,
        run: &Run<'_>,
    ) -> Result<(crate::model::HeightModel, f64)> {
        let opts = run.opts;
        let mut set = training_set(train, &names, &|_, _| true)?;
        if let Some(held) = toward {
            weigh_toward(&mut set, held, opts)?;
        }
        let model = fit(&set, run.label.clone(), opts)?;
        self.importance.push(model.meta.importance.clone());
        self.features.push(names);
        Ok((model, median(&mut set.y.to_vec())))
    }
}

/// Leave-one-city-out: each city predicted by a model of the others, then its scenarios.
fn leave_cities_out(
    cities: &[CityFeatures],
    run: &Run<'_>,
    scenarios: Scenarios<'_>,
    folds: &mut Folds,
    scenario_cities: &mut [Vec<ScenarioCity>],
) -> Result<()> {
    if cities.len() < 2 {
        return Err(Error::invalid(
            "leave-one-city-out needs at least two cities (use `by` blocks for one)",
        ));
    }
    let opts = run.opts;
    let bar = run.progress.bar(cities.len() as u64, "cv", "cities");
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
        let names = features_for(&with_held, opts, false);
        let toward = opts.domain_weights.then_some(held);
        let (model, baseline) = folds.fit(&train, names, toward, run)?;
        let test: Vec<usize> = held
            .ok_labels()
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_some())
            .map(|(i, _)| i)
            .collect();
        let p = predict_region(&model, held)?;
        folds
            .rows
            .extend(test.iter().map(|&i| held_out_row(held, &p, i, h, baseline)));
        let view = HeldOut {
            city: held,
            config: scenarios.configs.get(h),
            predictions: &p,
            test: &test,
            fold: h,
            baseline_m: baseline,
            seed: opts.seed.wrapping_add(h as u64),
            anchoring: LocalOptions::for_model(&model),
        };
        for (k, sc) in scenarios.list.iter().enumerate() {
            let (mut r, summary) = run_scenario(sc, &view, run.progress)?;
            for row in &mut r {
                row.scenario = sc.to_string();
            }
            folds.rows.extend(r);
            scenario_cities[k].push(summary);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Spatial-block k-fold inside each city (block size, folds, buffer); a fold left
/// with no test or no training building is skipped, with a warning when it had tests.
fn blocks_within(
    cities: &[CityFeatures],
    (size_m, folds, buffer_m): (f64, usize, f64),
    run: &Run<'_>,
    out: &mut Folds,
) -> Result<()> {
    let opts = run.opts;
    let bar = run
        .progress
        .bar((cities.len() * folds) as u64, "cv", "folds");
    for city in cities {
        bar.set_message(city.city.clone());
        for fold in block_plan(city, size_m, folds, buffer_m, opts.seed) {
            if fold.test.is_empty() || fold.train.is_empty() {
                if !fold.test.is_empty() {
                    tracing::warn!(
                        "{}: fold {} leaves {} labelled buildings unscored: no training building lies beyond the {buffer_m} m buffer (try a smaller buffer or block size)",
                        city.city,
                        fold.fold,
                        fold.test.len()
                    );
                }
                bar.inc(1);
                continue;
            }
            let view = fold_view(city, &fold, opts.known_heights);
            let names = features_for(&[&view], opts, opts.known_heights);
            let (model, baseline) = out.fit(&[&view], names, None, run)?;
            let mut held = held_out_rows(&model, &view, &fold.test, fold.fold, baseline)?;
            // Truth comes from the full city (the view hid the test labels).
            let truth = city.ok_labels();
            for (r, &i) in held.iter_mut().zip(&fold.test) {
                r.truth_m = truth[i].expect("test rows are labelled");
            }
            out.rows.extend(held);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Block CV that scored nothing in a city would report metrics of an empty set: refused.
fn check_every_city_scored(scheme: Scheme, cities: &[CityFeatures], rows: &[CvRow]) -> Result<()> {
    if let Scheme::Blocks { buffer_m, .. } = scheme {
        if let Some(c) = cities
            .iter()
            .find(|c| !rows.iter().any(|r| r.city == c.city))
        {
            return Err(Error::invalid(format!(
                "{}: block cross-validation scored no building: with a {buffer_m} m buffer no fold keeps a training building (the city is too small for it; try `buffer` 0 or a smaller `block_size`)",
                c.city
            )));
        }
    }
    Ok(())
}

/// Metrics per scenario, over the cities it applied to and scored buildings in.
fn scenario_summaries(
    list: &[Scenario],
    cities: Vec<Vec<ScenarioCity>>,
    rows: &[CvRow],
) -> Vec<ScenarioSummary> {
    list.iter()
        .zip(cities)
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
        .collect()
}

/// The point learner's hyperparameters as JSON, so metrics.json says what was run.
fn hyperparameters(opts: &TrainOptions) -> Result<serde_json::Value> {
    match opts.kind {
        crate::model::ModelKind::Gbm => serde_json::to_value(opts.gbm_params()),
        crate::model::ModelKind::Forest => serde_json::to_value(opts.forest_params()),
    }
    .map_err(|e| Error::invalid(e.to_string()))
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
