//! What-if scenarios of leave-one-city-out: the held-out city is given the local data a user
//! without a full survey might have — a sparse point cloud (its own survey, degraded) or a small
//! share of measured buildings — and its full labels are kept only as the truth. The model is
//! the same one that predicts the city with no local data, so each scenario's gain is measured
//! on the same folds.

use std::fmt;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::rows::{held_out_row, CvRow};
use crate::config::{CityConfig, LabelConfig};
use crate::error::{Error, Result};
use crate::features::CityFeatures;
use crate::io::pointcloud::open_point_clouds;
use crate::io::sparsify::{Sparsify, SparsifyPlan};
use crate::label::sparse::{direct_estimates, SparseHeights, MIN_ROOF_POINTS};
use crate::model::local::{recalibrate, LocalOptions, LocalSummary};
use crate::model::predict::Predictions;
use crate::progress::Progress;

/// Local data the held-out city is given.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scenario {
    /// The city's own survey, degraded: direct estimates where it still hits a building, and
    /// those estimates recalibrate the model for the rest.
    SparseLidar {
        /// How the survey is degraded.
        sparsify: Sparsify,
    },
    /// A seeded random share of the city's labelled buildings is known; the rest are scored.
    LocalLabels {
        /// The share revealed, in (0, 1).
        share: f64,
    },
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::SparseLidar { sparsify } => write!(f, "sparse-lidar {sparsify}"),
            Scenario::LocalLabels { share } => write!(f, "local-labels {share}"),
        }
    }
}

impl Scenario {
    /// `--local-labels SHARE`.
    pub fn local_labels(share: f64) -> Result<Scenario> {
        if share > 0.0 && share < 1.0 {
            Ok(Scenario::LocalLabels { share })
        } else {
            Err(Error::invalid(format!(
                "--local-labels {share}: the share must be in (0, 1), e.g. 0.05"
            )))
        }
    }
}

/// How a held-out city fared under one scenario (metrics are computed from its rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioCity {
    /// The held-out city.
    pub city: String,
    /// Why the scenario does not apply (e.g. no point cloud), when it does not.
    pub skipped: Option<String>,
    /// Points the city's full survey holds, and those the scenario kept (sparse LiDAR).
    pub points_full: u64,
    /// Points the scenario kept (0 for scenarios without a survey).
    pub points_kept: u64,
    /// Buildings measured directly from the sparse survey.
    pub direct: usize,
    /// Buildings whose height was known to the recalibration (local labels or direct estimates).
    pub known: usize,
    /// What the local recalibration did; `None` when nothing was known to recalibrate with.
    pub recalibration: Option<LocalSummary>,
}

/// Everything a scenario needs about the held-out city.
pub struct HeldOut<'a> {
    /// The held-out city's features and (full) labels.
    pub city: &'a CityFeatures,
    /// Its config, for scenarios that re-read its point clouds; `None` skips those.
    pub config: Option<&'a CityConfig>,
    /// The LOCO model's predictions for every building of the city.
    pub predictions: &'a Predictions,
    /// Labelled buildings (scored), in footprint order.
    pub test: &'a [usize],
    /// The fold number written in the rows.
    pub fold: usize,
    /// The baseline height (m): the training buildings' median.
    pub baseline_m: f64,
    /// Seed of the scenario's random choices (which labels are revealed, thinning).
    pub seed: u64,
}

/// Rows and summary of one scenario on one held-out city.
pub fn run_scenario(
    scenario: &Scenario,
    held: &HeldOut<'_>,
    progress: &Progress,
) -> Result<(Vec<CvRow>, ScenarioCity)> {
    let city = held.city;
    let mut summary = ScenarioCity {
        city: city.city.clone(),
        skipped: None,
        points_full: 0,
        points_kept: 0,
        direct: 0,
        known: 0,
        recalibration: None,
    };
    let truth = city.ok_labels();
    let p = held.predictions;
    let opts = LocalOptions::default();
    match scenario {
        Scenario::LocalLabels { .. } if held.test.len() < 2 => {
            summary.skipped = Some("fewer than two labelled buildings".into());
            Ok((Vec::new(), summary))
        }
        Scenario::LocalLabels { share } => {
            let mut pool = held.test.to_vec();
            pool.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
                held.seed ^ 0x10CA_1AB5,
            ));
            // At least one known building (when there is any), never all of them.
            let k = ((share * pool.len() as f64).round() as usize)
                .max(1)
                .min(pool.len());
            let mut known = vec![None; city.len()];
            for &i in &pool[..k] {
                known[i] = truth[i];
            }
            let r = recalibrate(
                &p.predicted_m,
                &p.predicted_lo_m,
                &p.predicted_hi_m,
                &city.centroids,
                &known,
                &opts,
            );
            summary.known = r.summary.known;
            summary.recalibration = Some(r.summary.clone());
            let rows = held
                .test
                .iter()
                .filter(|&&i| known[i].is_none())
                .map(|&i| held.row(i, r.height_m[i], r.lo_m[i], r.hi_m[i], "recalibrated"))
                .collect();
            Ok((rows, summary))
        }
        Scenario::SparseLidar { sparsify } => {
            let (Some(cfg), Some(LabelConfig::Lidar(def))) =
                (held.config, held.config.and_then(|c| c.label.as_ref()))
            else {
                summary.skipped = Some("no LiDAR labels to degrade".into());
                return Ok((Vec::new(), summary));
            };
            let lidar = cfg.lidar.as_ref().expect("LiDAR labels come with [lidar]");
            let clouds = open_point_clouds(lidar, &city.crs)?;
            let plan = SparsifyPlan::for_clouds(
                *sparsify,
                held.seed,
                &clouds,
                &city.crs,
                &def.point_classes(),
            )?;
            let fp = city.footprints(&cfg.path);
            let sparse =
                direct_estimates(&fp, &clouds, def, Some(&plan), MIN_ROOF_POINTS, progress)?;
            summary.points_full = city.labels.as_ref().map_or(0, |l| l.points_read);
            summary.points_kept = sparse.points_read;
            summary.direct = sparse.estimated();
            let rows = sparse_rows(held, &sparse, &opts, &mut summary);
            Ok((rows, summary))
        }
    }
}

/// Direct estimates where the thinned survey hits a building; the rest recalibrated on them.
fn sparse_rows(
    held: &HeldOut<'_>,
    sparse: &SparseHeights,
    opts: &LocalOptions,
    summary: &mut ScenarioCity,
) -> Vec<CvRow> {
    let p = held.predictions;
    let r = recalibrate(
        &p.predicted_m,
        &p.predicted_lo_m,
        &p.predicted_hi_m,
        &held.city.centroids,
        &sparse.height_m,
        opts,
    );
    summary.known = r.summary.known;
    summary.recalibration = Some(r.summary.clone());
    held.test
        .iter()
        .map(|&i| match sparse.height_m[i] {
            Some(h) => {
                let w = sparse.half_width_m[i];
                held.row(i, h, (h - w).max(0.0), h + w, "sparse_lidar")
            }
            None => held.row(i, r.height_m[i], r.lo_m[i], r.hi_m[i], "recalibrated"),
        })
        .collect()
}

impl HeldOut<'_> {
    fn row(&self, i: usize, value: f64, lo: f64, hi: f64, source: &str) -> CvRow {
        let mut row = held_out_row(self.city, self.predictions, i, self.fold, self.baseline_m);
        row.predicted_m = value;
        row.lo_m = lo;
        row.hi_m = hi;
        row.source = source.into();
        row
    }
}
