//! Training stage: from cities' feature tables to a [`HeightModel`] — checks that label
//! definitions agree, picks the features every training city has, fits the point model, the
//! quantile model and the conformal calibration.

use linfa::traits::Fit;
use linfa::Dataset;
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::boosting::{predict_booster, GbmParams, GbmValidParams};
use super::forest::{ForestParams, ForestValidParams};
use super::intervals::{Grouping, IntervalModel, IntervalRule};
use super::level::{self, CityLevel, LevelModel};
use super::{
    ErrorSummary, HeightModel, ModelKind, ModelMeta, TrainingCity, FORMAT_VERSION, WORKING_CRS_RULE,
};
use crate::config::LabelDefinition;
use crate::error::{Error, Result};
use crate::features::{describe, CityFeatures, Group};
use crate::spatial::blocks::block_folds;
use linfa::ParamGuard;

/// How to train: the learner and its hyperparameters, intervals, and which features to use.
/// The default is roofline's: boosting, 90 % intervals, no known heights, seed 42.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The point learner.
    pub kind: ModelKind,
    /// Boosting hyperparameters: the point model's when `kind` is `Gbm`, and always the
    /// quantile models'.
    pub gbm: GbmValidParams,
    /// Forest hyperparameters, used when `kind` is `Forest`.
    pub forest: ForestValidParams,
    /// Miscoverage of the prediction interval (0.1: 90 % intervals); `None`: no intervals.
    pub alpha: Option<f64>,
    /// Use known-neighbour-height features (for regions where some buildings are measured).
    pub known_heights: bool,
    /// Train on cities whose label definitions differ.
    pub allow_mixed_labels: bool,
    /// Block size (m) and folds for calibrating intervals when there is only one city.
    pub calibration_block_m: f64,
    /// Number of block folds for single-city calibration (at least 2 are used).
    pub calibration_folds: usize,
    /// From this many training buildings of a single city on, intervals are calibrated on one
    /// block fold held out (split conformal: one quantile model, on the other folds) instead
    /// of each fold in turn plus a final model on all rows (cross-conformal: folds + 1 quantile
    /// models). See [`SPLIT_CALIBRATION_MIN_ROWS`].
    pub split_calibration_min_rows: usize,
    /// How held-out cities' conformity scores combine into the interval correction (blocks of
    /// a single city are always pooled: they are exchangeable).
    pub interval_rule: IntervalRule,
    /// Seed of the calibration folds; set it with [`TrainOptions::with_seed`] so the learners'
    /// seeds follow.
    pub seed: u64,
    /// Also learn from the district-scale context (0.5–1 km windows), where the cities'
    /// features have it ([`crate::features::FeatureOptions::wide_context`]). An experiment of
    /// `cv --ablate`: not offered by `train`, since `predict` and tiled runs do not compute it.
    pub wide_context: bool,
    /// Under leave-one-city-out, weight training buildings by how much they resemble the
    /// held-out city's ([`super::domain::domain_weights`]; gbm only).
    pub domain_weights: bool,
    /// How a city's height level is handled ([`super::level`]).
    pub level: LevelMode,
    /// Cap the structure weight where a city's footprints say its heights are tight
    /// ([`level::SpreadCap`]; on by default, `cv --ablate no-spread-cap` measures without it).
    /// Applies only where the structure weight is chosen by nested leave-one-city-out.
    pub spread_cap: bool,
}

/// How the model treats the height level of a city (`cv --ablate` compares them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LevelMode {
    /// Trees learn absolute heights (roofline before the roof-top cities; always with fewer
    /// than [`level::MIN_CITIES`] training cities, or a relative loss).
    Absolute,
    /// Trees learn ln(height) above the city's median; a new city's level is the training
    /// cities' mean, the structure weighted by nested leave-one-city-out.
    MeanLevel,
    /// As `MeanLevel`, the level read from a city-wide descriptor when that predicted the
    /// training cities' levels better (the default).
    #[default]
    CityLevel,
    /// As `CityLevel` with the structure at full weight (no nested choice).
    FullStructure,
}

/// Default [`TrainOptions::split_calibration_min_rows`]. A small city needs every fold in turn
/// to have enough calibration buildings, but at 20 000 buildings one fold holds ~4 000, which
/// pins the 90 % conformal quantile to within about half a point of coverage; cross-conformal
/// then only costs time: at 100 000 buildings its six quantile models were 35 of 40 s of
/// training. No shipped city reaches it, so their models do not change.
pub const SPLIT_CALIBRATION_MIN_ROWS: usize = 20_000;

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            kind: ModelKind::Gbm,
            gbm: GbmParams::default().check().expect("defaults are valid"),
            forest: ForestParams::default().check().expect("defaults are valid"),
            alpha: Some(0.1),
            known_heights: false,
            allow_mixed_labels: false,
            calibration_block_m: 250.0,
            calibration_folds: 5,
            split_calibration_min_rows: SPLIT_CALIBRATION_MIN_ROWS,
            interval_rule: IntervalRule::default(),
            seed: 42,
            wide_context: false,
            domain_weights: false,
            level: LevelMode::default(),
            spread_cap: true,
        }
    }
}

impl TrainOptions {
    /// An error naming the first option that cannot be used: a miscoverage outside (0, 1), a
    /// calibration block size that is not positive. The learners' hyperparameters were checked
    /// when built ([`GbmParams`], [`ForestParams`]).
    pub fn check(&self) -> Result<()> {
        if let Some(a) = self.alpha {
            if !(a > 0.0 && a < 1.0) {
                return Err(Error::invalid(format!(
                    "interval miscoverage `alpha` must be in (0, 1), got {a}"
                )));
            }
        }
        if !(self.calibration_block_m.is_finite() && self.calibration_block_m > 0.0) {
            return Err(Error::invalid(format!(
                "`calibration_block_m` must be a positive number of metres, got {}",
                self.calibration_block_m
            )));
        }
        Ok(())
    }

    /// Sets the seed of every random choice (subsampling, bootstrap, folds).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The gbm hyperparameters with [`TrainOptions::seed`]: the options' seed is the one
    /// source, whatever seed `gbm` was built with.
    pub fn gbm_params(&self) -> GbmValidParams {
        let mut p = self.gbm.clone();
        p.seed = self.seed;
        p
    }

    /// The forest hyperparameters with [`TrainOptions::seed`].
    pub fn forest_params(&self) -> ForestValidParams {
        let mut p = self.forest.clone();
        p.seed = self.seed;
        p
    }
}

/// The label definition shared by all cities; an error naming both definitions when they
/// differ (unless mixing is allowed, then the first city's with a note).
pub fn common_label(cities: &[&CityFeatures], allow_mixed: bool) -> Result<LabelDefinition> {
    let mut defs: Vec<(String, LabelDefinition)> = Vec::new();
    for c in cities {
        let l = c.labels.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "city '{}' has no labels (its config has no [label])",
                c.city
            ))
        })?;
        defs.push((c.city.clone(), l.definition.clone()));
    }
    let first = defs
        .first()
        .ok_or_else(|| Error::invalid("no cities given"))?
        .clone();
    if let Some((city, other)) = defs.iter().find(|(_, d)| d.name != first.1.name) {
        if !allow_mixed {
            return Err(Error::invalid(format!(
                "label definitions differ: '{}' ({}: {}) vs '{}' ({city}: {}); set `allow_mixed_labels` to mix them",
                first.1.name, first.0, first.1.detail, other.name, other.detail
            )));
        }
        let names: Vec<String> = defs
            .iter()
            .map(|(c, d)| format!("{c}: {}", d.name))
            .collect();
        return Ok(LabelDefinition {
            name: format!("mixed ({})", names.join(", ")),
            detail: defs
                .iter()
                .map(|(c, d)| format!("{c}: {}", d.detail))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(first.1)
}

/// Features every city has, in the first city's order; known-neighbour heights only when
/// asked for; features missing for every building left out. The district-scale context
/// ([`crate::features::wide_context`]) is left out: [`features_for`] takes it when asked.
pub fn select_features(cities: &[&CityFeatures], known_heights: bool) -> Vec<String> {
    select(cities, known_heights, false)
}

/// [`select_features`] as `opts` asks: known-neighbour heights when `known_heights`, the
/// district-scale context when [`TrainOptions::wide_context`].
pub fn features_for(
    cities: &[&CityFeatures],
    opts: &TrainOptions,
    known_heights: bool,
) -> Vec<String> {
    select(cities, known_heights, opts.wide_context)
}

fn select(cities: &[&CityFeatures], known_heights: bool, wide: bool) -> Vec<String> {
    let Some(first) = cities.first() else {
        return Vec::new();
    };
    let wide_names = crate::features::wide_context::names();
    first
        .names
        .iter()
        .filter(|n| known_heights || describe(n).group != Group::KnownHeights)
        .filter(|n| wide || !wide_names.contains(n))
        .filter(|n| cities.iter().all(|c| c.names.contains(n)))
        .filter(|n| {
            cities
                .iter()
                .any(|c| c.column(n).is_some_and(|v| v.iter().any(|x| x.is_finite())))
        })
        .cloned()
        .collect()
}

/// Labelled training rows of several cities: features, heights and the city index per row.
pub struct TrainingSet {
    /// Buildings × features, in the order of the names the set was built with; NaN = missing.
    pub x: Array2<f64>,
    /// The `ok` label heights (m), one per row.
    pub y: Array1<f64>,
    /// Index (into the cities passed) of each row's city; calibration groups by it.
    pub city_of_row: Vec<usize>,
    /// Each row's centroid in its city's working CRS (m), for block folds. Only comparable
    /// within one city.
    pub centroids: Vec<[f64; 2]>,
    /// A weight per row for the point model (`None`: all equal), e.g. from
    /// [`super::domain::domain_weights`]; intervals are calibrated unweighted.
    pub weights: Option<Vec<f32>>,
    /// Per city (indexed like `city_of_row`): its [`level::descriptors`], from all its
    /// buildings.
    pub descriptors: Vec<Vec<Option<f64>>>,
    /// The features, one per column of `x`: [`training_set`] fills them with the matrix, so
    /// [`fit`] takes the names from the set rather than from its caller.
    pub names: Vec<String>,
    /// Per city (indexed like `city_of_row`): its name, buildings and how many it contributed.
    pub cities: Vec<TrainingCity>,
    /// Per city (indexed like `city_of_row`): its [`level::area_spread`], from all its
    /// buildings.
    pub area_spreads: Vec<Option<f64>>,
}

/// Every building with an `ok` label (and `keep(city, building)`), in city order.
pub fn training_set(
    cities: &[&CityFeatures],
    names: &[String],
    keep: &dyn Fn(usize, usize) -> bool,
) -> Result<TrainingSet> {
    let mut blocks = Vec::new();
    let mut y = Vec::new();
    let mut city_of_row = Vec::new();
    let mut centroids = Vec::new();
    for (ci, c) in cities.iter().enumerate() {
        let labels = c.ok_labels();
        let rows: Vec<usize> = (0..c.len())
            .filter(|&i| labels[i].is_some() && keep(ci, i))
            .collect();
        blocks.push(c.matrix(names, Some(&rows))?);
        y.extend(rows.iter().map(|&i| labels[i].expect("filtered")));
        city_of_row.extend(std::iter::repeat_n(ci, rows.len()));
        centroids.extend(rows.iter().map(|&i| c.centroids[i]));
    }
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    let x = ndarray::concatenate(ndarray::Axis(0), &views)
        .map_err(|e| Error::invalid(e.to_string()))?;
    Ok(TrainingSet {
        x,
        y: Array1::from(y),
        weights: None,
        descriptors: cities.iter().map(|c| level::descriptors(c)).collect(),
        names: names.to_vec(),
        area_spreads: cities.iter().map(|c| level::area_spread(c)).collect(),
        cities: cities
            .iter()
            .enumerate()
            .map(|(ci, c)| TrainingCity {
                city: c.city.clone(),
                buildings: c.len(),
                used: city_of_row.iter().filter(|&&k| k == ci).count(),
            })
            .collect(),
        city_of_row,
        centroids,
    })
}

/// Trains a height model on the labelled buildings of `cities`: the public entry point, which
/// checks that the label families agree, picks the features all cities share and calls [`fit`].
///
/// ```
/// use roofline::config::CityConfig;
/// use roofline::features::{city_features, FeatureOptions};
/// use roofline::model::boosting::GbmParams;
/// use roofline::model::train::{train_model, TrainOptions};
/// use roofline::progress::Progress;
/// use linfa::ParamGuard;
///
/// // Delft tile 5910: 3DBAG roof-p70 heights as a footprint attribute.
/// let city = CityConfig::load("data/cities/delft-5910.toml")?;
/// let delft = city_features(&city, FeatureOptions { known_heights: false, ..Default::default() }, &Progress::hidden())?;
/// let options = TrainOptions {
///     gbm: GbmParams::new().n_trees(100).learning_rate(0.1).check()?,
///     ..Default::default()
/// };
/// let model = train_model(&[&delft], &options)?;
/// assert_eq!(model.meta.label.name, "roof-p70");
/// assert!(model.meta.feature_names.contains(&"area_m2".to_string()));
/// // Training error is optimistic (about 0.04 m here), but a model that learnt nothing, the
/// // median height for every building, would be about 3 m off.
/// let e = &model.meta.training_error;
/// assert!(e.n > 300 && e.mae < 1.0, "training MAE {:.2} m on {}", e.mae, e.n);
/// // A single city: intervals calibrated on 250 m blocks left out in turn.
/// let calibration = model.meta.calibration.as_ref().unwrap();
/// assert_eq!(calibration.alpha, 0.1);
/// # Ok::<(), roofline::Error>(())
/// ```
pub fn train_model(cities: &[&CityFeatures], opts: &TrainOptions) -> Result<HeightModel> {
    let label = common_label(cities, opts.allow_mixed_labels)?;
    let names = features_for(cities, opts, opts.known_heights);
    if names.is_empty() {
        return Err(Error::invalid("the training cities share no feature"));
    }
    let set = training_set(cities, &names, &|_, _| true)?;
    fit(&set, label, opts)
}

/// [`train_model`] for one region to predict: each training building weighs by how much it
/// resembles the region's buildings ([`super::domain::domain_weights`]; gbm only). Under
/// leave-one-city-out this lowered the mean error over the six shipped cities from 2.83 to
/// 2.79 m (seeds 1–3), no city worse by more than 3 %. The model records the region as
/// `adapted_to` in its hyperparameters: it is meant for that region.
pub fn train_model_for(
    cities: &[&CityFeatures],
    region: &CityFeatures,
    opts: &TrainOptions,
) -> Result<HeightModel> {
    if opts.kind != crate::model::ModelKind::Gbm {
        return Err(Error::invalid(
            "adapting to a region weights the training buildings, which only gbm uses",
        ));
    }
    let label = common_label(cities, opts.allow_mixed_labels)?;
    let mut with_region = cities.to_vec();
    with_region.push(region);
    let names = features_for(&with_region, opts, opts.known_heights);
    if names.is_empty() {
        return Err(Error::invalid(
            "the training cities and the region share no feature",
        ));
    }
    let mut set = training_set(cities, &names, &|_, _| true)?;
    weigh_toward(&mut set, region, opts)?;
    let mut model = fit(&set, label, opts)?;
    if let Some(h) = model.meta.hyperparameters.as_object_mut() {
        h.insert("adapted_to".into(), region.city.clone().into());
    }
    Ok(model)
}

/// Sets `set`'s row weights from the resemblance of its rows to `region`'s buildings (on the
/// set's feature columns).
pub fn weigh_toward(
    set: &mut TrainingSet,
    region: &CityFeatures,
    opts: &TrainOptions,
) -> Result<()> {
    let target = region.matrix(&set.names, None)?;
    set.weights = Some(super::domain::domain_weights(
        &set.x,
        &target,
        &opts.gbm_params(),
    )?);
    Ok(())
}

/// Lets glibc's allocator keep freed memory instead of handing it back to the kernel at once.
/// The boosters allocate zeroed histograms (features × 256 bins) for every tree node and free
/// them soon after; by default glibc returns such blocks to the kernel and takes them back page
/// by page, so with many features (Wageningen's 113, with Landsat) training spent half its time
/// in page faults. Process-wide and set once; other platforms' allocators are left alone.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; both values are in range
            // (32 MiB is glibc's largest mmap threshold on 64-bit).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
            }
        });
    }
}

/// Fits point and interval models on a training set. Intervals are calibrated by leaving out
/// whole cities when there are several, else whole 250 m blocks.
///
/// The lower-level step under [`train_model`], for callers that choose the rows themselves
/// (cross-validation folds); the set carries its feature names and cities, so they always match
/// its columns and rows. An error when the set has no rows or `opts` fail their check.
///
/// ```
/// use roofline::config::CityConfig;
/// use roofline::features::{city_features, FeatureOptions};
/// use roofline::model::boosting::GbmParams;
/// use roofline::model::boosting::predict_booster;
/// use roofline::model::train::{common_label, fit, select_features, training_set};
/// use roofline::model::train::TrainOptions;
/// use roofline::progress::Progress;
/// use linfa::ParamGuard;
///
/// let city = CityConfig::load("data/cities/delft-5910.toml")?;
/// let delft = city_features(&city, FeatureOptions { known_heights: false, ..Default::default() }, &Progress::hidden())?;
/// let cities = [&delft];
/// let names = select_features(&cities, false);
/// // Train on the western half of the tile only (split at the median centroid x, in metres of
/// // the Dutch RD New grid), without intervals ...
/// let mut xs: Vec<f64> = delft.centroids.iter().map(|c| c[0]).collect();
/// xs.sort_by(f64::total_cmp);
/// let middle = xs[xs.len() / 2];
/// let west = |i: usize| delft.centroids[i][0] < middle;
/// let set = training_set(&cities, &names, &|_, i| west(i))?;
/// let options = TrainOptions {
///     gbm: GbmParams::new().n_trees(100).learning_rate(0.1).check()?,
///     alpha: None,
///     ..Default::default()
/// };
/// let label = common_label(&cities, false)?;
/// let model = fit(&set, label, &options)?;
/// assert!(model.interval.is_none());
/// assert_eq!(model.meta.training[0].used, set.y.len());
/// // ... and test it on the labelled buildings of the eastern half, which it never saw.
/// let labels = delft.ok_labels();
/// let east: Vec<usize> = (0..delft.len()).filter(|&i| !west(i) && labels[i].is_some()).collect();
/// let predicted = predict_booster(&model.point, &delft.matrix(&names, Some(&east))?)?;
/// let mae = east.iter().enumerate()
///     .map(|(k, &i)| (predicted[[k, 0]] - labels[i].unwrap()).abs())
///     .sum::<f64>() / east.len() as f64;
/// // About 0.7 m; the median height for every building would be about 3 m off.
/// assert!(east.len() > 100 && mae < 1.5, "MAE {mae:.2} m on {} buildings", east.len());
/// # Ok::<(), roofline::Error>(())
/// ```
pub fn fit(set: &TrainingSet, label: LabelDefinition, opts: &TrainOptions) -> Result<HeightModel> {
    opts.check()?;
    let names = &set.names[..];
    let city_names: Vec<String> = set.cities.iter().map(|t| t.city.clone()).collect();
    let city_names = &city_names[..];
    let training = set.cities.clone();
    let (x, y) = (&set.x, &set.y);
    if y.is_empty() {
        return Err(Error::invalid("no building with an ok label to train on"));
    }
    keep_freed_memory();
    let levels = city_levels(set, city_names, opts);
    if opts.spread_cap && (levels.is_none() || opts.level == LevelMode::FullStructure) {
        tracing::debug!(
            "no spread cap: it caps the weight of a city level's structure, and this model has none chosen (it needs {} training cities, a squared or Huber loss and a weight chosen by nested leave-one-city-out)",
            level::MIN_CITIES
        );
    }
    // With a level, the trees learn ln(height) above the building's own city's level.
    let target = match &levels {
        Some(l) => relative_target(set, l),
        None => set.y.clone(),
    };
    // The point model and the interval models are independent: fit them side by side.
    let (point, interval) = rayon::join(
        || fit_point(set, &target, names, opts, levels.as_ref()),
        || fit_intervals(set, &target, city_names, opts, levels.as_ref()),
    );
    let PointFit {
        booster: point,
        hyper,
        oob,
        structure_weight,
        spread_kappa,
    } = point?;
    let interval = interval?;
    let levels = levels.map(|mut l| {
        l.model.structure_weight = structure_weight;
        l.model.spread_cap = spread_kappa.map(|kappa| {
            let (intercept, slope) = level::SpreadCap::line(&spread_points(&l.model.cities, None));
            level::SpreadCap {
                intercept,
                slope,
                kappa,
            }
        });
        l
    });
    // In-sample: each training building at its own city's level.
    let fitted = level::heights_of(&point, x, |i| {
        levels
            .as_ref()
            .map(|l| (l.of_city(set.city_of_row[i]), l.model.structure_weight))
    })?;
    let levels = levels.map(|l| l.model);
    let training_error = error_summary(&fitted, y);
    let importance = ranked_importance(&point, names);
    let feature_ranges = feature_ranges(x);
    Ok(HeightModel {
        meta: ModelMeta {
            format_version: FORMAT_VERSION,
            roofline_version: env!("CARGO_PKG_VERSION").into(),
            kind: opts.kind,
            hyperparameters: serde_json::json!({
                "point": hyper,
                "intervals": { "alpha": opts.alpha, "quantile_model": opts.gbm_params() },
                "known_heights": opts.known_heights,
                "level": if levels.is_some() { opts.level } else { LevelMode::Absolute },
            }),
            seed: opts.seed,
            feature_names: names.to_vec(),
            features: names.iter().map(|n| describe(n)).collect(),
            feature_ranges,
            label,
            training,
            working_crs_rule: WORKING_CRS_RULE.into(),
            calibration: interval.as_ref().map(|i| i.calibration.clone()),
            training_error,
            oob_error: oob,
            importance,
            cv: None,
            level: levels,
        },
        point,
        interval,
    })
}

/// The training cities' levels while fitting: the model and, per city index of the set, its
/// position among the model's cities (`None`: no labelled row).
struct Levels {
    model: LevelModel,
    position: Vec<Option<usize>>,
}

impl Levels {
    /// ln of the level of the set's city `c` (its labels' median).
    fn of_city(&self, c: usize) -> f64 {
        self.position[c].map_or(f64::NAN, |k| self.model.cities[k].log_level)
    }

    /// The level error of city `c` when the others estimate it: its true level minus the
    /// held-out estimate.
    fn held_out_error(&self, c: usize) -> f64 {
        self.position[c].map_or(0.0, |k| {
            self.model.cities[k].log_level - self.model.held_out_log_level(k)
        })
    }
}

/// The level model of a training set, when `opts.level` asks for one and it applies: at least
/// [`level::MIN_CITIES`] cities with labels and a loss on the height itself (squared or
/// pseudo-Huber; the relative losses already take logs).
fn city_levels(set: &TrainingSet, city_names: &[String], opts: &TrainOptions) -> Option<Levels> {
    use super::boosting::Loss;
    if opts.level == LevelMode::Absolute {
        return None;
    }
    if opts.kind == ModelKind::Gbm
        && !matches!(opts.gbm.loss, Loss::SquaredError | Loss::PseudoHuber { .. })
    {
        return None;
    }
    let mut heights: Vec<Vec<f64>> = vec![Vec::new(); city_names.len()];
    for (i, &c) in set.city_of_row.iter().enumerate() {
        heights[c].push(set.y[i]);
    }
    let mut position = vec![None; city_names.len()];
    let mut cities = Vec::new();
    for (c, h) in heights.iter_mut().enumerate() {
        if h.is_empty() {
            continue;
        }
        h.sort_by(f64::total_cmp);
        position[c] = Some(cities.len());
        let spreads = if opts.spread_cap {
            let logs: Vec<f64> = h.iter().filter(|v| **v > 0.0).map(|v| v.ln()).collect();
            set.area_spreads
                .get(c)
                .copied()
                .flatten()
                .map(|a| (crate::stats::percentile::iqr(&logs), a))
        } else {
            None
        };
        cities.push(CityLevel {
            city: city_names[c].clone(),
            log_level: crate::stats::percentile::percentile_sorted(h, 50.0).ln(),
            descriptors: set.descriptors.get(c).cloned().unwrap_or_default(),
            spreads,
        });
    }
    if cities.len() < level::MIN_CITIES {
        return None;
    }
    let model = LevelModel::fit(cities, opts.level != LevelMode::MeanLevel);
    Some(Levels { model, position })
}

/// ln(height) minus the level of each row's city.
fn relative_target(set: &TrainingSet, levels: &Levels) -> Array1<f64> {
    Array1::from_iter(
        set.y
            .iter()
            .zip(&set.city_of_row)
            .map(|(h, &c)| h.ln() - levels.of_city(c)),
    )
}

/// The point model of [`fit`], with its hyperparameters as recorded in the model file, for
/// the forest its out-of-bag error, and the structure weight of a level model.
struct PointFit {
    booster: hessboost::model::BoostedModel,
    hyper: serde_json::Value,
    oob: Option<ErrorSummary>,
    structure_weight: f64,
    /// The spread cap's multiplier, when one was chosen.
    spread_kappa: Option<f64>,
}

/// Fits the point model (`opts.kind`) on the set's rows and `target`, weighted when the set
/// has weights; with a level model, also the structure weight by nested leave-one-city-out.
fn fit_point(
    set: &TrainingSet,
    target: &Array1<f64>,
    names: &[String],
    opts: &TrainOptions,
    levels: Option<&Levels>,
) -> Result<PointFit> {
    let all: Vec<usize> = (0..target.len()).collect();
    let (booster, hyper, oob) = fit_rows(set, target, &all, names, opts)?;
    let (structure_weight, spread_kappa) = match levels {
        Some(l) if opts.level != LevelMode::FullStructure => {
            nested_structure_weight(set, target, names, opts, l)?
        }
        _ => (1.0, None),
    };
    Ok(PointFit {
        booster,
        hyper,
        oob,
        structure_weight,
        spread_kappa,
    })
}

/// The point learner fitted on `rows` of the set.
fn fit_rows(
    set: &TrainingSet,
    target: &Array1<f64>,
    rows: &[usize],
    names: &[String],
    opts: &TrainOptions,
) -> Result<(
    hessboost::model::BoostedModel,
    serde_json::Value,
    Option<ErrorSummary>,
)> {
    let whole = rows.len() == target.len();
    let (x, y) = if whole {
        (set.x.clone(), target.clone())
    } else {
        (set.x.select(Axis(0), rows), target.select(Axis(0), rows))
    };
    let mut dataset = Dataset::new(x, y).with_feature_names(names.to_vec());
    if let Some(w) = &set.weights {
        dataset = dataset.with_weights(Array1::from_iter(rows.iter().map(|&i| w[i])));
    }
    let json =
        |v: serde_json::Result<serde_json::Value>| v.map_err(|e| Error::invalid(e.to_string()));
    Ok(match opts.kind {
        ModelKind::Gbm => {
            let m = opts.gbm_params().on_threads(1).fit(&dataset)?;
            (
                m.booster,
                json(serde_json::to_value(opts.gbm_params()))?,
                None,
            )
        }
        ModelKind::Forest => {
            let m = opts.forest_params().fit(&dataset)?;
            (
                m.booster,
                json(serde_json::to_value(opts.forest_params()))?,
                Some(ErrorSummary {
                    mae: m.oob_mae,
                    rmse: m.oob_rmse,
                    n: m.oob_rows,
                }),
            )
        }
    })
}

/// How much of the learnt structure carries to a city the model never saw: each training city
/// is predicted by a point model of the others at its level as the others estimate it, and
/// the weight of [`level::STRUCTURE_WEIGHTS`] with the smallest mean relative error wins.
fn nested_structure_weight(
    set: &TrainingSet,
    target: &Array1<f64>,
    names: &[String],
    opts: &TrainOptions,
    levels: &Levels,
) -> Result<(f64, Option<f64>)> {
    let mut held_out = Vec::new();
    let mut expected = Vec::new();
    for (c, position) in levels.position.iter().enumerate() {
        let Some(k) = *position else { continue };
        let (test, train): (Vec<usize>, Vec<usize>) =
            (0..target.len()).partition(|&i| set.city_of_row[i] == c);
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let (booster, _, _) = fit_rows(set, target, &train, names, opts)?;
        let structure = predict_booster(&booster, &set.x.select(Axis(0), &test))?
            .column(0)
            .to_vec();
        let heights: Vec<f64> = test.iter().map(|&i| set.y[i]).collect();
        held_out.push((structure, levels.model.held_out_log_level(k), heights));
        let cities = &levels.model.cities;
        let (a, b) = level::SpreadCap::line(&spread_points(cities, Some(k)));
        expected.push(cities[k].spreads.map(|(_, area)| {
            level::SpreadCap {
                intercept: a,
                slope: b,
                kappa: 1.0,
            }
            .expected(area)
        }));
    }
    if opts.spread_cap {
        if expected.iter().all(Option::is_some) {
            let expected: Vec<f64> = expected.into_iter().flatten().collect();
            return Ok(level::choose_capped_weight(&held_out, &expected));
        }
        tracing::warn!("no spread cap: a training city has no footprint areas (`area_m2`)");
    }
    Ok((level::choose_structure_weight(&held_out), None))
}

/// The training cities' (area spread, ln-height spread) pairs, city `skip` left out.
fn spread_points(cities: &[CityLevel], skip: Option<usize>) -> Vec<(f64, f64)> {
    cities
        .iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != skip)
        .filter_map(|(_, c)| c.spreads.map(|(h, a)| (a, h)))
        .collect()
}

/// The interval model of [`fit`] (`None` when `opts.alpha` is): quantiles of `target`
/// calibrated by [`calibration_groups`]; with a level model in ln(height) above the level,
/// each held-out city scored at its level as the others estimate it.
fn fit_intervals(
    set: &TrainingSet,
    target: &Array1<f64>,
    city_names: &[String],
    opts: &TrainOptions,
    levels: Option<&Levels>,
) -> Result<Option<IntervalModel>> {
    let Some(alpha) = opts.alpha else {
        return Ok(None);
    };
    let (groups, group_names, rule) = calibration_groups(set, city_names, opts);
    if one_city(set) && set.y.len() >= opts.split_calibration_min_rows {
        // Split conformal: the first block fold calibrates a model fitted on the others.
        let (cal, fit): (Vec<usize>, Vec<usize>) = (0..set.y.len()).partition(|&i| groups[i] == 0);
        if !cal.is_empty() && !fit.is_empty() {
            let pick = |rows: &[usize]| (set.x.select(Axis(0), rows), target.select(Axis(0), rows));
            let (xf, yf) = pick(&fit);
            let (xc, yc) = pick(&cal);
            let mut m =
                IntervalModel::fit_holdout(&opts.gbm_params(), alpha, (&xf, &yf), (&xc, &yc))?;
            m.calibration.groups = vec![group_names[0].clone()];
            return Ok(Some(m));
        }
    }
    let how = Grouping {
        rule,
        offsets: levels
            .map(|l| (0..city_names.len()).map(|c| l.held_out_error(c)).collect())
            .unwrap_or_default(),
        log_scale: levels.is_some(),
    };
    Ok(Some(IntervalModel::fit_grouped(
        &opts.gbm_params(),
        alpha,
        &set.x,
        target,
        &groups,
        &group_names,
        &how,
    )?))
}

/// What calibration leaves out in turn — the cities when there are several (combined by
/// `opts.interval_rule`), else [`TrainOptions::calibration_folds`] block folds (pooled: blocks
/// of one city are exchangeable) — as a group per row, the groups' names and the rule.
fn calibration_groups(
    set: &TrainingSet,
    city_names: &[String],
    opts: &TrainOptions,
) -> (Vec<usize>, Vec<String>, IntervalRule) {
    if !one_city(set) {
        return (
            set.city_of_row.clone(),
            city_names.to_vec(),
            opts.interval_rule,
        );
    }
    let k = opts.calibration_folds.max(2);
    (
        block_folds(&set.centroids, opts.calibration_block_m, k, opts.seed),
        (0..k)
            .map(|f| format!("{} m block fold {}", opts.calibration_block_m, f + 1))
            .collect(),
        IntervalRule::Pooled,
    )
}

/// Whether every training row comes from the same city (intervals are then calibrated on
/// block folds).
fn one_city(set: &TrainingSet) -> bool {
    set.city_of_row.windows(2).all(|w| w[0] == w[1])
}

/// MAE and RMSE of heights against the truth.
fn error_summary(pred: &Array1<f64>, y: &Array1<f64>) -> ErrorSummary {
    let err: Vec<f64> = pred.iter().zip(y).map(|(p, t)| p - t).collect();
    let n = err.len() as f64;
    ErrorSummary {
        mae: err.iter().map(|e| e.abs()).sum::<f64>() / n,
        rmse: (err.iter().map(|e| e * e).sum::<f64>() / n).sqrt(),
        n: err.len(),
    }
}

/// Features by the point model's total split gain, largest first (ties by name).
fn ranked_importance(
    point: &hessboost::model::BoostedModel,
    names: &[String],
) -> Vec<(String, f64)> {
    let gains = super::boosting::gain_importance(point);
    let mut importance: Vec<(String, f64)> = names.iter().cloned().zip(gains).collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    importance
}

/// Each column's finite range (`None`: no finite value), for out-of-range warnings.
fn feature_ranges(x: &Array2<f64>) -> Vec<Option<(f64, f64)>> {
    x.columns()
        .into_iter()
        .map(|col| {
            let finite = col.iter().copied().filter(|v| v.is_finite());
            let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            lo.is_finite().then_some((lo, hi))
        })
        .collect()
}
