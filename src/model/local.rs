//! Local recalibration: a model trained on other cities, corrected by the buildings of the
//! target region whose height is known (a share of measured labels, or heights measured
//! directly from a sparse survey). Cities differ mostly by a smooth distortion of the height
//! scale (Amsterdam's tall centre, Wageningen's low suburbs) plus neighbourhood effects, so:
//!
//! 1. a global linear map `truth ≈ a + b · predicted`, fitted on the known buildings and shrunk
//!    toward the identity by `n / (n + prior_n)` so a handful of buildings cannot swing it;
//! 2. the known buildings' remaining residuals, spread to their neighbours by an exponential
//!    kernel and shrunk toward zero where few are near (a simple kriging of residuals);
//! 3. intervals from the known buildings' leave-one-out residuals (split conformal inside the
//!    target city, scaled by the model's own interval width), which is what makes a 90 %
//!    interval hold in a city the model never saw. With too few known buildings for the level,
//!    the model's own interval is shifted by the correction instead.

use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde::{Deserialize, Serialize};

use super::intervals::conformal_quantile;

/// Settings of [`recalibrate`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalOptions {
    /// Pseudo-buildings of prior weight on "no correction" for the global map.
    pub prior_n: f64,
    /// Length scale (m) of the residual kernel, `exp(-d / scale)`.
    pub kernel_m: f64,
    /// Neighbours farther than this (m) are ignored.
    pub radius_m: f64,
    /// Prior weight (in kernel units) on zero local residual.
    pub prior_weight: f64,
    /// Miscoverage of the intervals (0.1: 90 %).
    pub alpha: f64,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            prior_n: 10.0,
            kernel_m: 60.0,
            radius_m: 300.0,
            prior_weight: 1.0,
            alpha: 0.1,
        }
    }
}

/// What the recalibration did, for reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalSummary {
    /// Known buildings used.
    pub known: usize,
    /// The shrunk global map: `a + b · predicted`.
    pub intercept: f64,
    /// `b` of the map above (1 when the model's scale needs no change).
    pub slope: f64,
    /// Conformal multiplier of the model's interval half-width; `None` when too few buildings
    /// were known for the level (the model's interval, shifted, is used then).
    pub interval_scale: Option<f64>,
}

/// Recalibrated heights and intervals for every building.
#[derive(Clone, Debug)]
pub struct Recalibrated {
    /// Corrected height (m) per building, in the order of the inputs.
    pub height_m: Vec<f64>,
    /// Lower bound (m) of the corrected interval.
    pub lo_m: Vec<f64>,
    /// Upper bound (m) of the corrected interval.
    pub hi_m: Vec<f64>,
    /// What the correction did.
    pub summary: LocalSummary,
}

/// Corrects `predicted` (with interval `lo`–`hi`) using the buildings whose `known` height is
/// given. Every building gets a corrected value, known ones included (their leave-one-out
/// value: a known building never corrects itself).
pub fn recalibrate(
    predicted: &[f64],
    lo: &[f64],
    hi: &[f64],
    centroids: &[[f64; 2]],
    known: &[Option<f64>],
    opts: &LocalOptions,
) -> Recalibrated {
    let n = predicted.len();
    let k: Vec<usize> = (0..n)
        .filter(|&i| {
            known[i].is_some_and(f64::is_finite)
                && predicted[i].is_finite()
                && centroids[i][0].is_finite()
        })
        .collect();
    let (a, b) = global_map(
        &k.iter().map(|&i| predicted[i]).collect::<Vec<_>>(),
        &k.iter()
            .map(|&i| known[i].expect("known"))
            .collect::<Vec<_>>(),
        opts.prior_n,
    );
    let mapped: Vec<f64> = predicted.iter().map(|p| a + b * p).collect();
    let residual: Vec<f64> = (0..n)
        .map(|i| known[i].map_or(f64::NAN, |y| y - mapped[i]))
        .collect();
    let tree: RTree<GeomWithData<[f64; 2], usize>> = RTree::bulk_load(
        k.iter()
            .map(|&i| GeomWithData::new(centroids[i], i))
            .collect(),
    );
    let local: Vec<f64> = (0..n)
        .map(|i| {
            let c = centroids[i];
            if !c[0].is_finite() {
                return 0.0;
            }
            let (mut sw, mut swr) = (0.0, 0.0);
            for p in tree.locate_within_distance(c, opts.radius_m * opts.radius_m) {
                if p.data == i {
                    continue;
                }
                let d = (p.geom()[0] - c[0]).hypot(p.geom()[1] - c[1]);
                let w = (-d / opts.kernel_m).exp();
                sw += w;
                swr += w * residual[p.data];
            }
            swr / (sw + opts.prior_weight)
        })
        .collect();
    let height: Vec<f64> = (0..n).map(|i| (mapped[i] + local[i]).max(0.0)).collect();
    // The model's half-width, corrected by the map's slope, is the difficulty scale.
    let half: Vec<f64> = (0..n)
        .map(|i| (b * (hi[i] - lo[i]) / 2.0).max(0.5))
        .collect();
    let scores: Vec<f64> = k
        .iter()
        .map(|&i| (known[i].expect("known") - height[i]).abs() / half[i])
        .collect();
    let q = conformal_quantile(&scores, &vec![1.0; scores.len()], opts.alpha);
    let (lo_m, hi_m): (Vec<f64>, Vec<f64>) = if q.is_finite() {
        (0..n)
            .map(|i| ((height[i] - q * half[i]).max(0.0), height[i] + q * half[i]))
            .unzip()
    } else {
        (0..n)
            .map(|i| {
                let shift = height[i] - predicted[i];
                let (l, h) = (lo[i] + shift, hi[i] + shift);
                (l.min(height[i]).max(0.0), h.max(height[i]))
            })
            .unzip()
    };
    Recalibrated {
        height_m: height,
        lo_m,
        hi_m,
        summary: LocalSummary {
            known: k.len(),
            intercept: a,
            slope: b,
            interval_scale: q.is_finite().then_some(q),
        },
    }
}

/// Least-squares `y ≈ a + b x`, shrunk toward (0, 1) by `n / (n + prior_n)`; slope kept in
/// [0.5, 3] so a few buildings cannot flip or explode the scale. With fewer than three points,
/// or no spread in `x`, only the mean shift (shrunk).
fn global_map(x: &[f64], y: &[f64], prior_n: f64) -> (f64, f64) {
    let n = x.len() as f64;
    if x.is_empty() {
        return (0.0, 1.0);
    }
    let shrink = n / (n + prior_n);
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    if x.len() < 3 || sxx <= 1e-9 {
        return (shrink * (my - mx), 1.0);
    }
    let b_fit = (sxy / sxx).clamp(0.5, 3.0);
    let b = 1.0 + shrink * (b_fit - 1.0);
    // The line passes through the (shrunk) mean point.
    let a = (mx + shrink * (my - mx)) - b * mx;
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_map_shrinks_toward_identity() {
        // Truth = 2 * predicted: 100 known buildings pull the slope near 2, 3 barely move it.
        let x: Vec<f64> = (0..100).map(|v| 5.0 + v as f64 * 0.2).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        let (a, b) = global_map(&x, &y, 10.0);
        assert!((b - (1.0 + 100.0 / 110.0)).abs() < 1e-9, "{b}");
        assert!((a + b * 10.0 - 2.0 * 10.0).abs() < 2.5, "{a}");
        let (_, b3) = global_map(&x[..3], &y[..3], 10.0);
        assert!(b3 < 1.3, "{b3}");
        assert_eq!(global_map(&[], &[], 10.0), (0.0, 1.0));
    }

    #[test]
    fn neighbours_correct_a_local_bias_and_intervals_cover() {
        // A street whose buildings are all 6 m taller than predicted, one building in four known.
        let n = 200;
        let centroids: Vec<[f64; 2]> = (0..n).map(|i| [i as f64 * 10.0, 0.0]).collect();
        let truth: Vec<f64> = (0..n).map(|i| 10.0 + (i % 7) as f64).collect();
        let pred: Vec<f64> = truth.iter().map(|t| t - 6.0).collect();
        let lo: Vec<f64> = pred.iter().map(|p| p - 2.0).collect();
        let hi: Vec<f64> = pred.iter().map(|p| p + 2.0).collect();
        let known: Vec<Option<f64>> = (0..n).map(|i| (i % 4 == 0).then_some(truth[i])).collect();
        let r = recalibrate(
            &pred,
            &lo,
            &hi,
            &centroids,
            &known,
            &LocalOptions::default(),
        );
        let unknown: Vec<usize> = (0..n).filter(|i| i % 4 != 0).collect();
        let mae = unknown
            .iter()
            .map(|&i| (r.height_m[i] - truth[i]).abs())
            .sum::<f64>()
            / unknown.len() as f64;
        assert!(mae < 2.5, "MAE after recalibration {mae} (6 before)");
        let covered = unknown
            .iter()
            .filter(|&&i| r.lo_m[i] <= truth[i] && truth[i] <= r.hi_m[i])
            .count() as f64
            / unknown.len() as f64;
        assert!(covered >= 0.8, "{covered}");
        assert!(r.summary.interval_scale.is_some());
    }
}
