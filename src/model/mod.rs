//! Models: gradient-boosted trees ([`boosting`], the default) or a random forest ([`forest`])
//! for the point height, conformalized quantile [`intervals`], the [`file`](mod@file) format,
//! and the [`train`] and [`predict`] stages that wire them to feature tables.

pub mod anchor;
pub mod boosting;
pub mod domain;
pub mod ensemble;
pub mod file;
pub mod forest;
pub mod intervals;
pub mod learnt;
pub mod level;
pub mod local;
pub mod matrix;
pub mod params;
pub mod predict;
pub mod train;

use hessboost::model::BoostedModel;
use serde::{Deserialize, Serialize};

use crate::config::LabelDefinition;
use crate::features::FeatureDoc;
use intervals::{Calibration, IntervalModel};

/// File format version written by this roofline; files with a higher version are refused.
pub const FORMAT_VERSION: u32 = 2;

/// Oldest file format this roofline reads (version 1 files have no city level).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// How working CRSs are chosen; stored so a model's features are recomputed the same way.
pub const WORKING_CRS_RULE: &str =
    "footprints' CRS when projected in metres with lengths true to 0.1 % at the footprints' centre, else the WGS 84 UTM zone of the footprints' centre";

/// Which learner gives the point height (`--model`); intervals always come from quantile
/// boosting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Histogram gradient boosting (hessboost), with 90 % intervals.
    Gbm,
    /// Random forest: bootstrap trees averaged, with out-of-bag error.
    Forest,
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gbm" => Ok(ModelKind::Gbm),
            "forest" => Ok(ModelKind::Forest),
            _ => Err(format!("unknown model '{s}' (gbm or forest)")),
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Gbm => "gbm",
            ModelKind::Forest => "forest",
        })
    }
}

/// Buildings a city contributed to training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingCity {
    /// The city's name.
    pub city: String,
    /// All its buildings with features, labelled or not.
    pub buildings: usize,
    /// Buildings with an `ok` label, used for training.
    pub used: usize,
}

/// Error summary (m).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorSummary {
    /// Mean absolute error (m).
    pub mae: f64,
    /// Root mean squared error (m).
    pub rmse: f64,
    /// Buildings the errors are computed over.
    pub n: usize,
}

/// Everything about a model except its trees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// [`FORMAT_VERSION`] of the roofline that wrote the file.
    pub format_version: u32,
    /// The crate version that trained the model (for provenance only).
    pub roofline_version: String,
    /// Boosting or forest for the point height.
    pub kind: ModelKind,
    /// The point and interval models' hyperparameters as trained, as JSON.
    pub hyperparameters: serde_json::Value,
    /// The training seed; the same data, options and seed give the same model.
    pub seed: u64,
    /// Feature order of the model's columns.
    pub feature_names: Vec<String>,
    /// Documentation of each feature, parallel to `feature_names`.
    pub features: Vec<FeatureDoc>,
    /// Training range (min, max) per feature; `None` where a feature was always missing.
    pub feature_ranges: Vec<Option<(f64, f64)>>,
    /// The label family the model predicts; regions are compared with it only when theirs
    /// agrees.
    pub label: LabelDefinition,
    /// What each training city contributed.
    pub training: Vec<TrainingCity>,
    /// How working CRSs were chosen ([`WORKING_CRS_RULE`]).
    pub working_crs_rule: String,
    /// The interval calibration; `None` for a model trained without intervals.
    pub calibration: Option<Calibration>,
    /// Error on the training buildings themselves: optimistic, not a test error.
    pub training_error: ErrorSummary,
    /// The forest's out-of-bag error (per building, so still optimistic); `None` for boosting.
    pub oob_error: Option<ErrorSummary>,
    /// Total split gain per feature, largest first.
    pub importance: Vec<(String, f64)>,
    /// Cross-validation summary, when one was run for this configuration.
    pub cv: Option<serde_json::Value>,
    /// The city level ([`level`]): present when the point model predicts ln(height) above a
    /// city's level rather than heights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<level::LevelModel>,
}

impl ModelMeta {
    /// Whether the model reads known-neighbour heights (a region's own measured buildings).
    pub fn uses_known_heights(&self) -> bool {
        self.features
            .iter()
            .any(|d| d.group == crate::features::Group::KnownHeights)
    }
}

/// A trained height model: point booster, interval model and metadata.
#[derive(Clone, Debug)]
pub struct HeightModel {
    /// Everything but the trees, as stored in `roofline.json`.
    pub meta: ModelMeta,
    /// The point model (boosting, or the forest's averaged trees); heights in metres from
    /// features in `meta.feature_names` order.
    pub point: BoostedModel,
    /// The 90 % (1 - alpha) interval model; `None` when trained with `alpha: None`.
    pub interval: Option<IntervalModel>,
}

/// What a model with a city level applies to one whole region: a height is
/// `exp(log_level + weight × output)` of the point booster's output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionLevel {
    /// ln of the region's estimated level (m).
    pub log_level: f64,
    /// The structure weight, times the spread cap's factor for the region.
    pub weight: f64,
}

impl HeightModel {
    /// The [`RegionLevel`] of a region (all its rows at once), for a model with a city level.
    pub fn region_level(
        &self,
        region: &crate::features::CityFeatures,
    ) -> crate::error::Result<Option<RegionLevel>> {
        let Some(log_level) = self.region_log_level(region) else {
            return Ok(None);
        };
        let factor = match self.spread_cap() {
            Some(_) => {
                self.region_structure(&predict::region_matrix(self, region)?, region)?
                    .1
            }
            None => 1.0,
        };
        Ok(self.level_at(Some(log_level), factor))
    }

    /// The [`RegionLevel`] at `log_level` with the structure weight scaled by the spread cap's
    /// `factor`; `None` for a model without a city level (or no level).
    pub(crate) fn level_at(&self, log_level: Option<f64>, factor: f64) -> Option<RegionLevel> {
        self.meta
            .level
            .as_ref()
            .zip(log_level)
            .map(|(l, log_level)| RegionLevel {
                log_level,
                weight: l.structure_weight * factor,
            })
    }

    /// ln of a region's estimated height level, for a model with a city level (`None`
    /// otherwise). From the whole region's buildings: one tile of a city gives its own level
    /// (a plan's merge applies the whole region's, [`HeightModel::structure`]).
    pub fn region_log_level(&self, region: &crate::features::CityFeatures) -> Option<f64> {
        self.meta
            .level
            .as_ref()
            .map(|l| l.log_level(&level::descriptors(region)))
    }

    /// Point heights (m, never negative) for rows of features in `meta.feature_names` order;
    /// `log_level` is the region's ([`HeightModel::region_log_level`]; ignored by a model
    /// without a city level; `None` with one: the training cities' mean level). Rows alone
    /// carry no region: a [`level::SpreadCap`] is applied by [`predict::predict_region`] only.
    pub fn heights(
        &self,
        x: &ndarray::Array2<f64>,
        log_level: Option<f64>,
    ) -> crate::error::Result<ndarray::Array1<f64>> {
        Ok(self.heights_at(&self.structure(x)?, log_level))
    }

    /// The part of each row's height that does not depend on the region's level: its weighted
    /// structure in ln(height) for a model with a city level, the height itself otherwise. A
    /// tiled run keeps it so the merge can apply the whole region's level
    /// ([`HeightModel::heights_at`]), which no single tile knows.
    pub fn structure(
        &self,
        x: &ndarray::Array2<f64>,
    ) -> crate::error::Result<ndarray::Array1<f64>> {
        let raw = boosting::predict_booster(&self.point, x)?;
        let w = self.meta.level.as_ref().map(|l| l.structure_weight);
        Ok(ndarray::Array1::from_iter((0..x.nrows()).map(
            |i| match w {
                Some(w) => w * raw[[i, 0]],
                None => raw[[i, 0]],
            },
        )))
    }

    /// The model's [`level::SpreadCap`], when it has one: what
    /// [`HeightModel::region_structure`] applies, from the whole region (a tiled run's merge
    /// applies it again, an XGBoost export folds it into the structure weight).
    pub fn spread_cap(&self) -> Option<&level::SpreadCap> {
        self.meta.level.as_ref().and_then(|l| l.spread_cap.as_ref())
    }

    /// [`HeightModel::structure`] of a whole region's rows `x`: with a [`level::SpreadCap`],
    /// scaled down where the region's footprints say its heights are tighter than the
    /// structure; and the factor it was scaled by ([`HeightModel::cap_factor`]).
    pub fn region_structure(
        &self,
        x: &ndarray::Array2<f64>,
        region: &crate::features::CityFeatures,
    ) -> crate::error::Result<(ndarray::Array1<f64>, f64)> {
        let s = self.structure(x)?;
        let f = self.cap_factor(level::area_spread(region), &s.to_vec());
        Ok((s * f, f))
    }

    /// The factor (0–1] on the [`HeightModel::structure`] of a whole region whose footprint
    /// areas spread by `area_spread` ([`level::area_spread`]): 1 without a spread cap. Needs
    /// every row of the region, so a tiled run applies it at the merge.
    pub fn cap_factor(&self, area_spread: Option<f64>, structure: &[f64]) -> f64 {
        self.spread_cap()
            .map_or(1.0, |cap| cap.factor(area_spread, structure))
    }

    /// Point heights (m, never negative) from [`HeightModel::structure`] at a region's level
    /// (`None` with a city level: the training cities' mean level).
    pub fn heights_at(
        &self,
        structure: &ndarray::Array1<f64>,
        log_level: Option<f64>,
    ) -> ndarray::Array1<f64> {
        let level = self
            .meta
            .level
            .as_ref()
            .map(|l| log_level.unwrap_or(l.intercept));
        structure.mapv(|s| match level {
            Some(l) => level::height_at(l, s),
            None => s.max(0.0),
        })
    }
}

impl<D: ndarray::Data<Elem = f64>>
    linfa::traits::PredictInplace<ndarray::ArrayBase<D, ndarray::Ix2>, ndarray::Array1<f64>>
    for HeightModel
{
    /// Point heights (m, never negative) for rows of features in `meta.feature_names` order,
    /// a model with a city level at the training cities' mean level ([`HeightModel::heights`]
    /// takes a region's). Panics on another column count, like linfa's models;
    /// [`predict::predict_region`] builds the matrix from a region's features, checks it and
    /// adds intervals and sources.
    fn predict_inplace(
        &self,
        x: &ndarray::ArrayBase<D, ndarray::Ix2>,
        y: &mut ndarray::Array1<f64>,
    ) {
        let h = self
            .heights(&x.to_owned(), None)
            .expect("feature count checked by the caller");
        y.assign(&h);
    }

    fn default_target(&self, x: &ndarray::ArrayBase<D, ndarray::Ix2>) -> ndarray::Array1<f64> {
        ndarray::Array1::zeros(x.nrows())
    }
}
