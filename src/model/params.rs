//! The training parameters a user sets, by name: `roofline train`/`cv`'s model flags and the
//! Python package's keyword arguments are one typed record, checked in one place, so a
//! parameter means the same thing from either side and a misspelt one is an error, not a
//! silently ignored default.

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use super::boosting::{GbmParams, Loss};
use super::forest::ForestParams;
use super::intervals::IntervalRule;
use super::train::TrainOptions;
use super::ModelKind;
use crate::error::{Error, Result};

/// The point loss of gbm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointLoss {
    /// Squared error.
    #[default]
    Squared,
    /// Pseudo-Huber with a slope of 1 m: large errors weigh linearly.
    Huber,
    /// Squared error of ln(1 + height): errors relative to the height.
    SquaredLog,
    /// Gamma deviance with a log link: errors relative to the height.
    Gamma,
}

/// What `train` and `cv` fit, as a user names it; [`TrainParams::options`] checks it and
/// gives the [`TrainOptions`] the library trains with. Unset values keep roofline's defaults.
///
/// ```
/// use roofline::model::params::TrainParams;
/// let p: TrainParams = serde_json::from_str(r#"{"seed": 7, "trees": 200}"#).unwrap();
/// let o = p.options().unwrap();
/// assert_eq!(o.seed, 7);
/// // A misspelt parameter is refused by name.
/// assert!(serde_json::from_str::<TrainParams>(r#"{"tres": 200}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainParams {
    /// The point learner: `gbm` or `forest`.
    pub model: ModelKind,
    /// Seed of every random choice.
    pub seed: u64,
    /// Boosting rounds (gbm) or trees (forest).
    pub trees: Option<usize>,
    /// gbm learning rate.
    pub learning_rate: Option<f64>,
    /// gbm leaves per tree.
    pub max_leaves: Option<usize>,
    /// gbm depth limit (depth-wise growth instead of leaf-wise).
    pub max_depth: Option<usize>,
    /// gbm minimum buildings (hessian weight) per leaf.
    pub min_leaf: Option<f64>,
    /// gbm row share per tree.
    pub subsample: Option<f64>,
    /// gbm feature share per tree.
    pub colsample: Option<f64>,
    /// gbm features per tree at most (0: no bound).
    pub max_features: Option<usize>,
    /// gbm histogram bins per feature.
    pub max_bin: Option<usize>,
    /// gbm leaves linear in their path's features, with this slope penalty.
    pub linear_leaves: Option<f64>,
    /// gbm point loss.
    pub loss: PointLoss,
    /// Stop boosting after this many rounds without improvement on a 10 % validation share.
    pub early_stopping: Option<usize>,
    /// Learn from known-neighbour-height features.
    pub known_heights: bool,
    /// Allow training cities whose label definitions differ.
    pub allow_mixed_labels: bool,
    /// How held-out cities' scores calibrate the 90 % interval.
    pub intervals: IntervalRule,
    /// Fit the point model only, without intervals.
    pub no_intervals: bool,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            model: ModelKind::Gbm,
            seed: 42,
            trees: None,
            learning_rate: None,
            max_leaves: None,
            max_depth: None,
            min_leaf: None,
            subsample: None,
            colsample: None,
            max_features: None,
            max_bin: None,
            linear_leaves: None,
            loss: PointLoss::default(),
            early_stopping: None,
            known_heights: false,
            allow_mixed_labels: false,
            intervals: IntervalRule::default(),
            no_intervals: false,
        }
    }
}

impl TrainParams {
    /// Parameters from JSON (the Python package's keyword arguments); an unknown or mistyped
    /// parameter is an error naming it.
    pub fn from_json(text: &str) -> Result<TrainParams> {
        serde_json::from_str(text).map_err(|e| {
            // serde says "unknown field `tres`, expected one of ... at line 1 column 7":
            // the position means nothing to a caller of keyword arguments.
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            Error::invalid(format!("training parameters: {msg}"))
        })
    }

    /// The checked options: each hyperparameter in its range, or an error naming it.
    pub fn options(&self) -> Result<TrainOptions> {
        let mut o = TrainOptions::default().with_seed(self.seed);
        o.kind = self.model;
        o.known_heights = self.known_heights;
        o.allow_mixed_labels = self.allow_mixed_labels;
        o.interval_rule = self.intervals;
        if self.no_intervals {
            o.alpha = None;
        }
        let mut gbm = GbmParams::new().seed(self.seed);
        gbm = match self.loss {
            PointLoss::Squared => gbm,
            PointLoss::Huber => gbm.loss(Loss::PseudoHuber { slope: 1.0 }),
            PointLoss::SquaredLog => gbm.loss(Loss::SquaredLogError),
            PointLoss::Gamma => gbm.loss(Loss::Gamma),
        };
        if let Some(t) = self.trees {
            gbm = gbm.n_trees(t);
            o.forest = ForestParams::new().n_trees(t).seed(self.seed).check()?;
        }
        if let Some(v) = self.learning_rate {
            gbm = gbm.learning_rate(v);
        }
        if let Some(v) = self.max_leaves {
            gbm = gbm.max_leaves(v);
        }
        if self.max_depth.is_some() {
            gbm = gbm.max_depth(self.max_depth);
        }
        if let Some(v) = self.min_leaf {
            gbm = gbm.min_child_weight(v);
        }
        if let Some(v) = self.subsample {
            gbm = gbm.subsample(v);
        }
        if let Some(v) = self.colsample {
            gbm = gbm.colsample(v);
        }
        if let Some(v) = self.max_features {
            gbm = gbm.max_features((v > 0).then_some(v));
        }
        if let Some(v) = self.max_bin {
            gbm = gbm.max_bin(v);
        }
        if self.linear_leaves.is_some() {
            gbm = gbm.linear_leaves(self.linear_leaves);
        }
        gbm = gbm.early_stopping(self.early_stopping, 0.1);
        o.gbm = gbm.check()?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_libraries() {
        let o = TrainParams::default().options().unwrap();
        let d = TrainOptions::default();
        assert_eq!(o.seed, d.seed);
        assert_eq!(o.alpha, d.alpha);
        assert_eq!(o.interval_rule, d.interval_rule);
        assert_eq!(format!("{:?}", o.gbm), format!("{:?}", d.gbm));
    }

    #[test]
    fn a_bad_value_or_name_is_refused_by_name() {
        let e = TrainParams::from_json(r#"{"learning_rate": -1}"#)
            .unwrap()
            .options()
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate"), "{e}");
        let e = TrainParams::from_json(r#"{"tres": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `tres`") && !e.contains("line 1"),
            "{e}"
        );
        let e = TrainParams::from_json(r#"{"loss": "l1"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("l1") && e.contains("squared-log"), "{e}");
    }
}
