//! What-if scenarios of leave-one-city-out: the held-out city is given the local data a user
//! without a full survey might have — a sparse point cloud (its own survey, degraded) or a small
//! share of measured buildings — and its full labels are kept only as the truth. The model is
//! the same one that predicts the city with no local data, so each scenario's gain is measured
//! on the same folds.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::rows::{held_out_row, CvRow};
use crate::config::{CityConfig, LabelConfig};
use crate::error::Result;
use crate::features::CityFeatures;
use crate::io::pointcloud::open_point_clouds;
use crate::label::sparse::{direct_estimates, MIN_ROOF_POINTS};
use crate::label::sparsify::{Sparsify, SparsifyPlan};
use crate::model::anchor::{apply_local, Draw, Known, LocalData, Reveal, Source};
use crate::model::level::AREA;
use crate::model::local::{LocalOptions, LocalSummary, Sites};
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
    /// A seeded sample of the city's labelled buildings is known; the rest are scored.
    LocalLabels {
        /// How many are known: a share or a count (`share` and a bare number in folders
        /// written before counts existed).
        #[serde(alias = "share", deserialize_with = "reveal_or_share")]
        known: Reveal,
        /// Where they lie.
        #[serde(default)]
        draw: Draw,
    },
}

/// A [`Reveal`], or a bare share as `metrics.json` held it before counts existed.
fn reveal_or_share<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Reveal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Share(f64),
        Reveal(Reveal),
    }
    Ok(match Either::deserialize(d)? {
        Either::Share(s) => Reveal::Share(s),
        Either::Reveal(r) => r,
    })
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::SparseLidar { sparsify } => write!(f, "sparse-lidar {sparsify}"),
            Scenario::LocalLabels {
                known,
                draw: Draw::Spread,
            } => write!(f, "local-labels {known}"),
            Scenario::LocalLabels { known, draw } => write!(f, "local-labels {known} {draw}"),
        }
    }
}

/// A scenario by name, as the Python package takes them: sparse LiDAR as `KIND=VALUE`
/// (`density=0.05`, `strips=0.3`, `tracks=500`), known buildings as `SHARE|COUNT[:DRAW]`
/// (`0.02`, `20`, `20:clustered`; spread unless said).
impl std::str::FromStr for Scenario {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Scenario> {
        if s.contains('=') {
            return Ok(Scenario::SparseLidar {
                sparsify: s.parse()?,
            });
        }
        let (known, draw) = crate::model::anchor::parse_known(s)?;
        Ok(Scenario::LocalLabels {
            known,
            draw: draw.unwrap_or_default(),
        })
    }
}

impl Scenario {
    /// `--local-labels SHARE|COUNT`, drawn as `draw`.
    pub fn local_labels(known: &str, draw: Draw) -> Result<Scenario> {
        Ok(Scenario::LocalLabels {
            known: known.parse()?,
            draw,
        })
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
    /// How the model is recalibrated on what the scenario knows (as `predict` would).
    pub anchoring: LocalOptions,
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
    match scenario {
        Scenario::LocalLabels { .. } if held.test.len() < 2 => {
            summary.skipped = Some("fewer than two labelled buildings".into());
            Ok((Vec::new(), summary))
        }
        Scenario::LocalLabels { known, draw } => {
            // Never all of them: something must be left to score.
            let reveal = Reveal::Count(known.of(held.test.len()).min(held.test.len() - 1));
            let local = LocalData {
                sparse: None,
                recalibrate: true,
                known: Some(Known {
                    reveal,
                    draw: *draw,
                    seed: held.seed,
                }),
            };
            Ok((held.anchored_rows(&local, &mut summary), summary))
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
            // The full labels are only the truth: nothing is measured but the sparse survey.
            let local = LocalData {
                sparse: Some((sparse, held.predictions.label.clone())),
                recalibrate: true,
                known: Some(Known {
                    reveal: Reveal::Count(0),
                    draw: Draw::Spread,
                    seed: held.seed,
                }),
            };
            Ok((held.anchored_rows(&local, &mut summary), summary))
        }
    }
}

impl HeldOut<'_> {
    /// The model's predictions with `local` applied as `predict` applies it; a row for each
    /// labelled building that was not kept as measured.
    fn anchored_rows(&self, local: &LocalData, summary: &mut ScenarioCity) -> Vec<CvRow> {
        let mut p = self.predictions.clone();
        let label = p.label.clone();
        let area = self.city.column_or_nan(AREA);
        let (_, features) = self.city.footprint_features();
        let sites = Sites {
            centroids: &self.city.centroids,
            area_m2: &area,
            features: features.view(),
        };
        let r = apply_local(p.rows_mut(), sites, local, &label, &self.anchoring);
        summary.known = r.as_ref().map_or(0, |r| r.known);
        summary.recalibration = r;
        self.test
            .iter()
            .filter(|&&i| !p.source[i].is_label())
            .map(|&i| self.row(i, p.height_m[i], p.lo_m[i], p.hi_m[i], p.source[i]))
            .collect()
    }

    fn row(&self, i: usize, value: f64, lo: f64, hi: f64, source: Source) -> CvRow {
        let mut row = held_out_row(self.city, self.predictions, i, self.fold, self.baseline_m);
        row.predicted_m = value;
        row.lo_m = lo;
        row.hi_m = hi;
        row.source = source.as_str().into();
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_read_back_as_written_and_as_older_folders_wrote_them() {
        let now = Scenario::LocalLabels {
            known: Reveal::Count(20),
            draw: Draw::Clustered,
        };
        let json = serde_json::to_string(&now).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), now);
        let old: Scenario =
            serde_json::from_str(r#"{"kind":"local_labels","share":0.05}"#).unwrap();
        assert_eq!(
            old,
            Scenario::LocalLabels {
                known: Reveal::Share(0.05),
                draw: Draw::Spread,
            }
        );
        assert_eq!(old.to_string(), "local-labels 0.05");
    }

    #[test]
    fn scenarios_parse_by_name() {
        let s: Scenario = "density=0.05".parse().unwrap();
        assert_eq!(s.to_string(), "sparse-lidar density=0.05");
        let s: Scenario = "20:clustered".parse().unwrap();
        assert_eq!(s.to_string(), "local-labels 20 clustered");
        let s: Scenario = "0.02".parse().unwrap();
        assert_eq!(s.to_string(), "local-labels 0.02");
        assert!("density=-1".parse::<Scenario>().is_err());
        assert!("20:everywhere".parse::<Scenario>().is_err());
    }
}
