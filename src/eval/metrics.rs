//! Error metrics of held-out predictions. One [`Metrics`] value per city (and pooled), for the
//! model and for the "training median" baseline; serialized to `metrics.json` and rendered by
//! the report, so every number has one source.

use linfa::prelude::SingleTargetRegression;
use ndarray::Array1;
use serde::{Deserialize, Serialize};

/// Height bins (m) for the per-bin table: errors in short and tall buildings differ in kind.
pub const BINS: [(f64, f64); 4] = [(0.0, 6.0), (6.0, 12.0), (12.0, 20.0), (20.0, f64::INFINITY)];
/// Share of predictions within this many metres of the truth (about one floor).
pub const FLOOR_M: f64 = 2.5;
/// Footprints smaller than this (m²) are sheds; metrics are also given without them.
pub const SHED_M2: f64 = 10.0;

/// Errors of the buildings whose true height falls in one of [`BINS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinMetrics {
    /// e.g. "0-6", "20+" (m, by true height).
    pub bin: String,
    /// Buildings in the bin.
    pub n: usize,
    /// MAE (m); `None` for an empty bin.
    pub mae: Option<f64>,
    /// Mean of prediction − truth (m); `None` for an empty bin.
    pub bias: Option<f64>,
}

/// Errors of a set of held-out predictions, all in metres. Undefined values (no buildings)
/// are NaN (or `None` for optional ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Buildings scored.
    pub n: usize,
    /// Mean absolute error (m).
    pub mae: f64,
    /// Root mean squared error (m).
    pub rmse: f64,
    /// R² against the scored buildings' own mean height: below 0 is worse than that oracle
    /// mean, which no model trained elsewhere knows; compare with the baseline instead.
    pub r2: f64,
    /// Median absolute error (m).
    pub median_ae: f64,
    /// Mean of prediction − truth (m): positive overestimates.
    pub bias: f64,
    /// Share of buildings predicted within ±2.5 m.
    pub within_2_5m: f64,
    /// MAE over buildings of at least 10 m² (sheds left out).
    pub mae_without_sheds: Option<f64>,
    /// Errors per true-height bin, one entry per [`BINS`] entry.
    pub bins: Vec<BinMetrics>,
    /// Share of buildings whose truth lies in the 90 % interval, when there are intervals.
    pub coverage: Option<f64>,
    /// Median of `hi - lo` (m), when there are intervals.
    pub median_interval_width: Option<f64>,
    /// Share of buildings with a feature outside the training range (`ood`).
    pub out_of_range_share: Option<f64>,
    /// Interval coverage over the buildings inside the training range.
    pub coverage_in_range: Option<f64>,
}

/// Metrics of predictions against the truth; `lo`/`hi` may be empty (no intervals).
pub fn metrics(truth: &[f64], pred: &[f64], lo: &[f64], hi: &[f64], area: &[f64]) -> Metrics {
    let n = truth.len();
    let t = Array1::from(truth.to_vec());
    let p = Array1::from(pred.to_vec());
    let err: Vec<f64> = pred.iter().zip(truth).map(|(p, t)| p - t).collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let bins = BINS
        .iter()
        .map(|&(a, b)| {
            let e: Vec<f64> = (0..n)
                .filter(|&i| truth[i] >= a && truth[i] < b)
                .map(|i| err[i])
                .collect();
            BinMetrics {
                bin: if b.is_finite() {
                    format!("{a}-{b}")
                } else {
                    format!("{a}+")
                },
                n: e.len(),
                mae: (!e.is_empty()).then(|| mean(&e.iter().map(|x| x.abs()).collect::<Vec<_>>())),
                bias: (!e.is_empty()).then(|| mean(&e)),
            }
        })
        .collect();
    let big: Vec<f64> = (0..n)
        .filter(|&i| area[i] >= SHED_M2)
        .map(|i| err[i].abs())
        .collect();
    let with_intervals = !lo.is_empty() && lo.len() == n;
    let (coverage, width) = if with_intervals && n > 0 {
        let cov = (0..n)
            .filter(|&i| truth[i] >= lo[i] && truth[i] <= hi[i])
            .count() as f64
            / n as f64;
        let mut w: Vec<f64> = (0..n).map(|i| hi[i] - lo[i]).collect();
        w.sort_by(f64::total_cmp);
        (
            Some(cov),
            Some(crate::stats::percentile::percentile_sorted(&w, 50.0)),
        )
    } else {
        (None, None)
    };
    Metrics {
        n,
        mae: p.mean_absolute_error(&t).unwrap_or(f64::NAN),
        rmse: p.mean_squared_error(&t).map(f64::sqrt).unwrap_or(f64::NAN),
        r2: p.r2(&t).unwrap_or(f64::NAN),
        // linfa's median panics on no rows (usize underflow), so empty sets are NaN here.
        median_ae: if n == 0 {
            f64::NAN
        } else {
            p.median_absolute_error(&t).unwrap_or(f64::NAN)
        },
        bias: mean(&err),
        within_2_5m: if n == 0 {
            f64::NAN
        } else {
            err.iter().filter(|e| e.abs() <= FLOOR_M).count() as f64 / n as f64
        },
        mae_without_sheds: (!big.is_empty()).then(|| mean(&big)),
        bins,
        coverage,
        median_interval_width: width,
        out_of_range_share: None,
        coverage_in_range: None,
    }
}

/// What a negative R² means, for the cities that have one.
pub fn negative_r2_note(cities: &[&str]) -> String {
    format!(
        "**Negative R²** ({}): R² compares the model with predicting every building at the held-out \
city's *own* mean height — a number no model trained on other cities knows. Below 0 means the \
model's squared error is larger than that oracle's, not that it is useless: compare its MAE with \
the baseline MAE column (the training buildings' median height, which is all a model without \
local labels can fall back on).",
        cities.join(", ")
    )
}

/// Mean, smallest and largest of a measure over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean over seeds.
    pub mean: f64,
    /// Smallest over seeds.
    pub min: f64,
    /// Largest over seeds.
    pub max: f64,
}

impl Spread {
    /// The spread of `v` (NaN-free).
    pub fn of(v: &[f64]) -> Spread {
        Spread {
            mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One held-out city under one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationCity {
    /// The held-out city.
    pub city: String,
    /// Mean absolute error (m) over seeds.
    pub mae: Spread,
    /// Mean signed error, predicted − measured (m), over seeds.
    pub bias: Spread,
}

/// One variant over every held-out city.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationRow {
    /// The variant's name ([`crate::eval::ablation::Variant::name`]).
    pub variant: String,
    /// What it changes.
    pub meaning: String,
    /// The seeds it ran with.
    pub seeds: Vec<u64>,
    /// Per held-out city, in the order of the cities.
    pub per_city: Vec<AblationCity>,
    /// The mean over cities of the MAE, per seed, summarised over seeds.
    pub mean_mae: Spread,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_numbers() {
        let truth = [3.0, 8.0, 15.0, 25.0];
        let pred = [4.0, 6.0, 15.0, 29.0];
        let m = metrics(
            &truth,
            &pred,
            &[2.0, 7.0, 10.0, 20.0],
            &[5.0, 9.0, 20.0, 24.0],
            &[5.0, 50.0, 100.0, 200.0],
        );
        assert_eq!(m.n, 4);
        assert!((m.mae - 7.0 / 4.0).abs() < 1e-12);
        assert!((m.rmse - (21.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((m.bias - 3.0 / 4.0).abs() < 1e-12);
        assert!((m.within_2_5m - 0.75).abs() < 1e-12);
        assert!((m.median_ae - 1.5).abs() < 1e-12);
        assert_eq!(m.coverage, Some(0.75));
        assert_eq!(m.mae_without_sheds, Some(2.0));
        assert_eq!(m.bins[3].n, 1);
        assert_eq!(m.bins[3].bias, Some(4.0));
        assert_eq!(m.bins[1].mae, Some(2.0));
    }
}
