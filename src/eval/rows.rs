//! Held-out rows: one scored building of a cross-validation, as the model alone or a local-data
//! scenario predicts it. Its own module so that [`super::cv`] and [`super::scenario`] both build
//! rows without depending on each other.

use geo::Area;
use serde::{Deserialize, Serialize};

use crate::features::CityFeatures;
use crate::model::predict::Predictions;

/// One held-out building.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvRow {
    /// The building's city.
    pub city: String,
    /// The building's id.
    pub id: String,
    /// The fold that held it out: the city's index for leave-one-city-out, the block fold
    /// otherwise.
    pub fold: usize,
    /// Its `ok` label (m): the truth it is scored against.
    pub truth_m: f64,
    /// The held-out prediction (m).
    pub predicted_m: f64,
    /// Lower bound (m) of the 90 % interval; NaN without intervals.
    pub lo_m: f64,
    /// Upper bound (m) of the 90 % interval; NaN without intervals.
    pub hi_m: f64,
    /// The baseline: median label of the fold's training buildings.
    pub baseline_m: f64,
    /// Footprint area (m²), for the metrics without sheds.
    pub area_m2: f64,
    /// Some feature lies outside the training range.
    pub ood: bool,
    /// `none` for the model alone, else the scenario (local data the city was given).
    #[serde(default = "no_scenario")]
    pub scenario: String,
    /// Share of the model's split gain held by features outside the training range.
    #[serde(default)]
    pub ood_gain_share: f64,
    /// Where the value comes from: `predicted` (the model alone), `recalibrated` (the model
    /// corrected with local data) or `sparse_lidar` (measured directly from a sparse survey).
    #[serde(default = "predicted_source")]
    pub source: String,
    /// How many features, and which (comma-separated).
    pub ood_feature_count: usize,
    /// The features outside the training range, comma-separated (empty when none).
    pub ood_feature_names: String,
}

fn no_scenario() -> String {
    NO_SCENARIO.into()
}

fn predicted_source() -> String {
    "predicted".into()
}

/// The scenario name of rows predicted from other cities alone.
pub const NO_SCENARIO: &str = "none";

/// The row of building `i` as the model alone predicts it.
pub fn held_out_row(
    city: &CityFeatures,
    p: &Predictions,
    i: usize,
    fold: usize,
    baseline: f64,
) -> CvRow {
    let truth = city
        .labels
        .as_ref()
        .and_then(|l| (l.rows[i].flag == crate::label::Flag::Ok).then_some(l.rows[i].height_m))
        .flatten();
    CvRow {
        city: city.city.clone(),
        id: city.ids[i].clone(),
        fold,
        truth_m: truth.unwrap_or(f64::NAN),
        predicted_m: p.predicted_m[i],
        lo_m: p.predicted_lo_m[i],
        hi_m: p.predicted_hi_m[i],
        baseline_m: baseline,
        area_m2: city.geometries[i].unsigned_area(),
        ood: p.ood_features[i] > 0,
        ood_feature_count: p.ood_features[i],
        ood_feature_names: p.ood_feature_names[i].clone(),
        scenario: NO_SCENARIO.into(),
        ood_gain_share: p.ood_gain_share[i],
        source: "predicted".into(),
    }
}
