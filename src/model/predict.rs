//! Prediction stage: a model applied to a region's feature table. Buildings the region's own
//! LiDAR measured (`ok` labels) keep the measured height; the rest get the model's height and
//! a 90 % interval; buildings whose features leave the training range are flagged.

use ndarray::Array2;

use super::anchor::{apply_local, HeightRows};
use super::local::{LocalOptions, LocalSummary, Sites};
use super::HeightModel;
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::features::{describe, neighbours, reproject_many, CityFeatures, Group};
use crate::io::table::{Column, ColumnData, Table};
use crate::label::Origin;

pub use super::anchor::{LocalData, Source};

use super::anchor::Known;
use crate::config::CityConfig;
use crate::features::sparse_lidar::{direct_estimate_family, region_direct_estimates};
use crate::label::sparsify::Sparsify;
use crate::progress::Progress;

/// Names of the prediction table's columns that later steps (the tiled plan's merge) read back.
pub mod column {
    /// The height to use (m).
    pub const HEIGHT: &str = "height_m";
    /// Its interval's lower bound (m).
    pub const LO: &str = "height_lo_m";
    /// Its interval's upper bound (m).
    pub const HI: &str = "height_hi_m";
    /// Where the height comes from ([`super::Source`]).
    pub const SOURCE: &str = "source";
    /// The model's own prediction (m).
    pub const PREDICTED: &str = "height_predicted_m";
}

/// Heights for one region, in footprint order.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// The region's name.
    pub city: String,
    /// Building ids; every other vector is parallel to it.
    pub ids: Vec<String>,
    /// The height to use: measured where available, else predicted (m).
    pub height_m: Vec<f64>,
    /// Lower bound (m) of the interval around `height_m`: the measurement itself where
    /// measured; NaN where predicted by a model without intervals.
    pub lo_m: Vec<f64>,
    /// Upper bound (m), as `lo_m`.
    pub hi_m: Vec<f64>,
    /// The model's own prediction and 90 % interval, also where a measurement exists (m);
    /// never negative.
    pub predicted_m: Vec<f64>,
    /// Lower bound (m) of the model's interval (NaN without an interval model).
    pub predicted_lo_m: Vec<f64>,
    /// Upper bound (m) of the model's interval (NaN without an interval model).
    pub predicted_hi_m: Vec<f64>,
    /// Where each `height_m` comes from.
    pub source: Vec<Source>,
    /// Number of features outside the training range.
    pub ood_features: Vec<usize>,
    /// Share of the model's split gain held by the features outside the training range: an
    /// unimportant feature out of range matters less than the main one.
    pub ood_gain_share: Vec<f64>,
    /// Those features' names, comma-separated.
    pub ood_feature_names: Vec<String>,
    /// The model's label family (e.g. `roof-p70`): what the heights mean.
    pub label: String,
    /// The local recalibration, when one was made.
    pub local: Option<LocalSummary>,
    /// The level and structure weight (after the spread cap) the region was predicted at,
    /// for a model with a city level.
    pub level: Option<super::RegionLevel>,
}

/// The model's feature matrix for a region; an error naming what the region lacks.
pub fn model_matrix(model: &HeightModel, region: &CityFeatures) -> Result<Array2<f64>> {
    let names = &model.meta.feature_names;
    let missing = region.lacks(names);
    if !missing.is_empty() {
        return Err(Error::invalid(format!(
            "region '{}' lacks {} feature(s) the model needs: {} — give the region the same imagery/LiDAR as the training cities, or train without them",
            region.city,
            missing.len(),
            crate::features::shown(&missing)
        )));
    }
    region.matrix(names, None)
}

/// Predicts every building of a region.
///
/// Buildings with an `ok` label of their own keep it (source `measured`); the rest get the
/// model's height and interval (source `predicted`). The region needs every feature the model
/// was trained on (an error lists the missing ones); known-neighbour heights are computed from
/// its own labels when the model uses them. Heights are in metres, never negative.
///
/// ```
/// use roofline::config::CityConfig;
/// use roofline::features::{city_features, FeatureOptions};
/// use roofline::model::boosting::GbmParams;
/// use roofline::model::predict::{predict_region, Source};
/// use roofline::model::train::{train_model, TrainOptions};
/// use roofline::progress::Progress;
/// use linfa::ParamGuard;
///
/// let features = |config: &str| {
///     let city = CityConfig::load(config)?;
///     city_features(&city, FeatureOptions { known_heights: false, ..Default::default() }, &Progress::hidden())
/// };
/// // Train on Delft tile 5910 (3DBAG roof-p70 heights), few trees to keep it quick ...
/// let train = features("data/cities/delft-5910.toml")?;
/// let options = TrainOptions {
///     gbm: GbmParams::new().n_trees(100).learning_rate(0.1).check()?,
///     ..Default::default()
/// };
/// let model = train_model(&[&train], &options)?;
/// // ... and predict another part of Delft, whose LiDAR labels (same roof-p70 family) serve
/// // as the truth.
/// let region = features("data/cities/delft-3dfier.toml")?;
/// let p = predict_region(&model, &region)?;
/// assert_eq!(p.ids, region.ids);
/// let truth = region.ok_labels();
/// let mut errors = Vec::new();
/// for i in 0..p.ids.len() {
///     assert!(p.predicted_lo_m[i] <= p.predicted_m[i] && p.predicted_m[i] <= p.predicted_hi_m[i]);
///     if let Some(h) = truth[i] {
///         assert_eq!((p.source[i], p.height_m[i]), (Source::Measured, h));
///         errors.push((p.predicted_m[i] - h).abs());
///     }
/// }
/// let mae = errors.iter().sum::<f64>() / errors.len() as f64;
/// // About 1.4 m; the training city's median height (6.0 m) for every building is 2.6 m off,
/// // and even the region's own median 2.5 m.
/// assert!(mae < 2.0, "MAE {mae:.2} m on {} measured buildings", errors.len());
/// # Ok::<(), roofline::Error>(())
/// ```
pub fn predict_region(model: &HeightModel, region: &CityFeatures) -> Result<Predictions> {
    // Labels of another family are neither kept, nor anchor, nor feed neighbour features.
    let measured = own_labels(model, region);
    let region = with_known_heights(model, region, &measured);
    let region = region.as_ref();
    let x = model_matrix(model, region)?;
    let log_level = model.region_log_level(region);
    let (structure, factor) = model.region_structure(&x, region)?;
    let point = model.heights_at(&structure, log_level);
    let level = model.level_at(log_level, factor);
    let (lo, hi) = intervals(model, &x, &point, log_level)?;
    let ood = out_of_range(model, &x);
    let ood_gain_share = gain_shares(model, &ood);
    let ood_features = ood.iter().map(Vec::len).collect();
    let ood_feature_names = ood.iter().map(|v| v.join(",")).collect();
    let mut p = Predictions {
        city: region.city.clone(),
        ids: region.ids.clone(),
        height_m: Vec::with_capacity(x.nrows()),
        lo_m: Vec::with_capacity(x.nrows()),
        hi_m: Vec::with_capacity(x.nrows()),
        predicted_m: point.to_vec(),
        predicted_lo_m: lo.clone(),
        predicted_hi_m: hi.clone(),
        source: Vec::with_capacity(x.nrows()),
        ood_features,
        ood_gain_share,
        ood_feature_names,
        label: model.meta.label.name.clone(),
        local: None,
        level,
    };
    for i in 0..x.nrows() {
        match measured[i] {
            Some(h) => {
                p.height_m.push(h);
                p.lo_m.push(h);
                p.hi_m.push(h);
                let origin = region
                    .labels
                    .as_ref()
                    .map_or(Origin::Measured, |l| l.rows[i].origin);
                p.source.push(Source::of_label(origin));
            }
            None => {
                p.height_m.push(point[i]);
                p.lo_m.push(lo[i]);
                p.hi_m.push(hi[i]);
                p.source.push(Source::Predicted);
            }
        }
    }
    Ok(p)
}

/// The region's `ok` labels when they are of the model's family; labels of another family
/// (storeys, eaves for a roof-top model) are not the heights the model gives, so they are
/// neither kept as the answer nor used to anchor it, and a warning says so.
fn own_labels(model: &HeightModel, region: &CityFeatures) -> Vec<Option<f64>> {
    if let Some(l) = region
        .labels
        .as_ref()
        .filter(|l| l.definition.name != model.meta.label.name)
    {
        tracing::warn!(
            "{}: its labels are '{}' heights, the model gives '{}': they are not used (neither kept nor to anchor the model); give the region labels of the model's family or use a model of theirs",
            region.city,
            l.definition.name,
            model.meta.label.name
        );
    }
    own_labels_quiet(model, region)
}

/// [`own_labels`] without its warning (said once, by [`predict_region`]).
fn own_labels_quiet(model: &HeightModel, region: &CityFeatures) -> Vec<Option<f64>> {
    match &region.labels {
        Some(l) if l.definition.name != model.meta.label.name => vec![None; region.len()],
        _ => region.ok_labels(),
    }
}

/// The feature matrix [`predict_region`] predicts from: the region's features with the
/// known-neighbour heights of its own family's labels, in the model's column order.
pub fn region_matrix(model: &HeightModel, region: &CityFeatures) -> Result<Array2<f64>> {
    let known = own_labels_quiet(model, region);
    model_matrix(model, with_known_heights(model, region, &known).as_ref())
}

/// The region with known-neighbour heights from its own measured buildings (`known`, of the
/// model's family; none: all missing) when the model needs them and the region lacks them.
fn with_known_heights<'a>(
    model: &HeightModel,
    region: &'a CityFeatures,
    known: &[Option<f64>],
) -> std::borrow::Cow<'a, CityFeatures> {
    let has_known = region
        .names
        .iter()
        .any(|n| describe(n).group == Group::KnownHeights);
    // Columns made from the region's own labels stand when those are the model's family;
    // labels of another family must not feed them.
    let from_own = has_known && region.ok_labels() == known;
    if !model.meta.uses_known_heights() || from_own {
        return std::borrow::Cow::Borrowed(region);
    }
    let mut r = region.clone();
    let heights = neighbours::neighbour_heights(&r.centroids, known);
    r.append(neighbours::names(), &heights);
    std::borrow::Cow::Owned(r)
}

/// The model's interval per row (NaN without an interval model), never negative and always
/// holding the point; `log_level` is the region's, for intervals in ln(height) above it.
fn intervals(
    model: &HeightModel,
    x: &Array2<f64>,
    point: &ndarray::Array1<f64>,
    log_level: Option<f64>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let structure = interval_structure(model, x)?;
    Ok(intervals_at(model, structure.as_ref(), point, log_level))
}

/// The interval model's raw bounds per row (in ln(height) above the level for a model with a
/// city level, metres otherwise); `None` without an interval model. With
/// [`intervals_at`], what [`HeightModel::structure`] is to the point.
pub fn interval_structure(
    model: &HeightModel,
    x: &Array2<f64>,
) -> Result<Option<(ndarray::Array1<f64>, ndarray::Array1<f64>)>> {
    model.interval.as_ref().map(|i| i.predict(x)).transpose()
}

/// Intervals from [`interval_structure`] at a region's level, never negative and always
/// holding the point (NaN without an interval model).
pub fn intervals_at(
    model: &HeightModel,
    structure: Option<&(ndarray::Array1<f64>, ndarray::Array1<f64>)>,
    point: &ndarray::Array1<f64>,
    log_level: Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    match (&model.interval, structure) {
        (Some(i), Some((lo, hi))) => {
            let l = log_level
                .or(model.meta.level.as_ref().map(|l| l.intercept))
                .unwrap_or(0.0);
            let log = i.calibration.log_scale;
            (0..point.len())
                .map(|k| super::level::bounds_at(log, l, lo[k], hi[k], point[k]))
                .unzip()
        }
        _ => (vec![f64::NAN; point.len()], vec![f64::NAN; point.len()]),
    }
}

/// Per row, the features outside the range seen in training (any finite value of a feature
/// that was always missing there counts).
fn out_of_range<'m>(model: &'m HeightModel, x: &Array2<f64>) -> Vec<Vec<&'m str>> {
    (0..x.nrows())
        .map(|i| {
            model
                .meta
                .feature_ranges
                .iter()
                .enumerate()
                .filter(|(j, r)| {
                    let v = x[[i, *j]];
                    match r {
                        Some((a, b)) => v.is_finite() && (v < *a || v > *b),
                        None => v.is_finite(),
                    }
                })
                .map(|(j, _)| model.meta.feature_names[j].as_str())
                .collect()
        })
        .collect()
}

/// Per row, the out-of-range features' share of the model's gain: an unused feature out of
/// range matters less than the main one.
fn gain_shares(model: &HeightModel, ood: &[Vec<&str>]) -> Vec<f64> {
    let gain: Vec<f64> = model
        .meta
        .feature_names
        .iter()
        .map(|n| {
            model
                .meta
                .importance
                .iter()
                .find(|(m, _)| m == n)
                .map_or(0.0, |(_, g)| *g)
        })
        .collect();
    let total_gain: f64 = gain.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    ood.iter()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| model.meta.feature_names.iter().position(|m| m == n))
                .map(|j| gain[j])
                .sum::<f64>()
                / total_gain
        })
        .collect()
}

/// [`predict_region`], then the region's local data: direct sparse-LiDAR estimates where no
/// measurement exists, and the model recalibrated on every known building for the rest.
pub fn predict_region_local(
    model: &HeightModel,
    region: &CityFeatures,
    local: &LocalData,
) -> Result<Predictions> {
    let mut p = predict_region(model, region)?;
    let label = model.meta.label.name.clone();
    let area = region.column_or_nan(super::level::AREA);
    let (_, features) = region.footprint_features();
    let sites = Sites {
        centroids: &region.centroids,
        area_m2: &area,
        features: features.view(),
    };
    p.local = apply_local(
        p.rows_mut(),
        sites,
        local,
        &label,
        &LocalOptions::for_model(model),
    );
    Ok(p)
}

impl Predictions {
    /// The rows anchoring reads and rewrites ([`super::anchor`]).
    pub fn rows_mut(&mut self) -> HeightRows<'_> {
        HeightRows {
            predicted_m: &self.predicted_m,
            predicted_lo_m: &self.predicted_lo_m,
            predicted_hi_m: &self.predicted_hi_m,
            height_m: &mut self.height_m,
            lo_m: &mut self.lo_m,
            hi_m: &mut self.hi_m,
            source: &mut self.source,
        }
    }

    /// The output table, geometry reprojected from `crs` (the working CRS) to `out_crs`.
    pub fn to_table(&self, region: &CityFeatures, out_crs: &Crs) -> Result<Table> {
        let geometry = reproject_many(&region.geometries, &region.crs, out_crs)?;
        let mut table = Table {
            crs: Some(out_crs.clone()),
            geometry: Some(geometry),
            ..Default::default()
        };
        table.push(Column::str("id", self.ids.iter().cloned()));
        table.push(Column::str(
            "city",
            self.ids.iter().map(|_| self.city.clone()),
        ));
        table.push(Column::f64(column::HEIGHT, self.height_m.iter().copied()));
        table.push(Column::f64(column::LO, self.lo_m.iter().copied()));
        table.push(Column::f64(column::HI, self.hi_m.iter().copied()));
        table.push(Column::str(
            column::SOURCE,
            self.source.iter().map(|s| s.as_str()),
        ));
        table.push(Column {
            name: "ood".into(),
            data: ColumnData::Bool(self.ood_features.iter().map(|&n| Some(n > 0)).collect()),
        });
        table.push(Column::i64(
            "ood_feature_count",
            self.ood_features.iter().map(|&n| n as i64),
        ));
        table.push(Column::str(
            "ood_feature_names",
            self.ood_feature_names.iter().cloned(),
        ));
        table.push(Column::f64(
            column::PREDICTED,
            self.predicted_m.iter().copied(),
        ));
        table.push(Column::str(
            "label",
            self.ids.iter().map(|_| self.label.clone()),
        ));
        table.metadata.insert(
            "roofline".into(),
            serde_json::json!({
                "table": "predictions",
                "roofline_version": env!("CARGO_PKG_VERSION"),
                "city": self.city,
                "crs": out_crs.label,
                "height_unit": "m",
                "label": self.label,
                "columns": {
                    "height_m": "measured height where the region's LiDAR gives an ok label, else the model's prediction",
                    "height_lo_m": "lower bound of the 90 % interval (the measurement itself for measured buildings)",
                    "height_hi_m": "upper bound of the 90 % interval",
                    "source": "measured (the region's own label), survey (a height from its survey file), osm_height / osm_levels (its OpenStreetMap height tag, or storeys × a storey height), sparse_lidar (measured directly from a few points of a sparse survey), recalibrated (the model corrected with the region's known buildings) or predicted (the model alone)",
                    "ood": "some feature lies outside the range seen in training",
                    "ood_feature_count": "how many features lie outside the training range",
                    "ood_feature_names": "those features, comma-separated",
                    "height_predicted_m": "the model's prediction, also for measured buildings",
                },
            })
            .to_string(),
        );
        Ok(table)
    }
}

/// What `predict` takes from a region beyond its features: with `recalibrate`, the heights
/// its sparse survey measures directly (thinned further by `thin`, a what-if) and the
/// correction on its known buildings; `known`, a what-if keeping only some of them.
pub fn local_data(
    cfg: &CityConfig,
    region: &CityFeatures,
    recalibrate: bool,
    thin: Option<(Sparsify, u64)>,
    known: Option<Known>,
    progress: &Progress,
) -> Result<LocalData> {
    let sparse = if recalibrate {
        region_direct_estimates(cfg, region, thin, progress)?.map(|s| (s, direct_estimate_family()))
    } else {
        None
    };
    Ok(LocalData {
        sparse,
        recalibrate,
        known,
    })
}

/// A region's output rows, as `predict` writes them: its predictions in `out_crs`, the
/// footprints' own attributes joined by id (`attributes`, from
/// [`crate::io::footprints::read_attributes`]) and a row without a height for each footprint
/// without a usable polygon. Also returns the attributes renamed `input_<name>` for clashing
/// with roofline's columns.
pub fn region_table(
    p: &Predictions,
    region: &CityFeatures,
    out_crs: &Crs,
    (ids, attributes): (Vec<String>, Vec<Column>),
) -> Result<(Table, Vec<String>)> {
    let mut table = p.to_table(region, out_crs)?;
    let renamed = table.join_columns(&p.ids, &ids, attributes);
    table.append_unusable(
        &region.skipped,
        &[
            ("city", region.city.as_str()),
            ("source", crate::label::Flag::NoGeometry.as_str()),
            ("label", p.label.as_str()),
        ],
    );
    Ok((table, renamed))
}

/// `predict` on one region given by its config, as the command line runs it for each region:
/// its features (known-neighbour ones when the model uses them), local data and anchoring
/// ([`local_data`], without what-ifs), and the output table ([`region_table`], every footprint
/// attribute kept, geometry in the footprints' CRS), with a warning naming attributes renamed
/// for clashing.
pub fn predict_city(
    model: &HeightModel,
    cfg: &CityConfig,
    recalibrate: bool,
    progress: &Progress,
) -> Result<(Table, Predictions)> {
    let attributes = crate::io::footprints::read_attributes(
        cfg.require_footprints()?,
        &crate::io::footprints::KeepColumns::All,
    )?;
    let region = crate::features::city_features(
        cfg,
        crate::features::FeatureOptions {
            known_heights: model.meta.uses_known_heights(),
            ..Default::default()
        },
        progress,
    )?;
    let out_crs = Crs::common_or_wgs84(std::iter::once(&region.source_crs))?;
    let local = local_data(cfg, &region, recalibrate, None, None, progress)?;
    let p = predict_region_local(model, &region, &local)?;
    let (table, renamed) = region_table(&p, &region, &out_crs, attributes)?;
    if !renamed.is_empty() {
        tracing::warn!(
            "{}: input attributes {} clash with roofline's columns; written as input_<name>",
            cfg.path.display(),
            renamed.join(", ")
        );
    }
    Ok((table, p))
}
