//! Gradient-boosted regression trees (hessboost's histogram booster) behind linfa's traits:
//! checked hyperparameters ([`GbmParams`] → [`GbmValidParams`] via `ParamGuard`), `Fit` on a
//! `linfa::Dataset`, `PredictInplace`. linfa's own tree crates only classify, hence hessboost.

use std::num::NonZeroUsize;

use hessboost::config::{GrowPolicy, LinearTree, Monotone, TrainingParams, TreeMethod};
use hessboost::model::BoostedModel;
use hessboost::objective::{Objective, PseudoHuber, RegLoss};
use hessboost::training::Trainer;
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use linfa::ParamGuard;
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::ensemble::TreeEnsemble;
pub use super::ensemble::{gain_importance, predict_booster};
use super::matrix::to_dmatrix;
use crate::error::{Error, Result};

/// The point-prediction loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum Loss {
    /// Least squares (the default): predicts the conditional mean height.
    SquaredError,
    /// Robust to label noise: quadratic within `slope` metres of the target, linear beyond.
    PseudoHuber {
        /// Where the loss turns from quadratic to linear, in metres (positive).
        slope: f64,
    },
    /// Squared error of ln(1 + height): a relative error, so a 3 m miss on a 6 m house weighs
    /// like a 9 m miss on an 18 m block. A height scale that differs between cities becomes a
    /// shift the trees learn once.
    SquaredLogError,
    /// Gamma deviance with a log link: errors relative to the height, means kept in metres.
    Gamma,
}

/// Checked gradient-boosting hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GbmValidParams {
    /// Boosting rounds (trees); the upper bound when early stopping.
    pub n_trees: usize,
    /// Shrinkage per tree, in (0, 1]; smaller needs more trees.
    pub learning_rate: f64,
    /// Depth limit; `None` grows leaf-wise up to `max_leaves` (LightGBM's way).
    pub max_depth: Option<usize>,
    /// Leaves per tree when growing leaf-wise (at least 2); ignored with `max_depth`.
    pub max_leaves: usize,
    /// Minimum hessian in a leaf: with squared error, the minimum buildings per leaf.
    pub min_child_weight: f64,
    /// Row share sampled per tree.
    pub subsample: f64,
    /// Feature share sampled per tree.
    pub colsample: f64,
    /// At most this many features per tree, whatever `colsample` of the columns is (`None`: no
    /// bound). Every tree node scans a histogram of every feature its tree sampled, so without
    /// a bound training time grows with the feature count: see [`DEFAULT_MAX_FEATURES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_features: Option<usize>,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    /// Histogram bins per feature (2–256). Every tree node builds one histogram of this many
    /// bins per feature, which dominates training when buildings are few and features many.
    #[serde(default = "bins_before_0_2")]
    pub max_bin: usize,
    /// Leaves that are linear models of the features their path splits on, with this penalty on
    /// the slopes (`None`: constant leaves). Constant leaves cannot follow a trend past the
    /// training range (a denser city than any seen gets the densest seen city's height); linear
    /// leaves extrapolate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_leaves: Option<f64>,
    /// The point loss; quantile models for intervals set their own.
    pub loss: Loss,
    /// Stop when the validation loss has not improved for this many rounds.
    pub early_stopping_rounds: Option<usize>,
    /// Share of training rows held out for early stopping.
    pub validation_fraction: f64,
    /// Seed of row/feature subsampling and of the early-stopping split.
    pub seed: u64,
    /// Features (by name) the predicted height may only grow with: where physics says more
    /// means taller, the trees cannot learn a local dip from a few odd buildings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub increasing: Vec<String>,
    /// Threads for one training run (`None`: all). Results do not depend on it; roofline
    /// trains independent models side by side on one thread each, which beats splitting one
    /// small model over threads.
    #[serde(skip)]
    pub threads: Option<usize>,
}

/// The features the default model's height may only grow with: the built-up ratio around the
/// building at every radius. Denser surroundings are taller ones across cities, and with the
/// constraint the trees cannot learn a dip from a few odd buildings of the training cities:
/// under leave-one-city-out it lowered the mean error over the six shipped cities from 2.88 to
/// 2.83 m and raised no city's (seeds 1–3; `cv --ablate unconstrained`).
pub fn built_up_ratios() -> Vec<String> {
    crate::features::context::RADII
        .iter()
        .map(|r| format!("coverage_{}m", *r as u32))
        .chain(
            crate::features::wide_context::names()
                .into_iter()
                .filter(|n| n.starts_with("coverage_window_")),
        )
        .collect()
}

/// Default histogram bins per feature. 64 instead of hessboost's 256: training on Wageningen
/// alone (113 features, 1 376 buildings) took 29 s with 256 bins; the leave-one-city-out error
/// over the six shipped cities did not change (2.83 → 2.82 m, seeds 1–3, no city worse by more
/// than 2 %), nor did block cross-validation (README, Performance).
pub const DEFAULT_MAX_BIN: usize = 64;

/// Default bound on the features per tree. Twenty is what half of the 41 features shared by
/// the four roof-p70 cities gives, so models over cities without imagery sample as before;
/// Wageningen alone, with 113 features (72 from Landsat), sampled 56 per tree and trained 1.9×
/// slower than the four cities together. With the bound its block cross-validation error did
/// not change (README, Performance).
pub const DEFAULT_MAX_FEATURES: usize = 20;

/// Models written before `max_bin` was a hyperparameter used hessboost's 256.
fn bins_before_0_2() -> usize {
    256
}

/// Unchecked gradient-boosting hyperparameters (builder).
#[derive(Clone, Debug, PartialEq)]
pub struct GbmParams(GbmValidParams);

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams(GbmValidParams {
            n_trees: 500,
            learning_rate: 0.05,
            max_depth: None,
            max_leaves: 31,
            min_child_weight: 5.0,
            subsample: 1.0,
            colsample: 0.5,
            max_features: Some(DEFAULT_MAX_FEATURES),
            lambda: 1.0,
            max_bin: DEFAULT_MAX_BIN,
            linear_leaves: None,
            loss: Loss::SquaredError,
            early_stopping_rounds: None,
            validation_fraction: 0.1,
            seed: 42,
            increasing: built_up_ratios(),
            threads: None,
        })
    }
}

/// Checked parameters back into the builder, to change one and check again (ablation
/// variants do).
impl From<GbmValidParams> for GbmParams {
    fn from(p: GbmValidParams) -> Self {
        GbmParams(p)
    }
}

impl GbmParams {
    /// roofline's defaults: 500 trees at learning rate 0.05, 31 leaves grown leaf-wise, half
    /// the features per tree but at most [`DEFAULT_MAX_FEATURES`], squared error, height non-decreasing in the built-up ratios
    /// ([`built_up_ratios`]), no early stopping, seed 42.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`GbmValidParams::n_trees`] (checked: at least 1).
    pub fn n_trees(mut self, n: usize) -> Self {
        self.0.n_trees = n;
        self
    }
    /// Sets [`GbmValidParams::learning_rate`] (checked: in (0, 1]).
    pub fn learning_rate(mut self, v: f64) -> Self {
        self.0.learning_rate = v;
        self
    }
    /// Sets [`GbmValidParams::max_depth`]; `None` grows leaf-wise.
    pub fn max_depth(mut self, v: Option<usize>) -> Self {
        self.0.max_depth = v;
        self
    }
    /// Sets [`GbmValidParams::max_leaves`] (checked: at least 2).
    pub fn max_leaves(mut self, v: usize) -> Self {
        self.0.max_leaves = v;
        self
    }
    /// Sets [`GbmValidParams::min_child_weight`] (checked: not negative).
    pub fn min_child_weight(mut self, v: f64) -> Self {
        self.0.min_child_weight = v;
        self
    }
    /// Sets [`GbmValidParams::subsample`] (checked: in (0, 1]).
    pub fn subsample(mut self, v: f64) -> Self {
        self.0.subsample = v;
        self
    }
    /// Sets [`GbmValidParams::colsample`] (checked: in (0, 1]).
    pub fn colsample(mut self, v: f64) -> Self {
        self.0.colsample = v;
        self
    }
    /// Sets [`GbmValidParams::max_features`] (checked: at least 1); `None`: no bound.
    pub fn max_features(mut self, v: Option<usize>) -> Self {
        self.0.max_features = v;
        self
    }
    /// Sets [`GbmValidParams::lambda`] (checked: not negative).
    pub fn lambda(mut self, v: f64) -> Self {
        self.0.lambda = v;
        self
    }
    /// Sets [`GbmValidParams::max_bin`] (checked: 2–256).
    pub fn max_bin(mut self, v: usize) -> Self {
        self.0.max_bin = v;
        self
    }
    /// Sets [`GbmValidParams::linear_leaves`] (checked: a finite penalty, not negative).
    pub fn linear_leaves(mut self, v: Option<f64>) -> Self {
        self.0.linear_leaves = v;
        self
    }
    /// Sets [`GbmValidParams::loss`] (checked: a positive pseudo-Huber slope).
    pub fn loss(mut self, v: Loss) -> Self {
        self.0.loss = v;
        self
    }
    /// Early stopping after `rounds` rounds without improvement on a seeded random
    /// `validation_fraction` of the rows (checked: in (0, 0.5)); `None` trains every tree.
    /// The held-out rows are single buildings, not blocks, so the stopping point is
    /// optimistic where neighbours share heights.
    pub fn early_stopping(mut self, rounds: Option<usize>, validation_fraction: f64) -> Self {
        self.0.early_stopping_rounds = rounds;
        self.0.validation_fraction = validation_fraction;
        self
    }
    /// Sets [`GbmValidParams::seed`].
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
    /// Sets [`GbmValidParams::increasing`]: names of features the prediction may only grow with.
    pub fn increasing(mut self, names: Vec<String>) -> Self {
        self.0.increasing = names;
        self
    }
}

impl ParamGuard for GbmParams {
    type Checked = GbmValidParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&GbmValidParams> {
        let p = &self.0;
        let bad = |what: &str| Err(Error::invalid(format!("gbm hyperparameter {what}")));
        if p.n_trees == 0 {
            return bad("n_trees must be at least 1");
        }
        if !(p.learning_rate > 0.0 && p.learning_rate <= 1.0) {
            return bad("learning_rate must be in (0, 1]");
        }
        if p.max_depth == Some(0) || p.max_leaves < 2 {
            return bad("max_depth must be at least 1 and max_leaves at least 2");
        }
        if !(p.subsample > 0.0 && p.subsample <= 1.0 && p.colsample > 0.0 && p.colsample <= 1.0) {
            return bad("subsample and colsample must be in (0, 1]");
        }
        if p.max_features == Some(0) {
            return bad("max_features must be at least 1");
        }
        if !(2..=256).contains(&p.max_bin) {
            return bad("max_bin must be in 2–256");
        }
        if p.linear_leaves
            .is_some_and(|l| !(l.is_finite() && l >= 0.0))
        {
            return bad("linear-leaf slope penalty must be finite and non-negative");
        }
        if !(p.min_child_weight >= 0.0 && p.lambda >= 0.0) {
            return bad("min_child_weight and lambda must be non-negative");
        }
        if let Loss::PseudoHuber { slope } = p.loss {
            if slope.is_nan() || slope <= 0.0 {
                return bad("pseudo-Huber slope must be positive");
            }
        }
        if p.early_stopping_rounds == Some(0)
            || !(p.validation_fraction > 0.0 && p.validation_fraction < 0.5)
        {
            return bad(
                "early stopping needs at least 1 round and a validation fraction in (0, 0.5)",
            );
        }
        Ok(p)
    }

    fn check(self) -> Result<GbmValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl GbmValidParams {
    /// hessboost parameters for this configuration, an objective and `n_features` columns.
    pub fn booster_params(
        &self,
        objective: Objective,
        n_features: usize,
    ) -> Result<TrainingParams> {
        let mut b = TrainingParams::builder()
            .objective(objective)
            .tree_method(TreeMethod::Hist)
            .eta(self.learning_rate)
            .min_child_weight(self.min_child_weight)
            .subsample(self.subsample)
            .colsample_bytree(self.tree_share(n_features))
            .lambda(self.lambda)
            .seed(self.seed);
        if let Some(t) = self.threads {
            b = b.nthread(t.max(1));
        }
        b = b.max_bin(self.max_bin);
        if let Some(l) = self.linear_leaves {
            b = b.linear_tree(LinearTree::new(l)?);
        }
        b = match self.max_depth {
            Some(d) => b.max_depth(d),
            None => b
                .grow_policy(GrowPolicy::LossGuide)
                .unlimited_depth()
                .max_leaves(self.max_leaves),
        };
        Ok(b.build()?)
    }

    /// The share of `n_features` columns each tree samples: `colsample`, lowered where it would
    /// draw more than `max_features`. hessboost draws ⌊share × n⌋ columns (in `f32`); the
    /// lowered share aims half a column above the bound so rounding cannot miss it.
    pub fn tree_share(&self, n_features: usize) -> f64 {
        let drawn = (self.colsample as f32 * n_features as f32) as usize;
        match self.max_features {
            Some(m) if drawn > m => (m as f64 + 0.5) / n_features as f64,
            _ => self.colsample,
        }
    }

    /// The same hyperparameters, trained on `threads` threads.
    pub fn on_threads(&self, threads: usize) -> GbmValidParams {
        GbmValidParams {
            threads: Some(threads),
            ..self.clone()
        }
    }

    /// hessboost's objective for [`GbmValidParams::loss`].
    pub fn objective(&self) -> Result<Objective> {
        Ok(match self.loss {
            Loss::SquaredError => Objective::SquaredError(RegLoss::default()),
            Loss::PseudoHuber { slope } => Objective::PseudoHuber(PseudoHuber::new(slope)?),
            Loss::SquaredLogError => Objective::SquaredLogError,
            Loss::Gamma => Objective::Gamma(RegLoss::default()),
        })
    }

    /// Trains a booster with `objective` on `x`, `y`, early-stopping on a seeded random
    /// validation share when configured.
    pub fn train_booster(
        &self,
        objective: Objective,
        x: &Array2<f64>,
        y: &Array1<f64>,
    ) -> Result<BoostedModel> {
        self.train_weighted(objective, x, y, None, &[])
    }

    /// [`GbmValidParams::train_booster`] with a weight per row (`None`: all 1) and the
    /// columns' names, which [`GbmValidParams::increasing`] refers to (names it lists that are
    /// not columns are ignored: a feature may be missing in a region).
    pub fn train_weighted(
        &self,
        objective: Objective,
        x: &Array2<f64>,
        y: &Array1<f64>,
        weights: Option<&[f32]>,
        names: &[String],
    ) -> Result<BoostedModel> {
        let huber = matches!(objective, Objective::PseudoHuber(_));
        let mut params = self.booster_params(objective, x.ncols())?;
        if !self.increasing.is_empty() && names.iter().any(|n| self.increasing.contains(n)) {
            params.monotone_constraints = names
                .iter()
                .map(|n| {
                    if self.increasing.contains(n) {
                        Monotone::Increasing
                    } else {
                        Monotone::None
                    }
                })
                .collect();
        }
        if huber && !y.is_empty() {
            // hessboost starts pseudo-Huber from one Newton step, which overshoots wildly when
            // heights are many slopes away from 0 (tiny hessians); start from the median.
            let mut v = y.to_vec();
            params.base_score =
                Some(crate::stats::percentile::percentile(&mut v, 50.0).expect("non-empty"));
        }
        let mut all = to_dmatrix(x, Some(y.view()))?;
        if let Some(w) = weights {
            all = all.with_weights(w)?;
        }
        match self.early_stopping_rounds {
            None => Ok(Trainer::new(&params, &all, self.n_trees).train()?.model),
            Some(rounds) => {
                let n = x.nrows();
                let mut idx: Vec<usize> = (0..n).collect();
                idx.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
                    self.seed ^ 0x5eed,
                ));
                let n_valid = ((n as f64 * self.validation_fraction).round() as usize)
                    .clamp(1, n.saturating_sub(1).max(1));
                let (valid, train) = idx.split_at(n_valid);
                let (mut train, mut valid) = (train.to_vec(), valid.to_vec());
                train.sort_unstable();
                valid.sort_unstable();
                let dtrain = all.select_rows(&train)?;
                let dvalid = all.select_rows(&valid)?;
                let res = Trainer::new(&params, &dtrain, self.n_trees)
                    .eval(&dvalid, "valid")
                    .early_stopping_rounds(NonZeroUsize::new(rounds).expect("checked"))
                    .train()?;
                let model = res.model;
                match model.best_iteration() {
                    Some(best) => Ok(model.slice(..=best, 1)?),
                    None => Ok(model),
                }
            }
        }
    }
}

/// A fitted gradient-boosted regressor.
#[derive(Clone, Debug)]
pub struct Gbm {
    /// The trees; predicts heights in metres from the training feature order.
    pub booster: BoostedModel,
    /// The hyperparameters it was fitted with.
    pub params: GbmValidParams,
}

impl<D: Data<Elem = f64>, T: AsSingleTargets<Elem = f64>> Fit<ArrayBase<D, Ix2>, T, Error>
    for GbmValidParams
{
    type Object = Gbm;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<Gbm> {
        let x = dataset.records().to_owned();
        let y = dataset.as_single_targets().to_owned();
        if x.nrows() == 0 {
            return Err(Error::invalid("no labelled buildings to train on"));
        }
        let weights = dataset.weights().filter(|w| !w.is_empty());
        let booster =
            self.train_weighted(self.objective()?, &x, &y, weights, dataset.feature_names())?;
        Ok(Gbm {
            booster,
            params: self.clone(),
        })
    }
}

impl TreeEnsemble for Gbm {
    fn booster(&self) -> &BoostedModel {
        &self.booster
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for Gbm {
    /// Panics when `x` has another column count than the training data, like linfa's models;
    /// use [`Gbm::predict_checked`] for an error instead.
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        let p = self
            .predict_checked(x)
            .expect("feature count checked by the caller");
        y.assign(&p);
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}
