//! Random forest regressor: bootstrap samples and per-split feature sampling over hessboost's
//! trees (one unshrunk tree per sample), averaged into one model, with out-of-bag error.
//! hessboost's parallel-tree mode samples rows without replacement and exposes no out-of-bag
//! rows, so the bagging is done here.

use hessboost::config::{TrainingParams, TreeMethod};
use hessboost::model::BoostedModel;
use hessboost::objective::{Objective, RegLoss};
use hessboost::training::train;
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use linfa::ParamGuard;
use ndarray::{Array1, ArrayBase, Data, Ix2};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::boosting::predict_booster;
use super::ensemble::TreeEnsemble;
use super::matrix::to_dmatrix;
use crate::error::{Error, Result};

/// Checked random-forest hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestValidParams {
    /// Bootstrap trees averaged (at least 1).
    pub n_trees: usize,
    /// Depth limit per tree.
    pub max_depth: usize,
    /// Minimum buildings per leaf.
    pub min_leaf: f64,
    /// Share of features tried at each split.
    pub feature_fraction: f64,
    /// Seed of the bootstrap samples and feature sampling; tree `t` uses its own stream, so
    /// the forest does not depend on the thread count.
    pub seed: u64,
}

/// Unchecked random-forest hyperparameters (builder); `check()` gives [`ForestValidParams`].
#[derive(Clone, Debug, PartialEq)]
pub struct ForestParams(ForestValidParams);

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams(ForestValidParams {
            n_trees: 300,
            max_depth: 16,
            min_leaf: 3.0,
            feature_fraction: 0.33,
            seed: 42,
        })
    }
}

impl ForestParams {
    /// roofline's defaults: 300 trees of depth at most 16, 3 buildings per leaf, a third of the
    /// features per split, seed 42.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`ForestValidParams::n_trees`] (checked: at least 1).
    pub fn n_trees(mut self, n: usize) -> Self {
        self.0.n_trees = n;
        self
    }
    /// Sets [`ForestValidParams::max_depth`] (checked: at least 1).
    pub fn max_depth(mut self, d: usize) -> Self {
        self.0.max_depth = d;
        self
    }
    /// Sets [`ForestValidParams::min_leaf`] (checked: not negative).
    pub fn min_leaf(mut self, v: f64) -> Self {
        self.0.min_leaf = v;
        self
    }
    /// Sets [`ForestValidParams::feature_fraction`] (checked: in (0, 1]).
    pub fn feature_fraction(mut self, v: f64) -> Self {
        self.0.feature_fraction = v;
        self
    }
    /// Sets [`ForestValidParams::seed`].
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
}

impl ParamGuard for ForestParams {
    type Checked = ForestValidParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&ForestValidParams> {
        let p = &self.0;
        if p.n_trees == 0 || p.max_depth == 0 {
            return Err(Error::invalid(
                "forest hyperparameters: n_trees and max_depth must be at least 1",
            ));
        }
        let fraction_ok = p.feature_fraction > 0.0 && p.feature_fraction <= 1.0;
        if !fraction_ok || p.min_leaf.is_nan() || p.min_leaf < 0.0 {
            return Err(Error::invalid(
                "forest hyperparameters: feature_fraction in (0, 1], min_leaf >= 0",
            ));
        }
        Ok(p)
    }

    fn check(self) -> Result<ForestValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// A fitted forest: the trees averaged into one hessboost model, and its out-of-bag error.
#[derive(Clone, Debug)]
pub struct Forest {
    /// The trees averaged into one model; predicts heights in metres.
    pub booster: BoostedModel,
    /// The hyperparameters it was fitted with.
    pub params: ForestValidParams,
    /// Out-of-bag MAE and RMSE (m) over the buildings left out by at least one tree. Rows are
    /// left out one by one, not in blocks, so neighbours in the bag make it optimistic.
    pub oob_mae: f64,
    /// Out-of-bag RMSE (m); see `oob_mae`.
    pub oob_rmse: f64,
    /// Buildings the out-of-bag errors are computed over.
    pub oob_rows: usize,
}

impl<D: Data<Elem = f64>, T: AsSingleTargets<Elem = f64>> Fit<ArrayBase<D, Ix2>, T, Error>
    for ForestValidParams
{
    type Object = Forest;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<Forest> {
        let x = dataset.records().to_owned();
        let y = dataset.as_single_targets().to_owned();
        let n = x.nrows();
        if n < 2 {
            return Err(Error::invalid(
                "a forest needs at least 2 labelled buildings",
            ));
        }
        let all = to_dmatrix(&x, Some(y.view()))?;
        let tree_params = TrainingParams::builder()
            .objective(Objective::SquaredError(RegLoss::default()))
            .tree_method(TreeMethod::Hist)
            .eta(1.0)
            .lambda(0.0)
            .max_depth(self.max_depth)
            .min_child_weight(self.min_leaf)
            .colsample_bynode(self.feature_fraction)
            .nthread(1);
        // Each tree gets its own seeded stream, so trees (and the forest) do not depend on
        // how rayon schedules them.
        let members: Vec<(BoostedModel, Vec<usize>)> = (0..self.n_trees)
            .into_par_iter()
            .map(|t| {
                let seed = self
                    .seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(t as u64);
                let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
                let mut idx: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
                idx.sort_unstable();
                let mut in_bag = vec![false; n];
                idx.iter().for_each(|&i| in_bag[i] = true);
                let oob: Vec<usize> = (0..n).filter(|&i| !in_bag[i]).collect();
                let params = tree_params.clone().seed(seed).build()?;
                let tree = train(&params, &all.select_rows(&idx)?, 1)?;
                Ok((tree, oob))
            })
            .collect::<Result<_>>()?;
        let mut sum = vec![0.0f64; n];
        let mut count = vec![0usize; n];
        for (tree, oob) in &members {
            if oob.is_empty() {
                continue;
            }
            let p = predict_booster(tree, &x.select(ndarray::Axis(0), oob))?;
            for (k, &i) in oob.iter().enumerate() {
                sum[i] += p[[k, 0]];
                count[i] += 1;
            }
        }
        let errs: Vec<f64> = (0..n)
            .filter(|&i| count[i] > 0)
            .map(|i| sum[i] / count[i] as f64 - y[i])
            .collect();
        let m = errs.len().max(1) as f64;
        let booster = BoostedModel::average(members.iter().map(|(t, _)| t))?;
        Ok(Forest {
            booster,
            params: self.clone(),
            oob_mae: errs.iter().map(|e| e.abs()).sum::<f64>() / m,
            oob_rmse: (errs.iter().map(|e| e * e).sum::<f64>() / m).sqrt(),
            oob_rows: errs.len(),
        })
    }
}

impl TreeEnsemble for Forest {
    fn booster(&self) -> &BoostedModel {
        &self.booster
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for Forest {
    /// Panics when `x` has another column count than the training data, like linfa's models;
    /// use [`Forest::predict_checked`] for an error instead.
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        y.assign(
            &self
                .predict_checked(x)
                .expect("feature count checked by the caller"),
        );
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}
