//! 90 % prediction intervals by conformalized quantile regression (CQR): boosted models for the
//! 5 % and 95 % quantiles, widened (or narrowed) by a conformal correction computed on
//! held-out data. Calibrating on whole held-out cities (each city weighted equally) makes the
//! interval honest for a city the model never saw, which is where users need it.

use hessboost::model::BoostedModel;
use hessboost::objective::{Objective, Quantiles};
use ndarray::{Array1, Array2, ArrayBase, Axis, Data, Ix2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::boosting::{predict_booster, GbmValidParams};
use crate::error::{Error, Result};

/// How an interval model was calibrated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Miscoverage level: 0.1 for a 90 % interval.
    pub alpha: f64,
    /// Added to both quantile bounds' distance from the truth (m); negative narrows.
    pub correction: f64,
    /// `grouped` (each group left out in turn, groups weighted equally) or `holdout`.
    pub method: CalibrationMethod,
    /// The groups (cities or blocks) calibration held out.
    pub groups: Vec<String>,
    /// Calibration buildings.
    pub n: usize,
    /// The correction multiplies each building's quantile spread (`q_hi - q_lo`, at least
    /// 1 m) instead of being added in metres: wide where the quantile models disagree.
    #[serde(default)]
    pub scaled: bool,
    /// How the held-out groups' scores were combined.
    #[serde(default)]
    pub rule: IntervalRule,
    /// The quantiles and the correction are in ln(height) above the city's level
    /// ([`super::level`]): bounds are `exp(level + q ∓ correction)`, so an interval is a
    /// factor, wide in metres where heights are. Files without it are in metres.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_scale: bool,
}

/// How an interval model's correction was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMethod {
    /// Each group (city or block) left out in turn, groups weighted equally.
    Grouped,
    /// Split conformal on one held-out calibration set.
    Holdout,
}

impl std::fmt::Display for CalibrationMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CalibrationMethod::Grouped => "grouped",
            CalibrationMethod::Holdout => "holdout",
        })
    }
}

/// How grouped calibration treats its groups (see [`IntervalModel::fit_grouped`]).
#[derive(Clone, Debug, Default)]
pub struct Grouping {
    /// How the groups' scores combine.
    pub rule: IntervalRule,
    /// Added to a held-out group's targets before they are scored, by group id (missing:
    /// 0): the error of that group's level as the other groups estimate it, so the correction
    /// covers a new city's level being unknown as well as its structure.
    pub offsets: Vec<f64>,
    /// Targets are ln(height) above the city level, not metres.
    pub log_scale: bool,
}

/// How grouped calibration turns the held-out groups' conformity scores into one correction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntervalRule {
    /// Every group weighted equally, one conformal quantile over all scores.
    Pooled,
    /// Each group's own conformal quantile; the largest wins. A city unlike the others then
    /// widens the interval instead of being outvoted.
    WorstCity,
    /// As `worst-city`, on scores divided by the quantile spread (normalised CQR).
    #[default]
    ScaledWorstCity,
}

impl IntervalRule {
    /// The name the command line and `roofline.json` use.
    pub fn as_str(&self) -> &'static str {
        match self {
            IntervalRule::Pooled => "pooled",
            IntervalRule::WorstCity => "worst-city",
            IntervalRule::ScaledWorstCity => "scaled-worst-city",
        }
    }
}

impl Calibration {
    /// The correction in its unit: metres, or a multiple of the quantile spread.
    pub fn correction_text(&self) -> String {
        match (self.scaled, self.log_scale) {
            (true, _) => format!("{:+.2} × the quantile spread", self.correction),
            (false, true) => format!("×{:.2} on each side", self.correction.exp()),
            (false, false) => format!("{:+.2} m", self.correction),
        }
    }

    /// Spread below which a quantile interval is not trusted to scale a correction.
    fn min_spread(&self) -> f64 {
        min_spread(self.log_scale)
    }
}

/// Spread below which a quantile interval is not trusted to scale a correction: 1 m, or 0.1
/// in ln(height) (10 %).
fn min_spread(log_scale: bool) -> f64 {
    if log_scale {
        0.1
    } else {
        1.0
    }
}

/// The interval half of a height model: two quantile boosters and their conformal correction.
#[derive(Clone, Debug)]
pub struct IntervalModel {
    /// Two outputs: the alpha/2 and 1 - alpha/2 quantiles.
    pub quantiles: BoostedModel,
    /// The correction applied to the raw quantiles, and how it was found.
    pub calibration: Calibration,
}

/// Trains the two-quantile booster.
pub fn fit_quantiles(
    params: &GbmValidParams,
    alpha: f64,
    x: &Array2<f64>,
    y: &Array1<f64>,
) -> Result<BoostedModel> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::invalid(format!(
            "interval miscoverage must be in (0, 1), got {alpha}"
        )));
    }
    let q = Quantiles::new([alpha / 2.0, 1.0 - alpha / 2.0])?;
    params.train_booster(Objective::Quantile(q), x, y)
}

/// CQR conformity scores: how far the truth lies outside [q_lo, q_hi] (negative inside).
pub fn cqr_scores<D: Data<Elem = f64>>(
    q: &BoostedModel,
    x: &ArrayBase<D, Ix2>,
    y: &Array1<f64>,
) -> Result<Vec<f64>> {
    let p = predict_booster(q, x)?;
    Ok((0..y.len())
        .map(|i| (p[[i, 0]] - y[i]).max(y[i] - p[[i, 1]]))
        .collect())
}

/// The conformal quantile of weighted scores: the smallest score whose cumulative weight
/// reaches (1 - alpha)(1 + 1/n) — with equal weights, the ⌈(n + 1)(1 - alpha)⌉-th smallest
/// score, the split-conformal rule. Infinite when there are too few scores for the level.
pub fn conformal_quantile(scores: &[f64], weights: &[f64], alpha: f64) -> f64 {
    let n = scores.len();
    if n == 0 {
        return f64::INFINITY;
    }
    let total: f64 = weights.iter().sum();
    let level = (1.0 - alpha) * (1.0 + 1.0 / n as f64);
    if level > 1.0 + 1e-12 {
        return f64::INFINITY;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut cum = 0.0;
    for &i in &order {
        cum += weights[i] / total;
        if cum >= level - 1e-12 {
            return scores[i];
        }
    }
    scores[order[n - 1]]
}

/// Quantile spreads `q_hi - q_lo` (at least [`min_spread`]).
fn spreads<D: Data<Elem = f64>>(
    q: &BoostedModel,
    x: &ArrayBase<D, Ix2>,
    floor: f64,
) -> Result<Vec<f64>> {
    let p = predict_booster(q, x)?;
    Ok((0..p.nrows())
        .map(|i| (p[[i, 1]] - p[[i, 0]]).max(floor))
        .collect())
}

impl IntervalModel {
    /// Quantiles trained on `train`, corrected on a separate calibration set.
    pub fn fit_holdout(
        params: &GbmValidParams,
        alpha: f64,
        (xt, yt): (&Array2<f64>, &Array1<f64>),
        (xc, yc): (&Array2<f64>, &Array1<f64>),
    ) -> Result<IntervalModel> {
        let quantiles = fit_quantiles(params, alpha, xt, yt)?;
        let scores = cqr_scores(&quantiles, xc, yc)?;
        let correction = conformal_quantile(&scores, &vec![1.0; scores.len()], alpha);
        Ok(IntervalModel {
            quantiles,
            calibration: Calibration {
                alpha,
                correction,
                method: CalibrationMethod::Holdout,
                groups: vec!["calibration set".into()],
                n: scores.len(),
                scaled: false,
                rule: IntervalRule::Pooled,
                log_scale: false,
            },
        })
    }

    /// Quantiles trained on all rows; the correction from leaving each group out in turn
    /// (a quantile model trained on the other groups scores the held-out group), the groups'
    /// scores combined as `how` says. Needs at least two groups.
    pub fn fit_grouped(
        params: &GbmValidParams,
        alpha: f64,
        x: &Array2<f64>,
        y: &Array1<f64>,
        groups: &[usize],
        group_names: &[String],
        how: &Grouping,
    ) -> Result<IntervalModel> {
        let rule = how.rule;
        let floor = min_spread(how.log_scale);
        let mut ids: Vec<usize> = groups.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() < 2 {
            return Err(Error::invalid(
                "grouped calibration needs at least two groups",
            ));
        }
        // The held-out-group models and the final one are independent: train them side by
        // side, one thread each.
        let single = params.on_threads(1);
        let jobs: Vec<Option<usize>> = ids
            .iter()
            .map(|&g| Some(g))
            .chain(std::iter::once(None))
            .collect();
        type Scored = (Option<(Vec<f64>, Vec<f64>)>, Option<BoostedModel>);
        let results: Vec<Scored> = jobs
            .par_iter()
            .map(|job| match job {
                Some(g) => {
                    let test: Vec<usize> = (0..y.len()).filter(|&i| groups[i] == *g).collect();
                    let train: Vec<usize> = (0..y.len()).filter(|&i| groups[i] != *g).collect();
                    if train.is_empty() || test.is_empty() {
                        return Ok((None, None));
                    }
                    let q = fit_quantiles(
                        &single,
                        alpha,
                        &x.select(Axis(0), &train),
                        &y.select(Axis(0), &train),
                    )?;
                    let xt = x.select(Axis(0), &test);
                    let offset = how.offsets.get(*g).copied().unwrap_or(0.0);
                    let yt = y.select(Axis(0), &test).mapv(|v| v + offset);
                    Ok((
                        Some((cqr_scores(&q, &xt, &yt)?, spreads(&q, &xt, floor)?)),
                        None,
                    ))
                }
                None => Ok((None, Some(fit_quantiles(&single, alpha, x, y)?))),
            })
            .collect::<Result<_>>()?;
        let mut per_group: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        let mut quantiles = None;
        for (s, q) in results {
            per_group.extend(s);
            quantiles = quantiles.or(q);
        }
        let n: usize = per_group.iter().map(|(s, _)| s.len()).sum();
        let scaled = rule == IntervalRule::ScaledWorstCity;
        let correction = match rule {
            IntervalRule::Pooled => {
                let mut scores = Vec::new();
                let mut weights = Vec::new();
                for (s, _) in &per_group {
                    weights.extend(std::iter::repeat_n(1.0 / s.len() as f64, s.len()));
                    scores.extend(s);
                }
                conformal_quantile(&scores, &weights, alpha)
            }
            IntervalRule::WorstCity | IntervalRule::ScaledWorstCity => per_group
                .iter()
                .map(|(s, w)| {
                    let v: Vec<f64> = if scaled {
                        s.iter().zip(w).map(|(a, b)| a / b).collect()
                    } else {
                        s.clone()
                    };
                    // A group too small for the level counts with its largest score.
                    let q = conformal_quantile(&v, &vec![1.0; v.len()], alpha);
                    if q.is_finite() {
                        q
                    } else {
                        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    }
                })
                .fold(f64::NEG_INFINITY, f64::max),
        };
        Ok(IntervalModel {
            quantiles: quantiles.expect("the final model is one of the jobs"),
            calibration: Calibration {
                alpha,
                correction,
                method: CalibrationMethod::Grouped,
                groups: ids.iter().map(|&g| group_names[g].clone()).collect(),
                n,
                scaled,
                rule,
                log_scale: how.log_scale,
            },
        })
    }

    /// Lower and upper bounds: [q_lo - Q, q_hi + Q] (in ln(height) above the city level when
    /// [`Calibration::log_scale`]: the caller adds the level and takes `exp`).
    pub fn predict<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
    ) -> Result<(Array1<f64>, Array1<f64>)> {
        let p = predict_booster(&self.quantiles, x)?;
        let q = self.calibration.correction;
        if self.calibration.scaled {
            let floor = self.calibration.min_spread();
            let w: Array1<f64> = (0..p.nrows())
                .map(|i| q * (p[[i, 1]] - p[[i, 0]]).max(floor))
                .collect();
            return Ok((&p.column(0) - &w, &p.column(1) + &w));
        }
        Ok((p.column(0).mapv(|v| v - q), p.column(1).mapv(|v| v + q)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_give_the_split_conformal_rank() {
        // n = 19, alpha = 0.1: the ceil(20 * 0.9) = 18th smallest score.
        let scores: Vec<f64> = (1..=19).map(|v| v as f64).collect();
        assert_eq!(conformal_quantile(&scores, &[1.0; 19], 0.1), 18.0);
        // n = 5 is too few for 90 %: infinite.
        assert!(conformal_quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0; 5], 0.1).is_infinite());
    }

    #[test]
    fn weights_balance_groups() {
        // A big group with small scores and a small group with large ones: equal group weights
        // push the quantile into the small group's scores.
        let mut s = vec![0.0; 90];
        let mut w = vec![1.0 / 90.0; 90];
        s.extend((1..=10).map(|v| v as f64));
        w.extend([0.1; 10]);
        let q = conformal_quantile(&s, &w, 0.1);
        assert!(q >= 8.0, "{q}");
    }
}
